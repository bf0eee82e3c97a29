import CLua
import Glibc
import IPCCore
import IPCRuntime

/// `ipc.wait(list [, timeout])`: the sub-list of Connections, Queues, Sockets, servers,
/// datagram sockets and Processes that are ready to read (or accept), or have ended (a
/// Process, as Python's `p.sentinel`), or an empty table on timeout.
///
/// Descriptors are polled; a queue is waited on through its eventfd, which puts signal
/// only while somebody waits on it here, so queues are waitable without polling.
enum WaitBindings: Primitive {
    static var types: [LuaType] { [] }

    enum Source {
        case connection(Connection)
        case queue(MessageQueue)
        case socket(UnixSocket)
        case process(ChildProcess)
    }

    static let functions = [
        Function("wait", takes: ["list", "timeout"], deadline: { s, name throws(LuaRaise) in try s.deadline(2, name) }) { s, call throws(LuaRaise) in
            try wait(s, &call)
        },
    ]

    static func wait(_ s: LuaState, _ context: inout CallContext) throws(LuaRaise) -> Int32 {
        let call = context.name
        let deadline = context.deadline
        guard s.type(1) == LUA_TTABLE else { throw LuaRaise("\(call): expected a table of connections, queues and sockets, got \(s.typeName(1))") }
        let n = s.rawLength(1)
        var sources: [Source] = []
        sources.reserveCapacity(n)
        for k in 1...max(n, 1) where n > 0 {
            s.rawGet(1, index: Int64(k))
            defer { s.pop() }
            if let c = s.object(-1, .connection, as: ConnectionObject.self) {
                sources.append(.connection(c.connection))
            } else if let q = s.object(-1, family: .queue, as: QueueObject.self) {
                sources.append(.queue(q.queue))
            } else if let x = s.object(-1, family: .server, as: SocketObject.self) {
                sources.append(.socket(x.socket))
            } else if let p = s.object(-1, .process, as: ProcessObject.self) {
                guard p.child.isStarted else { throw LuaRaise("\(call): item \(k) is \(p.child.name), which was never started") }
                guard p.child.isMine else {
                    throw LuaRaise("\(call): item \(k) is \(p.child.name), which this process did not start (only its parent can wait for it)")
                }
                sources.append(.process(p.child))
            } else {
                throw LuaRaise("\(call): item \(k) is \(s.describe(-1)); expected a connection, queue, socket, server or dgram")
            }
        }
        for source in sources {
            switch source {
            case .queue(let q): q.beginSelect()
            case .connection(let c): c.beginSelect()
            case .socket, .process: break
            }
        }
        defer {
            for source in sources {
                switch source {
                case .queue(let q): q.endSelect()
                case .connection(let c): c.endSelect()
                case .socket, .process: break
                }
            }
        }
        while true {
            var ready = [Bool](repeating: false, count: sources.count)
            var entries: [(fd: Int32, events: Int16)] = []
            var owners: [Int] = []
            for (i, source) in sources.enumerated() {
                switch source {
                case .connection(let c):
                    if c.hasBufferedInput { ready[i] = true }
                    if c.readFD >= 0 { entries.append((c.readFD, Int16(POLLIN))); owners.append(i) }
                case .queue(let q):
                    q.drainEvent()
                    if !q.isEmpty { ready[i] = true }
                    entries.append((q.eventFD, Int16(POLLIN))); owners.append(i)
                case .socket(let x):
                    if x.fd >= 0 { entries.append((x.fd, Int16(POLLIN))); owners.append(i) }
                case .process(let p):
                    if !p.isRunning { ready[i] = true }
                    // (Under a controlled scheduler its end is a step, not its pidfd: below.)
                    if !Blocking.isControlled && p.endDescriptor >= 0 { entries.append((p.endDescriptor, Int16(POLLIN))); owners.append(i) }
                }
            }
            let anyReady = ready.contains(true)
            var revents: [Int16] = []
            do {
                let processes = sources.compactMap { if case .process(let p) = $0 { p } else { nil } }
                if Blocking.isControlled && !processes.isEmpty && !anyReady && !deadline.hasExpired {
                    // Woken by a process's end step or by a descriptor; then look again.
                    if Blocking.poll(until: {
                        processes.contains { !$0.isRunning } || ((try? Poll.wait(entries, deadline: .now))?.contains { $0 != 0 } ?? true)
                    }, deadline: deadline) { continue }
                } else {
                    revents = try Blocking.poll(entries, deadline: anyReady ? .now : deadline)
                }
            } catch {
                throw LuaRaise("\(call): \(error)")
            }
            for (j, r) in revents.enumerated() where r != 0 {
                let i = owners[j]
                switch sources[i] {
                case .queue(let q): ready[i] = !q.isEmpty
                case .process(let p): ready[i] = !p.isRunning
                default: ready[i] = true
                }
            }
            if ready.contains(true) || deadline.hasExpired {
                context.text = "\(ready.filter { $0 }.count) of \(n) ready"
                if !ready.contains(true) { context.fellShort = "timeout" }
                try s.newTable()
                var out: Int64 = 0
                for (i, r) in ready.enumerated() where r {
                    out += 1
                    s.rawGet(1, index: Int64(i + 1))
                    try s.rawSet(-2, index: out)
                }
                return 1
            }
        }
    }
}
