import CLua
import CLuaShim
import IPCCore
import IPCRuntime

// The synchronisation family as Lua sees it.

final class SemaphoreObject: LuaDescribable {
    let semaphore: SharedSemaphore
    init(_ s: SharedSemaphore) { semaphore = s }
    var label: String { semaphore.bound == nil ? "semaphore" : "bounded_semaphore" }
    var luaDescription: String { "<\(label) \(semaphore.name) value=\(semaphore.value)>" }
}

final class LockObject: LuaDescribable {
    let shared: SharedLock
    init(_ l: SharedLock) { shared = l }
    var label: String { shared.isRecursive ? "rlock" : "lock" }
    var luaDescription: String {
        let holder = shared.lock.holder
        return "<\(label) \(shared.name) \(holder == 0 ? "unlocked" : "held by pid \(holder)")>"
    }
}

final class EventObject: LuaDescribable {
    let event: SharedEvent
    init(_ e: SharedEvent) { event = e }
    var luaDescription: String { "<event \(event.name) \(event.isSet ? "set" : "clear")>" }
}

final class ConditionObject: LuaDescribable {
    let condition: SharedCondition
    init(_ c: SharedCondition) { condition = c }
    var luaDescription: String { "<condition \(condition.name) lock=\(condition.lock.name)>" }
}

final class BarrierObject: LuaDescribable {
    let barrier: SharedBarrier
    init(_ b: SharedBarrier) { barrier = b }
    var luaDescription: String { "<barrier \(barrier.name) \(barrier.waiting)/\(barrier.parties)\(barrier.isBroken ? " broken" : "")>" }
}

enum SyncBindings {
    // MARK: - Types

    static let semaphoreMethods: [(name: String, function: ipc_swift_function)] = [
        ("acquire", { luaEntry($0, semaphoreAcquire) }),
        ("release", { luaEntry($0, semaphoreRelease) }),
        ("get_value", { luaEntry($0, semaphoreValue) }),
    ]
    static let semaphoreType: LuaType = {
        let t = LuaType(.semaphore, "ipc.Semaphore", label: "semaphore", methods: semaphoreMethods)
        t.guardedCalls = [("with", "acquire", "release")]
        return t
    }()
    static let boundedSemaphoreType: LuaType = {
        let t = LuaType(.boundedSemaphore, "ipc.BoundedSemaphore", label: "bounded_semaphore", methods: semaphoreMethods)
        t.guardedCalls = [("with", "acquire", "release")]
        return t
    }()
    static let semaphoreTypes = [semaphoreType, boundedSemaphoreType]

    static let lockMethods: [(name: String, function: ipc_swift_function)] = [
        ("acquire", { luaEntry($0, lockAcquire) }),
        ("release", { luaEntry($0, lockRelease) }),
        ("locked", { luaEntry($0, lockLocked) }),
    ]
    static let lockType: LuaType = {
        let t = LuaType(.lock, "ipc.Lock", label: "lock", methods: lockMethods)
        t.guardedCalls = [("with", "acquire", "release")]
        return t
    }()
    static let rlockType: LuaType = {
        let t = LuaType(.rlock, "ipc.RLock", label: "rlock", methods: lockMethods)
        t.guardedCalls = [("with", "acquire", "release")]
        return t
    }()
    static let lockTypes = [lockType, rlockType]

    static let eventType = LuaType(.event, "ipc.Event", label: "event", methods: [
        ("set", { luaEntry($0, eventSet) }),
        ("clear", { luaEntry($0, eventClear) }),
        ("is_set", { luaEntry($0, eventIsSet) }),
        ("wait", { luaEntry($0, eventWait) }),
    ])

    static let conditionType: LuaType = {
        let t = LuaType(.condition, "ipc.Condition", label: "condition", methods: [
            ("acquire", { luaEntry($0, conditionAcquire) }),
            ("release", { luaEntry($0, conditionRelease) }),
            ("wait", { luaEntry($0, conditionWait) }),
            ("notify", { luaEntry($0, conditionNotify) }),
            ("notify_all", { luaEntry($0, conditionNotifyAll) }),
        ])
        t.guardedCalls = [("with", "acquire", "release")]
        t.cMethods = [("wait_for", ipc_lua_condition_wait_for)]
        return t
    }()

