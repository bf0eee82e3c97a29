import CLua
import CLuaShim
import CSystemShim
import IPCCore
import IPCRuntime

/// A queue or joinable queue as Lua sees it; beside it, whether `q:close()` was called in
/// this process.
typealias QueueObject = Boxed<MessageQueue, Bool>

extension ObjectKind {
    static let queue = declare("queue", typeName: "ipc.Queue")
    static let joinableQueue = declare("joinable_queue", typeName: "ipc.JoinableQueue", family: .queue)
}

extension Boxed where Core == MessageQueue, Local == Bool {
    /// The C fast paths put and take small items in the queue's shared memory, and wake
    /// `ipc.wait` through its eventfd.
    convenience init(_ queue: MessageQueue, ref: ObjectRef) {
        self.init(queue, ref: ref, local: false, fastAccess: FastAccess(shared: queue.header, fdOut: queue.eventFD)) { q, ref, closed in
            let size = q.maxsize > 0 ? "\(q.count)/\(q.maxsize)" : "\(q.count)"
            return "<\(ref.kind!.label) \(ref.name) items=\(size)\(closed ? " closed" : "")>"
        }
    }
    var queue: MessageQueue { core }
    /// `q:close()` was called in this process.
    var closed: Bool {
        get { local }
        set { local = newValue }
    }

    /// Would a put wait now? (Its probe declared: see `Probe`.)
    var isFullNow: Bool { !closed && queue.roomProbe.wouldBlock() }
    /// Would a get wait now?
    var isEmptyNow: Bool { !closed && queue.itemsProbe.wouldBlock() }
}

enum QueueBindings: Primitive {
    static var types: [LuaType] { [type] }

    static let type: LuaType = {
        var t = LuaType([.queue, .joinableQueue], [
            Method<QueueObject>("put", takes: ["item", "timeout"], python: "Python's put(item, block, timeout) is put(item, timeout) or put_nowait(item) here", timeout: 3, waits: { $0.isFullNow }, preview: .argument(2), fast: .put) { s, q, call throws(LuaRaise) in
                try put(s, q, &call, nowait: false)
            },
            Method<QueueObject>("get", takes: ["timeout"], python: "Python's get(block, timeout) is get(timeout) or get_nowait() here", timeout: 2, waits: { $0.isEmptyNow }, preview: .result, fast: .get) { s, q, call throws(LuaRaise) in
                try get(s, q, &call, nowait: false)
            },
            Method<QueueObject>("put_nowait", takes: ["item"], preview: .argument(2), fast: .putNowait) { s, q, call throws(LuaRaise) in
                try put(s, q, &call, nowait: true)
            },
            Method<QueueObject>("get_nowait", takes: [], preview: .result, fast: .getNowait) { s, q, call throws(LuaRaise) in
                try get(s, q, &call, nowait: true)
            },
            Method<QueueObject>("qsize", takes: [], access: .read) { s, q, _ in s.push(Int64(q.queue.count)); return 1 },
            Method<QueueObject>("empty", takes: [], access: .read) { s, q, _ in s.push(q.queue.isEmpty); return 1 },
            Method<QueueObject>("full", takes: [], access: .read) { s, q, _ in s.push(q.queue.isFull); return 1 },
            Method<QueueObject>("close", takes: []) { s, q, _ in
                q.closed = true
                ipc_lua_box_detach(s.L, 1)  // its calls go through Swift, which says "closed"
                return 0
            },
            Method<QueueObject>("task_done", takes: [], only: [.joinableQueue], fast: .taskDone) { _, q, call throws(LuaRaise) in
                guard q.queue.taskDone() else {
                    throw LuaRaise("\(call.name): called more times than there were items put")
                }
                return 0
            },
            Method<QueueObject>("join", takes: ["timeout"], timeout: 2, waits: { $0.queue.doneProbe.wouldBlock() }, only: [.joinableQueue]) { s, q, call in
                s.push(q.queue.join(deadline: call.deadline))
                return 1
            },
        ])
        t.closeMethod = "close"
        t.fastLayout = { _ in
            FastPath.Layout(lock: MemoryLayout<ipc_queue_header>.offset(of: \.state_lock)!,
                            name: MemoryLayout<ipc_queue_header>.offset(of: \.name)!, recursive: false)
        }
        return t
    }()

    /// `ipc.queue([maxsize [, options]])` and `ipc.joinable_queue`: options `{name = ..., ring = bytes}`.
    static func make(_ s: LuaState, _ call: CallContext, kind: ObjectKind) throws(LuaRaise) -> Int32 {
        let maxsize = try s.optionalInteger(1, call.name, "maxsize", default: 0)
        if maxsize < 0 { throw LuaRaise("\(call.name): maxsize must not be negative, got \(maxsize)") }
        let ref = try s.newObject(kind, nameOption: 2, call.name)
        var capacity = MessageQueue.defaultCapacity
        if s.type(2) == LUA_TTABLE {
            if try s.rawField(2, "ring") != LUA_TNIL {
                let ring = try s.integerArgument(-1, call.name, "options.ring")
                guard ring >= 4096 && ring <= 1 << 40 else {
                    throw LuaRaise("\(call.name): options.ring must be between 4096 and 2^40 bytes, got \(ring)")
                }
                capacity = Int(ring)
            }
            s.pop()
        }
        let queue = try making(s, call.name) { () throws(IPCError) in
            try MessageQueue(maxsize: Int(maxsize), capacity: capacity, joinable: kind == .joinableQueue, name: ref.name)
        }
        try s.push(object: QueueObject(queue, ref: ref), kind: kind)
        return 1
    }

    static let functions = [
        Function("queue", takes: ["maxsize", "options"], options: ["ring"]) { s, call throws(LuaRaise) in try make(s, call, kind: .queue) },
        Function("joinable_queue", takes: ["maxsize", "options"], options: ["ring"]) { s, call throws(LuaRaise) in try make(s, call, kind: .joinableQueue) },
    ]

    /// `put` or, `nowait`, `put_nowait` (which fails "full" where `put` times out).
    static func put(_ s: LuaState, _ q: QueueObject, _ call: inout CallContext, nowait: Bool) throws(LuaRaise) -> Int32 {
        if q.closed { return try s.fail("closed") }
        let message = try s.encodeMessage(2, call)
        let id = Trace.isOn ? Trace.newMessageID() : 0
        let outcome = q.queue.put(message, id: id, deadline: nowait ? .now : call.deadline)
        call.bytes = message.count
        call.counter = ("items", q.queue.count)
        switch outcome {
        case .done:
            call.flowOut = id
            s.push(true)
            return 1
        case .timedOut:
            return try s.fail(nowait ? "full" : "timeout")
        }
    }

    /// `get` or, `nowait`, `get_nowait` (which fails "empty" where `get` times out).
    static func get(_ s: LuaState, _ q: QueueObject, _ call: inout CallContext, nowait: Bool) throws(LuaRaise) -> Int32 {
        if q.closed { return try s.fail("closed") }
        let buffer = call.buffer
        switch q.queue.get(into: buffer, deadline: nowait ? .now : call.deadline) {
        case .item(let id):
            try s.pushDecoded(buffer, call.name)
            call.bytes = buffer.count
            call.flowIn = id
            call.counter = ("items", q.queue.count)
            return 1
        case .timedOut:
            return try s.fail(nowait ? "empty" : "timeout")
        }
    }
}
