import IPCCore

/// The execution context of this process: everything the runtime keeps of the run it
/// takes part in, in one value (as loom keeps a model run in one `Execution` and Lua a
/// state in one `global_State`). It is made with the process (a child starts from its
/// parent's copy, and `Runtime.becomeChild` resets what is not its own) and reached in
/// one place, `Execution.current`; the types that work on it (`Gate`, `Trace`,
/// `CallSite`, `ObjectKind`, `Runtime`, `Hooks`, `RunBoard`, `Schedule`,
/// `StepDependence`) read and write their part there.
///
/// Outside it, each with its reason: the bindings' part (IPCLua's `LuaExecution`: its
/// types are Lua's, which this module cannot name), and the core's part (IPCCore's
/// `CoreExecution`: below this module, and read on paths that must not call up into it).
///
/// Every field starts as nil, zero or false: then the context is laid out by the
/// compiler, and reaching it costs no once-check (a global with any other initial value,
/// an empty array included, is made at its first use, and on Linux every use then calls
/// `swift_once`). What must be made is made at its first use (`Runtime.this`, the trace
/// buffer) or starts as nil for "none yet" (the registries, the hooks).
public struct Execution {
    /// The kinds of IPC object declared so far, after `process` (`ObjectKind`'s registry).
    var kinds: [ObjectKind.Record]?
    /// The calls declared so far (`CallSite`'s table).
    var sites: [CallSite.Traits]?
    /// The gate: the calls in progress and the hooks that watch them.
    var gate = GateState()
    /// `--trace`: this process's event buffer and clocks.
    var trace = TraceState()
    /// This process: its name, place, children and options (made at its first use).
    var process: ProcessState?
    /// The lock of the output discipline (shared by every process forked afterwards).
    var outputLock: SharedRegion?
    /// `--jitter`'s hook, reseeded in each child.
    var jitter: JitterHook?
    /// The run's board (`RunBoard.current`), made by the host; a child shares it.
    var board: RunBoard?
    /// The controlled scheduler of the run (`Schedule.current`), when one runs.
    var schedule: Schedule?
    /// `ipcplay step`'s hook (`ObjectStateHook.installed`), when it runs.
    var objectStateHook: ObjectStateHook?
    /// The Lua layer's answers about the current call, which it alone can give: who holds
    /// what it waits for (`RunBoard.awaitedHolders`) and its object's state
    /// (`ObjectStateHook.describeCurrentObject`).
    var awaitedHolders: (() -> RunBoard.Awaited)?
    var describeCurrentObject: (() -> String?)?
    /// Per call site, what a death changes for it (`StepDependence.siteClasses`).
    var siteClasses: [UInt8]?
    /// In a run of the exhaustive search: its slot's sleep set (set in the run's fork).
    var sleepBoard: SleepBoard?

    /// The context of this process. The one static of the runtime (it cannot live in
    /// another context: the core's is below this module and cannot name its types): a
    /// forked child gets its parent's memory, context included, whatever holds it.
    nonisolated(unsafe) public static var current = Execution()
}

/// The gate's part of the context (see `Gate`).
struct GateState {
    /// The calls in progress, innermost last: a plain buffer of plain values, so that
    /// entering and leaving cost no reference counting.
    var stack: UnsafeMutablePointer<GateCall>?
    var capacity = 0
    var depth = 0
    var hooks: [GateHook]?
    var isObserved = false
}

/// The trace's part of the context (see `Trace`).
struct TraceState {
    /// Something records the calls: the JSON trace, the timeline's events, or both.
    var isOn = false
    /// `--trace`: the JSON trace (for Perfetto) is written.
    var writesJSON = false
    var fd: Int32 = -1
    /// `--timeline`: the events are recorded as `TraceEvent` records, into `eventsFD`.
    var recordsEvents = false
    var eventsFD: Int32 = -1
    var events: ByteBuffer?
    /// Where a call's value preview is written first (as text).
    var preview: ByteBuffer?
    /// Made when the trace starts (or at its first use).
    var buffer: ByteBuffer?
    var origin: Int64 = 0
    /// When the current call parked, and how long it has been parked in all.
    var parkedSince: Int64 = 0
    var parkedTotal: Int64 = 0
    var messageCounter: UInt64 = 0
    /// Under a controlled scheduler, the number of steps made so far: each event carries
    /// it (`"step"`), and a timeline numbers its rows with it, not with virtual seconds.
    var step: (() -> Int64)?
}

extension TraceState {
    /// Forgets the events a parent had buffered (a new child starts with none).
    mutating func forgetBuffered() {
        buffer?.count = 0
        events?.count = 0
    }
}
