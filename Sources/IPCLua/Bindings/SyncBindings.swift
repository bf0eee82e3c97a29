import CLua
import CLuaShim
import CSystemShim
import IPCCore
import IPCRuntime

// The synchronisation family as Lua sees it.

extension ObjectKind {
    static let semaphore = declare("semaphore", typeName: "ipc.Semaphore")
    static let boundedSemaphore = declare("bounded_semaphore", typeName: "ipc.BoundedSemaphore", family: .semaphore)
    static let lock = declare("lock", typeName: "ipc.Lock")
    static let rlock = declare("rlock", typeName: "ipc.RLock", family: .lock)
    static let event = declare("event", typeName: "ipc.Event")
    static let condition = declare("condition", typeName: "ipc.Condition")
    static let barrier = declare("barrier", typeName: "ipc.Barrier")
}

typealias SemaphoreObject = Boxed<SharedSemaphore, Void>

extension Boxed where Core == SharedSemaphore, Local == Void {
    convenience init(_ s: SharedSemaphore, ref: ObjectRef) {
        self.init(s, ref: ref, local: (), fastAccess: FastAccess(shared: s.region.base)) { s, ref, _ in "<\(ref.kind!.label) \(ref.name) value=\(s.value)>" }
    }

    var semaphore: SharedSemaphore { core }
}

typealias LockObject = Boxed<SharedLock, Void>

extension Boxed where Core == SharedLock, Local == Void {
    convenience init(_ l: SharedLock, ref: ObjectRef) {
        self.init(l, ref: ref, local: (), fastAccess: FastAccess(shared: l.region.base)) { l, ref, _ in
            let holder = l.lock.holder
            return "<\(ref.kind!.label) \(ref.name) \(holder == 0 ? "unlocked" : "held by pid \(holder)")>"
        }
    }

    var shared: SharedLock { core }
}

/// An event; beside it, the event's set() count when the wait in progress reached the
/// gate. A wait begins there: a controlled scheduler may hold it at the gate (before its
/// body runs) across a set(); clear(), and the set() must still end it.
typealias EventObject = Boxed<SharedEvent, UInt32?>

extension Boxed where Core == SharedEvent, Local == UInt32? {
    convenience init(_ event: SharedEvent, ref: ObjectRef) {
        self.init(event, ref: ref, local: nil) { e, ref, _ in "<event \(ref.name) \(e.isSet ? "set" : "clear")>" }
    }
    var event: SharedEvent { core }

    /// Would the wait in progress block? (The gate asks; the first question notes when it began.)
    func waitWouldBlock() -> Bool {
        let start = local ?? event.sets
        local = start
        return event.signalledProbe(since: start).wouldBlock()
    }

    /// When the wait in progress began (at the gate, or now if the gate did not ask).
    func takeWaitStart() -> UInt32 {
        defer { local = nil }
        return local ?? event.sets
    }
}

/// A condition: its calls depend on its lock's state (`ref.key` is the lock's id).
typealias ConditionObject = Boxed<SharedCondition, Void>

extension Boxed where Core == SharedCondition, Local == Void {
    convenience init(_ c: SharedCondition, ref: ObjectRef) {
        self.init(c, ref: ref, local: ()) { c, ref, _ in "<condition \(ref.name) lock=\(c.lock.name)>" }
    }

    var condition: SharedCondition { core }
}

/// A barrier; beside it, its options: what a wait with no timeout of its own waits
/// (seconds), and whether it has an `action` (the function is the userdata's user value:
/// each process that inherits the barrier has its copy of it).
/// (Its options: `BarrierOptions`.)
typealias BarrierObject = Boxed<SharedBarrier, BarrierOptions>

struct BarrierOptions {
    var defaultTimeout: Double?
    var hasAction: Bool
}

extension Boxed where Core == SharedBarrier, Local == BarrierOptions {
    convenience init(_ b: SharedBarrier, ref: ObjectRef, options: BarrierOptions) {
        self.init(b, ref: ref, local: options) { b, ref, _ in
            "<barrier \(ref.name) \(b.waiting)/\(b.parties)\(b.isBroken ? " broken" : "")>"
        }
    }

