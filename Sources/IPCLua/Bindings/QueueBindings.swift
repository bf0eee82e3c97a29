import CLua
import CLuaShim
import IPCCore
import IPCRuntime

/// A queue or joinable queue as Lua sees it.
final class QueueObject: LuaDescribable {
    let queue: MessageQueue
    let name: String
    /// `q:close()` was called in this process.
    var closed = false
    // Call names, kept as literals so that setting them costs nothing.
    let putCall: String
    let getCall: String

    init(_ queue: MessageQueue, name: String) {
        self.queue = queue
        self.name = name
        putCall = queue.isJoinable ? "joinable_queue:put" : "queue:put"
        getCall = queue.isJoinable ? "joinable_queue:get" : "queue:get"
    }

    var label: String { queue.isJoinable ? "joinable_queue" : "queue" }

    var luaDescription: String {
        let size = queue.maxsize > 0 ? "\(queue.count)/\(queue.maxsize)" : "\(queue.count)"
        return "<\(label) \(name) items=\(size)\(closed ? " closed" : "")>"
    }
}

enum QueueBindings {
    static let queueMethods: [(name: String, function: ipc_swift_function)] = [
        ("put", { luaEntry($0, put) }),
        ("get", { luaEntry($0, get) }),
        ("put_nowait", { luaEntry($0, putNowait) }),
        ("get_nowait", { luaEntry($0, getNowait) }),
        ("qsize", { luaEntry($0, qsize) }),
        ("empty", { luaEntry($0, empty) }),
        ("full", { luaEntry($0, full) }),
        ("close", { luaEntry($0, close) }),
    ]

    static let queueType = LuaType(.queue, "ipc.Queue", label: "queue", methods: queueMethods)
    static let joinableType = LuaType(.joinableQueue, "ipc.JoinableQueue", label: "joinable_queue", methods: queueMethods + [
        ("task_done", { luaEntry($0, taskDone) }),
        ("join", { luaEntry($0, join) }),
    ])
    static let types = [queueType, joinableType]

    /// Options shared by both constructors: `{name = ..., ring = bytes}`.
    static func make(_ s: LuaState, call: String, joinable: Bool) throws(LuaRaise) -> Int32 {
        let maxsize = try s.optionalInteger(1, call, "maxsize", default: 0)
        if maxsize < 0 { throw LuaRaise("\(call): maxsize must not be negative, got \(maxsize)") }
        let name = try s.nameOption(2, call) ?? RunBoard.current?.nextName(joinable ? .joinableQueue : .queue) ?? "queue"
        var capacity = MessageQueue.defaultCapacity
        if s.type(2) == LUA_TTABLE {
            if s.rawField(2, "ring") != LUA_TNIL {
                let ring = try s.integerArgument(-1, call, "options.ring")
                guard ring >= 4096 && ring <= 1 << 40 else {
                    throw LuaRaise("\(call): options.ring must be between 4096 and 2^40 bytes, got \(ring)")
                }
                capacity = Int(ring)
            }
            s.pop()
        }
        let queue = try making(s, call) { () throws(IPCError) in
            try MessageQueue(maxsize: Int(maxsize), capacity: capacity, joinable: joinable, name: name)
        }
        s.push(object: QueueObject(queue, name: name), type: joinable ? joinableType : queueType)
        return 1
    }

    static func queue(_ s: LuaState) throws(LuaRaise) -> Int32 { try make(s, call: "ipc.queue", joinable: false) }
    static func joinableQueue(_ s: LuaState) throws(LuaRaise) -> Int32 { try make(s, call: "ipc.joinable_queue", joinable: true) }

    @inline(__always)
    static func this(_ s: LuaState, _ method: String) throws(LuaRaise) -> QueueObject {
        if let q = s.object(1, family: .queue, as: QueueObject.self) { return q }
        throw s.wrongSelf("queue:" + method)
    }

    static func put(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let q = try this(s, "put")
        let deadline = try s.deadline(3, q.putCall)
        return try put(s, q, deadline: deadline, full: "timeout", call: q.putCall)
    }

    static func putNowait(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let q = try this(s, "put_nowait")
        return try put(s, q, deadline: .now, full: "full", call: q.queue.isJoinable ? "joinable_queue:put_nowait" : "queue:put_nowait")
    }

    @inline(__always)
    static func put(_ s: LuaState, _ q: QueueObject, deadline: Deadline, full: String, call: String) throws(LuaRaise) -> Int32 {
        if q.closed { return s.fail("closed") }
        let buffer = try s.encodeArgument(2, call)
        Calls.enter(call, q.name)
        let id = Trace.isOn ? Trace.newMessageID() : 0
        let outcome = q.queue.put(buffer.bytes, id: id, deadline: deadline)
        if Trace.isOn {
            Traced.call(s, call, q.name, value: 2, bytes: buffer.count, result: outcome == .done ? nil : full,
                        flowOut: outcome == .done ? id : 0)
            Trace.counter(q.name, "items", q.queue.count)
        }
        switch outcome {
        case .done: s.push(true); return 1
        case .timedOut: return s.fail(full)
        }
    }

    static func get(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let q = try this(s, "get")
        let deadline = try s.deadline(2, q.getCall)
        return try get(s, q, deadline: deadline, empty: "timeout", call: q.getCall)
    }

    static func getNowait(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let q = try this(s, "get_nowait")
        return try get(s, q, deadline: .now, empty: "empty", call: q.queue.isJoinable ? "joinable_queue:get_nowait" : "queue:get_nowait")
    }

    @inline(__always)
    static func get(_ s: LuaState, _ q: QueueObject, deadline: Deadline, empty: String, call: String) throws(LuaRaise) -> Int32 {
        if q.closed { return s.fail("closed") }
        Calls.enter(call, q.name)
        let buffer = Scratch.receive
        switch q.queue.get(into: buffer, deadline: deadline) {
        case .item(let id):
            try s.pushDecoded(buffer, call)
            if Trace.isOn {
                Traced.call(s, call, q.name, value: -1, bytes: buffer.count, flowIn: id)
                Trace.counter(q.name, "items", q.queue.count)
            }
            buffer.reset()
            return 1
        case .timedOut:
            if Trace.isOn { Traced.call(s, call, q.name, result: empty) }
            return s.fail(empty)
        }
    }

    static func qsize(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.push(Int64(try this(s, "qsize").queue.count))
        return 1
    }

    static func empty(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.push(try this(s, "empty").queue.isEmpty)
        return 1
    }

    static func full(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.push(try this(s, "full").queue.isFull)
        return 1
    }

    static func close(_ s: LuaState) throws(LuaRaise) -> Int32 {
        try this(s, "close").closed = true
        return 0
    }

    static func taskDone(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let q = try s.receiver(.joinableQueue, "joinable_queue:task_done", as: QueueObject.self)
        Calls.enter("joinable_queue:task_done", q.name)
        guard q.queue.taskDone() else {
            throw LuaRaise("joinable_queue:task_done: called more times than there were items put")
        }
        if Trace.isOn { Traced.call(s, "joinable_queue:task_done", q.name) }
        return 0
    }

    static func join(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let q = try s.receiver(.joinableQueue, "joinable_queue:join", as: QueueObject.self)
        let deadline = try s.deadline(2, "joinable_queue:join")
        Calls.enter("joinable_queue:join", q.name)
        let done = q.queue.join(deadline: deadline)
        if Trace.isOn { Traced.call(s, "joinable_queue:join", q.name, result: String(done)) }
        s.push(done)
        return 1
    }
}
