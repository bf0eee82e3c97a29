/// The options of one run, as the command line gave them.
public struct RunOptions: Sendable {
    /// Multiplies every `ipc.sleep`.
    public var timeScale: Double = 1
    /// End the whole run after this many seconds (nil: no limit).
    public var timeout: Double?
    /// Up to this many milliseconds of random delay before each IPC call.
    public var jitterMilliseconds: Double = 0
    /// The seed of the jitter generators.
    public var seed: UInt64?
    /// Where to write a Chrome/Perfetto trace.
    public var tracePath: String?
    /// Print a swim-lane timeline when the run ends (or write it as SVG).
    public var timeline = false
    public var timelineSVG: String?
    /// Where to record the events a timeline is drawn from (`TraceEvent` records).
    public var eventsPath: String?
    /// Where `ipcplay test` wants this run's outcome ("key: value" lines).
    public var reportPath: String?
    /// The same, as a descriptor already open (`explore` runs).
    public var reportDescriptor: Int32?
    /// Report a deadlock (every process parked for ever on the run's objects) at once.
    public var deadlockCheck = true
    /// `ipcplay test`: an uncaught error in a child that nobody joined fails the run.
    public var strictChildErrors = false
    /// A supervisor process leads the run's process group (and ends it if the host dies).
    /// Without one (`explore`'s runs, which the explorer guards), the host leads it.
    public var supervised = true
    /// Run under a controlled scheduler (`--sched`, `explore`, `replay`, `step`).
    public var schedule: ScheduleOptions?
    /// The bytes each process's Lua heap may hold, and one message may take
    /// (`--memory-limit`); nil: only the address space's limit, if any.
    public var memoryLimit: Int?

    /// The script's file name, for the titles of the run's processes in `ps`.
    public var scriptName: String?

    public init() {}
}