    var barrier: SharedBarrier { core }
    var defaultTimeout: Double? { local.defaultTimeout }
    var hasAction: Bool { local.hasAction }
}

enum SyncBindings: Primitive {
    /// The hint of an `acquire` given Python's (block, timeout).
    static let acquireHabit = "Python's acquire(block, timeout) is acquire(timeout) here, and acquire(false) does not block"

    // MARK: - Semaphores

    static let semaphoreType: LuaType = {
        var t = LuaType([.semaphore, .boundedSemaphore], [
            Method<SemaphoreObject>("acquire", takes: ["timeout"], python: acquireHabit, timeout: 2, waits: { $0.semaphore.availableProbe.wouldBlock() }, fast: .semaphoreAcquire) { s, o, call in
                s.push(o.semaphore.acquire(deadline: call.deadline))
                call.counter = ("value", Int(o.semaphore.value))
                return 1
            },
            Method<SemaphoreObject>("release", takes: ["n"], fast: .semaphoreRelease) { s, o, call throws(LuaRaise) in
                let n = try s.optionalInteger(2, call.name, "n", default: 1)
                guard n >= 1 && n <= Int64(SharedSemaphore.maximum) else { throw LuaRaise("\(call.name): n must be at least 1, got \(n)") }
                switch o.semaphore.release(UInt32(n)) {
                case .released:
                    call.counter = ("value", Int(o.semaphore.value))
                    return 0
                case .overBound:
                    if let bound = o.semaphore.bound {
                        throw LuaRaise("\(call.name): released too many times (the value would exceed \(bound))")
                    }
                    throw LuaRaise("\(call.name): the value would exceed \(SharedSemaphore.maximum)")
                }
            },
            Method<SemaphoreObject>("get_value", takes: [], access: .read) { s, o, _ in s.push(Int64(o.semaphore.value)); return 1 },
        ])
        t.guarded = [("with", "acquire", "release")]
        t.fastLayout = { _ in FastPath.Layout(lock: 0, name: MemoryLayout<ipc_semaphore_header>.offset(of: \.name)!, recursive: false) }  // (no lock)
        return t
    }()

    static func makeSemaphore(_ s: LuaState, _ call: CallContext, bounded: Bool) throws(LuaRaise) -> Int32 {
        let n = try s.optionalInteger(1, call.name, "value", default: 1)
        guard n >= 0 && n <= Int64(SharedSemaphore.maximum) else {
            throw LuaRaise("\(call.name): value must be between 0 and \(SharedSemaphore.maximum), got \(n)")
        }
        let kind: ObjectKind = bounded ? .boundedSemaphore : .semaphore
        let ref = try s.newObject(kind, nameOption: 2, call.name)
        let sem = try making(s, call.name) { () throws(IPCError) in
            try SharedSemaphore(value: UInt32(n), bound: bounded ? UInt32(n) : nil, name: ref.name)
        }
        try s.push(object: SemaphoreObject(sem, ref: ref), kind: kind)
        return 1
    }

    // MARK: - Locks

    /// Acquires `lock` for `call`: true, false on timeout; an error for a lock the
    /// process already holds and would wait for for ever.
    static func acquire(_ s: LuaState, _ lock: OwnedLock, _ call: CallContext) throws(LuaRaise) -> Int32 {
        switch lock.acquire(deadline: call.deadline) {
        case .acquired: s.push(true)
        case .timedOut: s.push(false)
        case .wouldDeadlock:
            throw LuaRaise("\(call.name): this process already holds \(lock.name); waiting for it would never end (an rlock can be re-acquired)")
        }
        return 1
    }

