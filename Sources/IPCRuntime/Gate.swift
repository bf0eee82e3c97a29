import CRuntimeShim
import IPCCore

/// What a call does to its object, for the scheduler (a read never wakes anybody) and
/// for the critical pair (two calls conflict when one of them writes).
public enum Access: Sendable { case read, write }

/// One IPC call of the contract, declared once: `queue:put`, `value read`, `ipc.sleep`.
/// The bindings declare theirs when the module opens; the runtime declares its own
/// (process start and end, the joins at a process's end). Ids are the same in every
/// process of a run: they are given before the first fork.
/// A site is its id alone (its name and traits are in a table): the gate copies it at
/// every call, and a plain value costs no reference counting.
public struct CallSite: Sendable, Hashable {
    public let id: Int

    /// What a site is: its name in traces, hang reports and schedules (the names
    /// docs/api.md uses), what it does to its object, and whether it can wait (it has a
    /// probe: would it block now?).
    public struct Traits: Sendable {
        public let name: String
        public let access: Access
        public let blocking: Bool
    }

    /// Every call declared in this process, by id (kept in the execution context).
    public static var all: [Traits] {
        @inline(__always) get { Execution.current.sites ?? [] }
    }

    @inlinable public var name: String { CallSite.all[id].name }
    @inlinable public var access: Access { CallSite.all[id].access }
    @inlinable public var blocking: Bool { CallSite.all[id].blocking }

    /// Declares a call (once per name: declaring it again returns the same site).
    public static func declare(_ name: String, access: Access, blocking: Bool = false) -> CallSite {
        if let i = all.firstIndex(where: { $0.name == name }) { return CallSite(id: i) }
        Execution.current.sites = all + [Traits(name: name, access: access, blocking: blocking)]
        return CallSite(id: all.count - 1)
    }

    public static func named(_ name: String) -> CallSite? { all.firstIndex { $0.name == name }.map { CallSite(id: $0) } }

    /// The site of id `id`, if one was declared.
    public static func with(id: Int) -> CallSite? { all.indices.contains(id) ? CallSite(id: id) : nil }

    // The runtime's own calls.
    public static let processStart = declare("process start", access: .write)
    public static let processEnd = declare("process end", access: .write)
    public static let join = declare("process:join", access: .write, blocking: true)
}

/// The result of a call, as the gate's hooks see it after the call.
public struct CallResult {
    public enum Outcome: Equatable {
        /// It did what it was asked.
        case done
        /// A normal result short of that: "timeout", "closed", "empty", "full", "false".
        case fell(String)
        /// It raised (misuse): the message.
        case raised(String)
    }

    public var outcome: Outcome
    /// What the result says, for traces ("true", "index 2", "3 ready").
    public var text: String?
    /// Bytes moved.
    public var bytes = -1
    /// The trace ids of a message sent (`flowOut`) or received (`flowIn`).
    public var flowOut: UInt64 = 0
    public var flowIn: UInt64 = 0
    /// Writes a short JSON preview of the value moved.
    public var preview: ((ByteBuffer) -> Void)?
    /// A figure of the object after the call (a queue's items, a semaphore's value).
    public var counter: (what: StaticString, value: Int)?

    public init(_ outcome: Outcome, text: String? = nil) {
        self.outcome = outcome
        self.text = text
    }
}

/// Watches every call at the gate: before it takes effect (it may hold the calling
/// process there: the controlled scheduler does), and after, with its result.
public protocol GateHook: AnyObject {
    func before(_ call: GateCall, wouldBlock: () -> Bool)
    func after(_ call: GateCall, _ result: CallResult)
}

/// One call passing the gate.
public struct GateCall {
    public let site: CallSite
    public let object: ObjectRef
    /// When the call gives up (its timeout).
    public let deadline: Deadline
    /// True when an outside program could end its wait (sockets).
    public let external: Bool
    /// When it started (real time), for its trace slice.
    public internal(set) var started: Int64 = 0
}

