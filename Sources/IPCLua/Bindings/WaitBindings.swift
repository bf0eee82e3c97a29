import CLua
import Glibc
import IPCCore
import IPCRuntime

/// `ipc.wait(list [, timeout])`: the sub-list of Connections, Queues, Sockets, servers and
/// datagram sockets that are ready to read (or accept), or an empty table on timeout.
///
/// Descriptors are polled; a queue is waited on through its eventfd, which puts signal
/// only while somebody waits on it here, so queues are waitable without polling.
enum WaitBindings {
    enum Source {
        case connection(Connection)
        case queue(MessageQueue)
        case socket(UnixSocket)
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
            } else if let x = s.object(-1, family: .socket, as: SocketObject.self) {
                sources.append(.socket(x.socket))
            } else {
                throw LuaRaise("\(call): item \(k) is \(s.describe(-1)); expected a connection, queue, socket, server or dgram")
            }
        }
        for source in sources {
            switch source {
            case .queue(let q): q.beginSelect()
            case .connection(let c): c.beginSelect()
            case .socket: break
            }
        }
        defer {
            for source in sources {
                switch source {
                case .queue(let q): q.endSelect()
                case .connection(let c): c.endSelect()
                case .socket: break
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
                }
            }
            let anyReady = ready.contains(true)
            let revents: [Int16]
            do { revents = try Blocking.poll(entries, deadline: anyReady ? .now : deadline) } catch {
                throw LuaRaise("\(call): \(error)")
            }
            for (j, r) in revents.enumerated() where r != 0 {
                let i = owners[j]
                if case .queue(let q) = sources[i] { ready[i] = !q.isEmpty } else { ready[i] = true }
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