    static let lockType: LuaType = {
        var t = LuaType([.lock, .rlock], [
            Method<LockObject>("acquire", takes: ["timeout"], python: acquireHabit, timeout: 2, waits: { $0.shared.lock.acquireWouldBlock }, fast: .acquire) { s, o, call throws(LuaRaise) in
                try acquire(s, o.shared.lock, call)
            },
            Method<LockObject>("release", takes: [], fast: .release) { _, o, call throws(LuaRaise) in
                guard o.shared.lock.release() else {
                    let holder = o.shared.lock.holder
                    throw LuaRaise("\(call.name): \(o.ref.name) is not held by this process" + (holder == 0 ? " (it is unlocked)" : " (pid \(holder) holds it)"))
                }
                return 0
            },
            Method<LockObject>("locked", takes: [], access: .read) { s, o, _ in s.push(o.shared.lock.holder != 0); return 1 },
        ])
        t.guarded = [("with", "acquire", "release")]
        t.fastLayout = { kind in
            FastPath.Layout(lock: MemoryLayout<ipc_lock_header>.offset(of: \.lock)!,
                            name: MemoryLayout<ipc_lock_header>.offset(of: \.name)!, recursive: kind == .rlock)
        }
        return t
    }()

    static func makeLock(_ s: LuaState, _ call: CallContext, recursive: Bool) throws(LuaRaise) -> Int32 {
        let kind: ObjectKind = recursive ? .rlock : .lock
        let ref = try s.newObject(kind, nameOption: 1, call.name)
        let l = try making(s, call.name) { () throws(IPCError) in try SharedLock(recursive: recursive, name: ref.name) }
        try s.push(object: LockObject(l, ref: ref), kind: kind)
        return 1
    }

    // MARK: - Events

    static let eventType = LuaType([.event], [
        Method<EventObject>("set", takes: []) { _, e, _ in e.event.set(); return 0 },
        Method<EventObject>("clear", takes: []) { _, e, _ in e.event.clear(); return 0 },
        Method<EventObject>("is_set", takes: [], access: .read) { s, e, _ in s.push(e.event.isSet); return 1 },
        Method<EventObject>("wait", takes: ["timeout"], timeout: 2, waits: { $0.waitWouldBlock() }) { s, e, call in
            s.push(e.event.wait(deadline: call.deadline, since: e.takeWaitStart()))
            return 1
        },
    ])

    // MARK: - Conditions

    static let conditionType: LuaType = {
        var t = LuaType([.condition], [
            Method<ConditionObject>("acquire", takes: ["timeout"], python: acquireHabit, timeout: 2, waits: { $0.condition.lock.acquireWouldBlock }) { s, c, call throws(LuaRaise) in
                try acquire(s, c.condition.lock, call)
            },
            Method<ConditionObject>("release", takes: []) { _, c, call throws(LuaRaise) in
                guard c.condition.lock.release() else {
                    throw LuaRaise("\(call.name): the lock of \(c.ref.name) is not held by this process")
                }
                return 0
            },
            // It releases the lock first, then waits inside the call.
            Method<ConditionObject>("wait", takes: ["timeout"], timeout: 2) { s, c, call throws(LuaRaise) in
                switch c.condition.wait(deadline: call.deadline) {
                case .notified: s.push(true)
                case .timedOut: s.push(false)
                case .notHeld: throw LuaRaise("\(call.name): the lock of \(c.ref.name) is not held by this process (acquire it first)")
                case .tooManyWaiters: throw LuaRaise("\(call.name): more than \(SharedCondition.maxWaiters) processes wait on \(c.ref.name)")
                }
                return 1
            },
            Method<ConditionObject>("notify", takes: ["n"]) { s, c, call throws(LuaRaise) in
                let n = try s.optionalInteger(2, call.name, "n", default: 1)
                guard n >= 0 else { throw LuaRaise("\(call.name): n must not be negative, got \(n)") }
                guard c.condition.notify(Int(clamping: n)) else {
                    throw LuaRaise("\(call.name): the lock of \(c.ref.name) is not held by this process (acquire it first)")
                }
                return 0
            },
            Method<ConditionObject>("notify_all", takes: []) { _, c, call throws(LuaRaise) in
                guard c.condition.notify(Int.max) else {
                    throw LuaRaise("\(call.name): the lock of \(c.ref.name) is not held by this process (acquire it first)")
                }
                return 0
            },
        ])
        t.guarded = [("with", "acquire", "release")]
        t.luaMethods = [("wait_for", waitFor)]
        return t
    }()