    static let barrierType: LuaType = {
        let t = LuaType(.barrier, "ipc.Barrier", label: "barrier", methods: [
            ("wait", { luaEntry($0, barrierWait) }),
            ("reset", { luaEntry($0, barrierReset) }),
            ("abort", { luaEntry($0, barrierAbort) }),
        ])
        t.index = { luaEntry($0, barrierIndex) }
        return t
    }()

    static let types = [semaphoreType, boundedSemaphoreType, lockType, rlockType, eventType, conditionType, barrierType]

    // MARK: - Semaphores

    static func makeSemaphore(_ s: LuaState, bounded: Bool) throws(LuaRaise) -> Int32 {
        let call = bounded ? "ipc.bounded_semaphore" : "ipc.semaphore"
        let n = try s.optionalInteger(1, call, "value", default: 1)
        guard n >= 0 && n <= Int64(SharedSemaphore.maximum) else {
            throw LuaRaise("\(call): value must be between 0 and \(SharedSemaphore.maximum), got \(n)")
        }
        let name = try s.nameOption(2, call) ?? RunBoard.current?.nextName(bounded ? .boundedSemaphore : .semaphore) ?? "semaphore"
        let sem = try making(s, call) { () throws(IPCError) in
            try SharedSemaphore(value: UInt32(n), bound: bounded ? UInt32(n) : nil, name: name)
        }
        s.push(object: SemaphoreObject(sem), type: bounded ? boundedSemaphoreType : semaphoreType)
        return 1
    }

    static func semaphore(_ s: LuaState) throws(LuaRaise) -> Int32 { try makeSemaphore(s, bounded: false) }
    static func boundedSemaphore(_ s: LuaState) throws(LuaRaise) -> Int32 { try makeSemaphore(s, bounded: true) }

    static func semaphoreAcquire(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(family: .semaphore, "semaphore:acquire", as: SemaphoreObject.self)
        let call = o.semaphore.bound == nil ? "semaphore:acquire" : "bounded_semaphore:acquire"
        let deadline = try s.deadline(2, call)
        Calls.enter(call, o.semaphore.name)
        let got = o.semaphore.acquire(deadline: deadline)
        if Trace.isOn {
            Traced.call(s, call, o.semaphore.name, result: String(got))
            Trace.counter(o.semaphore.name, "value", Int(o.semaphore.value))
        }
        s.push(got)
        return 1
    }

    static func semaphoreRelease(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(family: .semaphore, "semaphore:release", as: SemaphoreObject.self)
        let call = o.semaphore.bound == nil ? "semaphore:release" : "bounded_semaphore:release"
        let n = try s.optionalInteger(2, call, "n", default: 1)
        guard n >= 1 && n <= Int64(SharedSemaphore.maximum) else { throw LuaRaise("\(call): n must be at least 1, got \(n)") }
        Calls.enter(call, o.semaphore.name)
        switch o.semaphore.release(UInt32(n)) {
        case .released:
            if Trace.isOn {
                Traced.call(s, call, o.semaphore.name)
                Trace.counter(o.semaphore.name, "value", Int(o.semaphore.value))
            }
            return 0
        case .overBound:
            if let bound = o.semaphore.bound {
                throw LuaRaise("\(call): released too many times (the value would exceed \(bound))")
            }
            throw LuaRaise("\(call): the value would exceed \(SharedSemaphore.maximum)")
        }
    }

    static func semaphoreValue(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(family: .semaphore, "semaphore:get_value", as: SemaphoreObject.self)
        s.push(Int64(o.semaphore.value))
        return 1
    }

    // MARK: - Locks

    static func makeLock(_ s: LuaState, recursive: Bool) throws(LuaRaise) -> Int32 {
        let call = recursive ? "ipc.rlock" : "ipc.lock"
        let name = try s.nameOption(1, call) ?? RunBoard.current?.nextName(recursive ? .rlock : .lock) ?? "lock"
        let l = try making(s, call) { () throws(IPCError) in try SharedLock(recursive: recursive, name: name) }
        s.push(object: LockObject(l), type: recursive ? rlockType : lockType)
        return 1
    }

    static func lock(_ s: LuaState) throws(LuaRaise) -> Int32 { try makeLock(s, recursive: false) }
    static func rlock(_ s: LuaState) throws(LuaRaise) -> Int32 { try makeLock(s, recursive: true) }

