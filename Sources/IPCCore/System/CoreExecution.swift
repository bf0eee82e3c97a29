/// The core's part of this process's execution context (IPCRuntime's `Execution` holds
/// the runtime's, IPCLua's `LuaExecution` the bindings'): what IPCCore keeps of the run,
/// in one value reached in one place, `CoreExecution.current`. The types that work on it
/// (`Blocking`, `MonotonicClock`, `ProcessIdentity`, `SharedRegion`, `Connection`) read
/// and write their part there, through their own static properties.
///
/// It is apart from `Execution` because the core is below the runtime: it cannot name the
/// runtime's types, and its hot paths (every blocking call reads the controller, every
/// deadline the clock, every lock the pid) must not call up into another module to find
/// their state. A forked child starts from its parent's copy, like the rest of its memory;
/// `ProcessIdentity.refreshAfterFork()` renews the one field that is the process's own.
///
/// Every field starts as nil, zero or false (see `Execution`): the compiler then lays the
/// context out in the binary, and reaching it costs a load, no once-check. (The modules
/// above, when they inline a reader such as `Blocking.controller`, get its address from
/// a call that only returns it: a struct global's initial value is not exported to them.
/// The core's own hot paths load it directly.)
@usableFromInline
struct CoreExecution {
    // `Blocking`: the controlled scheduler and the runtime's park callbacks.
    @usableFromInline var controller: Blocking.Controller?
    @usableFromInline var declaredProbe: Probe?
    @usableFromInline var willPark: ((Deadline) -> Void)?
    @usableFromInline var didWake: (() -> Void)?
    @usableFromInline var awaitedHolder: Int32 = 0
    var recoveredFromDeadHolder: ((_ object: String, _ deadPid: Int32) -> Void)?

    // `MonotonicClock`: the run's virtual clock and step count, under a controlled scheduler.
    @usableFromInline var virtualClock: UnsafeMutablePointer<UInt64>?
    @usableFromInline var steps: UnsafeMutablePointer<UInt64>?

    /// `ProcessIdentity`: this process's pid, 0 until first read.
    @usableFromInline var pid: Int32 = 0

    /// `SharedRegion`: the regions this process maps (nil: none made yet).
    var regions: SharedRegion.Registry?

    /// `Connection`: how long a sender waits for a lane slot, when a test changed it (0:
    /// `Connection.defaultSlotWait`).
    var slotWaitSeconds: Double = 0

    /// The context of this process. The one static of the core: a forked child gets its
    /// parent's memory, context included; the runtime's and the bindings' contexts are
    /// their own statics, as their types are theirs (the core cannot name them).
    @usableFromInline nonisolated(unsafe) static var current = CoreExecution()
}