    /// `condition:wait_for(predicate [, timeout])`, as Python's: calls `predicate()` until
    /// it returns a true value, waiting on the condition in between; returns the
    /// predicate's last result. The clock is the run's (virtual under a controlled
    /// scheduler); reading it is not a call.
    static let waitFor = #"""
    local clock = ...
    return function(self, predicate, timeout, ...)
      for k = 1, select("#", ...) do
        if select(k, ...) ~= nil then
          error("condition:wait_for: takes (predicate, timeout), got " .. (2 + k) .. " arguments", 2)
        end
      end
      if type(predicate) ~= "function" then
        error("condition:wait_for: expected a predicate function as argument 1, got " .. type(predicate), 2)
      end
      local deadline
      if timeout ~= nil then
        if type(timeout) ~= "number" then
          error("condition:wait_for: timeout must be a number of seconds, got " .. type(timeout), 2)
        end
        if timeout ~= timeout then error("condition:wait_for: timeout must be a number of seconds, not NaN", 2) end
        deadline = clock() + timeout
      end
      local result = predicate()
      while not result do
        local left
        if deadline then
          left = deadline - clock()
          if left <= 0 then return result end
        end
        self:wait(left)
        result = predicate()
      end
      return result
    end
    """#

    /// `ipc.condition([lock [, options]])`: on the given lock or rlock, or a new rlock.
    static func makeCondition(_ s: LuaState, _ call: CallContext) throws(LuaRaise) -> Int32 {
        let lock: (shared: SharedLock, id: UInt32)
        var optionsIndex: Int32 = 2
        if let given = s.object(1, family: .lock, as: LockObject.self) {
            lock = (given.shared, given.ref.id)
        } else if s.isNoneOrNil(1) || s.type(1) == LUA_TTABLE {
            if s.type(1) == LUA_TTABLE {
                optionsIndex = 1
                try s.checkOptions(1, call.name, allowed: ["name"], parameters: ["lock", "options"])
            }
            let own = s.newObject(.rlock, name: nil)
            lock = (try making(s, call.name) { () throws(IPCError) in try SharedLock(recursive: true, name: own.name) }, own.id)
        } else {
            throw LuaRaise("\(call.name): expected a lock or an rlock, got \(s.ipcLabel(1) ?? s.typeName(1))")
        }
        let ref = try s.newObject(.condition, nameOption: optionsIndex, call.name, key: lock.id)
        let c = try making(s, call.name) { () throws(IPCError) in
            try SharedCondition(lock: lock.shared.lock, owner: lock.shared, name: ref.name)
        }
        try s.push(object: ConditionObject(c, ref: ref), kind: .condition)
        return 1
    }

    // MARK: - Barriers

    static let barrierNWaiting = FieldAccess("barrier.n_waiting", access: .read)
    static let barrierBroken = FieldAccess("barrier.broken", access: .read)

    static let barrierType: LuaType = {
        var t = LuaType([.barrier], [
            // It counts its arrival first, then waits inside the call.
            Method<BarrierObject>("wait", takes: ["timeout"], timeout: 2) { s, b, call throws(LuaRaise) in
                var deadline = call.deadline
                if s.isNoneOrNil(2), let seconds = b.defaultTimeout { deadline = .after(seconds: seconds) }
                // The action's error (with its traceback), when it raised.
                var actionError: String?
                let action: (() -> Bool)? = b.hasAction ? {
                    _ = ipc_lua_getuservalue(s.L, 1)
                    if ipc_lua_docall(s.L, 0, 0) == LUA_OK { return true }
                    actionError = s.string(-1) ?? "(an error object that is not a string)"
                    s.pop()
                    return false
                } : nil
                switch b.barrier.wait(deadline: deadline, action: action) {
                case .passed(let index):
                    call.text = "index \(index)"
                    s.push(Int64(index))
                    return 1
                case .timedOut: return try s.fail("timeout")
                case .broken: return try s.fail("broken")
                case .actionFailed:
                    throw LuaRaise("\(call.name): the barrier's action raised (the barrier is broken): \(actionError ?? "")")
                }
            },
            Method<BarrierObject>("reset", takes: []) { _, b, _ in b.barrier.reset(); return 0 },
            Method<BarrierObject>("abort", takes: []) { _, b, _ in b.barrier.abort(); return 0 },
        ])
        t.fields = { luaEntry($0, barrierIndex) }
        t.fieldAccesses = [barrierNWaiting, barrierBroken]
        return t
    }()

    /// `b.parties`, `b.name`, and the calls `b.n_waiting`, `b.broken`.
    static func barrierIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let b = s.object(1, .barrier, as: BarrierObject.self) else { throw s.wrongSelf("barrier", "index") }
        switch s.key(2) {
        case Keys.parties: s.push(Int64(b.barrier.parties))
        case Keys.nWaiting: return try barrierNWaiting.pass(s, b.ref) { _ in s.push(Int64(b.barrier.waiting)); return 1 }
        case Keys.broken: return try barrierBroken.pass(s, b.ref) { _ in s.push(b.barrier.isBroken); return 1 }
        case Keys.name: try s.push(b.ref.name)
        default: s.pushNil()
        }
        return 1
    }

    // MARK: - Registration

    static let types = [semaphoreType, lockType, eventType, conditionType, barrierType]

    static let functions = [
        Function("semaphore", takes: ["value", "options"]) { s, call throws(LuaRaise) in try makeSemaphore(s, call, bounded: false) },
        Function("bounded_semaphore", takes: ["value", "options"]) { s, call throws(LuaRaise) in try makeSemaphore(s, call, bounded: true) },
        Function("lock", takes: ["options"]) { s, call throws(LuaRaise) in try makeLock(s, call, recursive: false) },
        Function("rlock", takes: ["options"]) { s, call throws(LuaRaise) in try makeLock(s, call, recursive: true) },
        Function("event", takes: ["options"]) { s, call throws(LuaRaise) in
            let ref = try s.newObject(.event, nameOption: 1, call.name)
            let e = try making(s, call.name) { () throws(IPCError) in try SharedEvent(name: ref.name) }
            try s.push(object: EventObject(e, ref: ref), kind: .event)
            return 1
        },
        Function("condition", takes: ["lock", "options"]) { s, call throws(LuaRaise) in try makeCondition(s, call) },
        Function("barrier", takes: ["parties", "options"], python: "Python's Barrier(parties, action, timeout) is ipc.barrier(parties, {action = f, timeout = t}) here", options: ["action", "timeout"]) { s, call throws(LuaRaise) in
            let n = try s.integerArgument(1, call.name, "parties")
            guard n >= 1 && n <= 1 << 20 else { throw LuaRaise("\(call.name): parties must be at least 1, got \(n)") }
            let ref = try s.newObject(.barrier, nameOption: 2, call.name)
            var timeout: Double?
            var hasAction = false
            if s.type(2) == LUA_TTABLE {
                switch try s.rawField(2, "timeout") {
                case LUA_TNIL: break
                case LUA_TNUMBER:
                    let t = s.number(-1)!
                    guard !t.isNaN && t >= 0 else { throw LuaRaise("\(call.name): options.timeout must be a number of seconds (0 or more), got \(t)") }
                    if t != .infinity { timeout = t }
                default: throw LuaRaise("\(call.name): options.timeout must be a number of seconds, got \(s.typeName(-1))")
                }
                s.pop()
                switch try s.rawField(2, "action") {
                case LUA_TNIL: s.pop()
                case LUA_TFUNCTION: hasAction = true  // (left on the stack for the user value)
                default: throw LuaRaise("\(call.name): options.action must be a function, got \(s.typeName(-1))")
                }
            }
            let b = try making(s, call.name) { () throws(IPCError) in try SharedBarrier(parties: UInt32(n), name: ref.name) }
            let actionIndex = s.top
            try s.push(object: BarrierObject(b, ref: ref, options: BarrierOptions(defaultTimeout: timeout, hasAction: hasAction)), kind: .barrier)
            if hasAction {
                s.pushValue(actionIndex)
                _ = ipc_lua_setuservalue(s.L, -2)
            }
            return 1
        },
    ]
}