/// The gate: every IPC call passes through `enter` before it takes effect and `leave`
/// after. Tracing, the hang board, jitter and the controlled scheduler are its hooks;
/// none of them is wired into a binding. With no hook installed a call costs a few stores
/// into a plain buffer and two predictable branches.
public enum Gate {
    /// The calls in progress in this process, innermost last (a finalizer may make a
    /// call in the middle of another). The hang board reads the innermost when it parks.
    /// A plain buffer of plain values: entering and leaving cost no reference counting.
    /// (Its state is the execution context's `gate`.)
    static var stack: UnsafeMutablePointer<GateCall>? {
        @inline(__always) get { Execution.current.gate.stack }
        @inline(__always) set { Execution.current.gate.stack = newValue }
    }
    static var capacity: Int {
        @inline(__always) get { Execution.current.gate.capacity }
        @inline(__always) set { Execution.current.gate.capacity = newValue }
    }
    public internal(set) static var depth: Int {
        @inline(__always) get { Execution.current.gate.depth }
        @inline(__always) set { Execution.current.gate.depth = newValue }
    }
    static var hooks: [GateHook] {
        @inline(__always) get { Execution.current.gate.hooks ?? [] }
        @inline(__always) set { Execution.current.gate.hooks = newValue }
    }
    public internal(set) static var isObserved: Bool {
        @inline(__always) get { Execution.current.gate.isObserved }
        @inline(__always) set { Execution.current.gate.isObserved = newValue }
    }

    /// The innermost call in progress, if any.
    public static var current: GateCall? { depth > 0 ? stack![depth - 1] : nil }

    public static func install(_ hook: GateHook) {
        hooks.append(hook)
        isObserved = true
        ipc_gate_set_hooked(1)
    }

    public static func removeAll() {
        hooks = []
        isObserved = false
        ipc_gate_set_hooked(0)
    }

    /// A call begins: the hooks see it before it takes effect. `wouldBlock` tells whether
    /// it would wait if it went ahead now (blocking calls only).
    @inline(__always)
    public static func enter(_ site: CallSite, _ object: ObjectRef, deadline: Deadline = .never, external: Bool = false,
                             wouldBlock: () -> Bool = { false }) {
        if depth == capacity { grow() }
        (stack! + depth).initialize(to: GateCall(site: site, object: object, deadline: deadline, external: external))
        depth += 1
        if isObserved { notifyBefore(wouldBlock) }
    }

    @inline(never)
    static func grow() {
        let bigger = UnsafeMutablePointer<GateCall>.allocate(capacity: max(8, capacity * 2))
        if let stack {
            bigger.moveInitialize(from: stack, count: depth)
            stack.deallocate()
        }
        stack = bigger
        capacity = max(8, capacity * 2)
    }

    /// The call ends with `result` (built only when a hook looks at it).
    @inline(__always)
    public static func leave(_ result: () -> CallResult) {
        precondition(depth > 0, "Gate.leave without enter")
        if isObserved {
            let call = stack![depth - 1]
            notifyAfter(call, result())
        }
        depth -= 1
        (stack! + depth).deinitialize(count: 1)
    }

    @inline(never)
    static func notifyBefore(_ wouldBlock: () -> Bool) {
        for hook in hooks { hook.before(stack![depth - 1], wouldBlock: wouldBlock) }
        stack![depth - 1].started = Trace.now()
    }

    @inline(never)
    static func notifyAfter(_ call: GateCall, _ result: CallResult) {
        for hook in hooks.reversed() { hook.after(call, result) }
    }

    /// A call that is not an IPC object's method but still a step (process start and end):
    /// enter and leave at once.
    public static func pass(_ site: CallSite, _ object: ObjectRef) {
        enter(site, object)
        leave { CallResult(.done) }
    }

    /// Forgets the calls in progress (a new child starts with none).
    static func reset() {
        if depth > 0 { stack!.deinitialize(count: depth) }
        depth = 0
    }
}