    static func acquire(_ s: LuaState, _ lock: OwnedLock, _ call: String, argument: Int32) throws(LuaRaise) -> Int32 {
        let deadline = try s.deadline(argument, call)
        Calls.enter(call, lock.name)
        let outcome = lock.acquire(deadline: deadline, during: call)
        if Trace.isOn { Traced.call(s, call, lock.name, result: outcome == .acquired ? "true" : "false") }
        switch outcome {
        case .acquired: s.push(true)
        case .timedOut: s.push(false)
        case .wouldDeadlock:
            throw LuaRaise("\(call): this process already holds \(lock.name); waiting for it would never end (an rlock can be re-acquired)")
        }
        return 1
    }

    static func lockAcquire(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(family: .lock, "lock:acquire", as: LockObject.self)
        return try acquire(s, o.shared.lock, o.shared.isRecursive ? "rlock:acquire" : "lock:acquire", argument: 2)
    }

    static func lockRelease(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(family: .lock, "lock:release", as: LockObject.self)
        let call = o.shared.isRecursive ? "rlock:release" : "lock:release"
        Calls.enter(call, o.shared.name)
        defer { if Trace.isOn { Traced.call(s, call, o.shared.name) } }
        guard o.shared.lock.release() else {
            let holder = o.shared.lock.holder
            throw LuaRaise("\(o.label):release: \(o.shared.name) is not held by this process" + (holder == 0 ? " (it is unlocked)" : " (pid \(holder) holds it)"))
        }
        return 0
    }

    static func lockLocked(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(family: .lock, "lock:locked", as: LockObject.self)
        s.push(o.shared.lock.holder != 0)
        return 1
    }

    // MARK: - Events

    static func event(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let name = try s.nameOption(1, "ipc.event") ?? RunBoard.current?.nextName(.event) ?? "event"
        let e = try making(s, "ipc.event") { () throws(IPCError) in try SharedEvent(name: name) }
        s.push(object: EventObject(e), type: eventType)
        return 1
    }

    static func eventSet(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let e = try s.receiver(.event, "event:set", as: EventObject.self)
        Calls.enter("event:set", e.event.name)
        e.event.set()
        if Trace.isOn { Traced.call(s, "event:set", e.event.name) }
        return 0
    }

    static func eventClear(_ s: LuaState) throws(LuaRaise) -> Int32 {
        try s.receiver(.event, "event:clear", as: EventObject.self).event.clear()
        return 0
    }

    static func eventIsSet(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.push(try s.receiver(.event, "event:is_set", as: EventObject.self).event.isSet)
        return 1
    }

    static func eventWait(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let e = try s.receiver(.event, "event:wait", as: EventObject.self)
        let deadline = try s.deadline(2, "event:wait")
        Calls.enter("event:wait", e.event.name)
        let set = e.event.wait(deadline: deadline)
        if Trace.isOn { Traced.call(s, "event:wait", e.event.name, result: String(set)) }
        s.push(set)
        return 1
    }

    // MARK: - Conditions

    /// `ipc.condition([lock [, options]])`: on the given lock or rlock, or a new rlock.
    static func condition(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let call = "ipc.condition"
        let lockObject: LockObject
        var optionsIndex: Int32 = 2
        if let given = s.object(1, family: .lock, as: LockObject.self) {
            lockObject = given
        } else if s.isNoneOrNil(1) || s.type(1) == LUA_TTABLE {
            if s.type(1) == LUA_TTABLE { optionsIndex = 1 }
            let name = (RunBoard.current?.nextName(.rlock) ?? "rlock")
            lockObject = LockObject(try making(s, call) { () throws(IPCError) in try SharedLock(recursive: true, name: name) })
        } else {
            throw LuaRaise("\(call): expected a lock or an rlock, got \(s.ipcLabel(1) ?? s.typeName(1))")
        }
        let name = try s.nameOption(optionsIndex, call) ?? RunBoard.current?.nextName(.condition) ?? "condition"
        let c = try making(s, call) { () throws(IPCError) in
            try SharedCondition(lock: lockObject.shared.lock, owner: lockObject.shared, name: name)
        }
        s.push(object: ConditionObject(c), type: conditionType)
        return 1
    }

    static func conditionAcquire(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let c = try s.receiver(.condition, "condition:acquire", as: ConditionObject.self)
        return try acquire(s, c.condition.lock, "condition:acquire", argument: 2)
    }

    static func conditionRelease(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let c = try s.receiver(.condition, "condition:release", as: ConditionObject.self)
        guard c.condition.lock.release() else {
            throw LuaRaise("condition:release: the lock of \(c.condition.name) is not held by this process")
        }
        return 0
    }

    static func conditionWait(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let c = try s.receiver(.condition, "condition:wait", as: ConditionObject.self)
        let deadline = try s.deadline(2, "condition:wait")
        Calls.enter("condition:wait", c.condition.name)
        let outcome = c.condition.wait(deadline: deadline)
        if Trace.isOn { Traced.call(s, "condition:wait", c.condition.name, result: outcome == .notified ? "true" : "false") }
        switch outcome {
        case .notified: s.push(true)
        case .timedOut: s.push(false)
        case .notHeld: throw LuaRaise("condition:wait: the lock of \(c.condition.name) is not held by this process (acquire it first)")
        case .tooManyWaiters: throw LuaRaise("condition:wait: more than \(SharedCondition.maxWaiters) processes wait on \(c.condition.name)")
        }
        return 1
    }

    static func conditionNotify(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let c = try s.receiver(.condition, "condition:notify", as: ConditionObject.self)
        let n = try s.optionalInteger(2, "condition:notify", "n", default: 1)
        guard n >= 0 else { throw LuaRaise("condition:notify: n must not be negative, got \(n)") }
        Calls.enter("condition:notify", c.condition.name)
        defer { if Trace.isOn { Traced.call(s, "condition:notify", c.condition.name, result: String(n)) } }
        guard c.condition.notify(Int(clamping: n)) else {
            throw LuaRaise("condition:notify: the lock of \(c.condition.name) is not held by this process (acquire it first)")
        }
        return 0
    }

    static func conditionNotifyAll(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let c = try s.receiver(.condition, "condition:notify_all", as: ConditionObject.self)
        Calls.enter("condition:notify_all", c.condition.name)
        defer { if Trace.isOn { Traced.call(s, "condition:notify_all", c.condition.name) } }
        guard c.condition.notify(Int.max) else {
            throw LuaRaise("condition:notify_all: the lock of \(c.condition.name) is not held by this process (acquire it first)")
        }
        return 0
    }

    // MARK: - Barriers

    static func barrier(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let n = try s.integerArgument(1, "ipc.barrier", "parties")
        guard n >= 1 && n <= 1 << 20 else { throw LuaRaise("ipc.barrier: parties must be at least 1, got \(n)") }
        let name = try s.nameOption(2, "ipc.barrier") ?? RunBoard.current?.nextName(.barrier) ?? "barrier"
        let b = try making(s, "ipc.barrier") { () throws(IPCError) in try SharedBarrier(parties: UInt32(n), name: name) }
        s.push(object: BarrierObject(b), type: barrierType)
        return 1
    }

    static func barrierWait(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let b = try s.receiver(.barrier, "barrier:wait", as: BarrierObject.self)
        let deadline = try s.deadline(2, "barrier:wait")
        Calls.enter("barrier:wait", b.barrier.name)
        let outcome = b.barrier.wait(deadline: deadline)
        if Trace.isOn {
            let r: String
            switch outcome {
            case .passed(let i): r = "index \(i)"
            case .timedOut: r = "timeout"
            case .broken: r = "broken"
            }
            Traced.call(s, "barrier:wait", b.barrier.name, result: r)
        }
        switch outcome {
        case .passed(let index): s.push(Int64(index)); return 1
        case .timedOut: return s.fail("timeout")
        case .broken: return s.fail("broken")
        }
    }

    static func barrierReset(_ s: LuaState) throws(LuaRaise) -> Int32 {
        try s.receiver(.barrier, "barrier:reset", as: BarrierObject.self).barrier.reset()
        return 0
    }

    static func barrierAbort(_ s: LuaState) throws(LuaRaise) -> Int32 {
        try s.receiver(.barrier, "barrier:abort", as: BarrierObject.self).barrier.abort()
        return 0
    }

    /// `b.parties`, `b.n_waiting`, `b.broken`, then the methods.
    static func barrierIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let b = try s.receiver(.barrier, "barrier", as: BarrierObject.self)
        if s.pushMethod() { return 1 }
        switch s.key(2) {
        case Keys.parties: s.push(Int64(b.barrier.parties))
        case Keys.nWaiting: s.push(Int64(b.barrier.waiting))
        case Keys.broken: s.push(b.barrier.isBroken)
        case Keys.name: s.push(b.barrier.name)
        default: s.pushNil()
        }
        return 1
    }
}
