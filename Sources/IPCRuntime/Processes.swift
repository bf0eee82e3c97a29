import CRuntimeShim
import CSystemShim
import Glibc
import IPCCore

/// Everything this process knows of itself and of its run, in one place. A new child
/// starts from its parent's copy and resets what is not its own (`becomeChild`).
public final class ProcessState {
    /// `MainProcess` in the host, the Process's name in a child.
    public internal(set) var name = "MainProcess"
    /// The path of spawn counters that names default children: "" in the host, "2" in
    /// its second child, "2:1" in that child's first child (as multiprocessing does).
    public internal(set) var identity = ""
    /// 0 in the host, else the run-wide spawn index of this process.
    public internal(set) var spawnIndex = 0
    public internal(set) var isHost = true
    /// The run's options, as the command line gave them.
    public internal(set) var options = RunOptions()
    /// This process's slot on the run's board, if it got one.
    var slot: Int?
    /// How many Process objects this process has made (for `Process-N` names).
    var processCounter = 0
    /// The children this process started and has not reaped.
    public internal(set) var children: [ChildProcess] = []
    /// The process that started this one (nil in the host): `ipc.parent_process()`.
    public internal(set) var parent: (name: String, pid: Int32)?
    /// Where the process is when no Lua code runs (waiting for children at its end).
    var locationOverride: String?
    /// True while this process counts itself as parked for ever on the run's objects.
    var parkedForEver = false
    /// The report file (`--report`), or -1.
    var reportFD: Int32 = -1
    /// Computes the Lua location of the current call (set by the script runner).
    public var locate: (() -> String)?
    /// This process as an object of the run (its start and end are steps on it).
    var object = ObjectRef(id: 0, kind: .process, name: "MainProcess")

    /// The default name of the next Process made here.
    public func nextDefaultName() -> String {
        processCounter += 1
        return identity.isEmpty ? "Process-\(processCounter)" : "Process-\(identity):\(processCounter)"
    }

    var childIdentityPrefix: String { identity.isEmpty ? "" : identity + ":" }

    /// Where the current call is, for reports.
    var location: String { locationOverride ?? locate?() ?? "" }
}

/// A process started by this one (the runtime half of an `ipc.process`).
public final class ChildProcess: GateObject {
    public var name: String { didSet { ref = ObjectRef(id: objectID, kind: .process, name: name) } }
    /// Made once, and again when it is renamed (not at every call through the gate).
    public private(set) var ref: ObjectRef
    public var daemon: Bool
    /// The default-name counter value when it was made, for the child's identity.
    let ordinal: Int
    public private(set) var pid: Int32 = 0
    /// The run-wide spawn index (its place in the run), once started.
    public private(set) var spawnIndex = 0
    /// The process that started it: only it can join or reap it.
    public private(set) var parentPid: Int32 = 0
    public private(set) var termination: ProcessControl.Termination?
    var pidfd: Int32 = -1
    public let objectID: UInt32

    public init(name: String?, daemon: Bool) {
        let n = Runtime.this.nextDefaultName()
        self.name = name ?? n
        self.daemon = daemon
        ordinal = Runtime.this.processCounter
        objectID = RunBoard.current?.nextObjectID() ?? 0
        ref = ObjectRef(id: objectID, kind: .process, name: self.name)
    }

    deinit { if pidfd >= 0 { close(pidfd) } }

    public var isStarted: Bool { pid != 0 }
    /// A descriptor readable once the child has ended (its pidfd), or -1. Parent only.
    public var endDescriptor: Int32 { termination == nil ? pidfd : -1 }
    public var isMine: Bool { parentPid == ProcessIdentity.pid }

    /// Forks; the child runs `body` and ends with the code it returns. In the parent,
    /// returns once the child exists.
    public func start(_ body: () -> Int32) throws(IPCError) {
        guard let board = RunBoard.current else { throw IPCError.system("the runtime is not started") }
        if Runtime.this.isHost && Runtime.this.options.supervised { try Supervisor.ensureStarted(board: board) }
        let group = Int32(bitPattern: ipc_load32(&board.header.pointee.group))
        let spawnIndex = board.nextSpawnIndex()
        Schedule.current?.checkRoom(for: spawnIndex)
        let parent = ProcessIdentity.pid
        Runtime.willFork()
        let child: Int32
        // Until both sides have put the child in the run's group, no signal handler may
        // end the run: it would kill the group and miss the child.
        ipc_block_signals_for_fork()
        Schedule.current?.willFork(child: spawnIndex, name: name, object: objectID)
        do { child = try ProcessControl.fork() } catch {
            ipc_unblock_signals_after_fork()
            Schedule.current?.forkFailed(child: spawnIndex)
            throw IPCError.resource("cannot fork: \(error)")
        }
        if child == 0 {
            ProcessIdentity.refreshAfterFork()
            _ = setpgid(0, group)
            // Resets handlers and unblocks signals: one sent to the group meanwhile is
            // delivered now, with its default action.
            Runtime.becomeChild(name: name, identity: Runtime.this.childIdentityPrefix + String(ordinal),
                                spawnIndex: spawnIndex, parent: parent, board: board, object: ref)
            Runtime.endChild(code: body())
        }
        _ = setpgid(child, group)
        ipc_unblock_signals_after_fork()
        Schedule.current?.forked(child: spawnIndex, pid: child)
        pid = child
        self.spawnIndex = spawnIndex
        parentPid = parent
        Trace.instant("spawn \(name)", pid: child)
        pidfd = (try? ProcessControl.pidfdOpen(child))?.rawValue ?? -1
        Runtime.this.children.append(self)
    }

    /// Reaps the child if it has ended (non-blocking). Parent only.
    @discardableResult
    public func poll() -> ProcessControl.Termination? {
        if termination != nil || !isStarted || !isMine { return termination }
        if let schedule = Schedule.current, !schedule.hasEnded(spawnIndex) { return nil }
        if let t = try? ProcessControl.wait(pid, block: Schedule.current != nil) { record(t) }
        return termination
    }

    func record(_ t: ProcessControl.Termination) {
        termination = t
        Trace.instant("exit \(name)", pid: pid, exitcode: t.exitcode)
        if pidfd >= 0 { close(pidfd); pidfd = -1 }
        RunBoard.current?.releaseSlot(pid: pid)
        Runtime.this.children.removeAll { $0 === self }
    }

    public var isAlive: Bool { isStarted && poll() == nil }

    /// Would `join` wait now?
    public var isRunning: Bool {
        if termination != nil { return false }
        if let schedule = Schedule.current { return !schedule.hasEnded(spawnIndex) }
        return poll() == nil
    }

    /// `isRunning`, declaring its probe under a controlled run (see `Probe`).
    public var joinWouldBlock: Bool {
        if termination == nil, let schedule = Schedule.current { return schedule.endedProbe(spawnIndex).wouldBlock() }
        return isRunning
    }

    /// Waits for the child to end, until `deadline`. True when it has ended. Parent only.
    public func join(deadline: Deadline) -> Bool {
        if poll() != nil { return true }
        if deadline.hasExpired { return false }
        if let schedule = Schedule.current {
            // Its end is a step of the schedule; then the kernel's exit follows at once.
            guard Blocking.poll(until: { schedule.hasEnded(self.spawnIndex) }, deadline: deadline,
                                probe: schedule.endedProbe(spawnIndex)) else { return false }
            return poll() != nil
        }
        if deadline.isNever || pidfd < 0 {
            Blocking.parked(deadline) {
                if let t = try? ProcessControl.wait(pid, block: true) { record(t) }
            }
            return termination != nil
        }
        while termination == nil {
            let ready = Blocking.poll(pidfd, Int16(POLLIN), deadline: deadline)
            poll()
            if !ready { break }
        }
        return termination != nil
    }

    /// Sends `signal` unless the child has already been reaped (its pid may be reused).
    public func send(signal: Int32) {
        guard isStarted, poll() == nil else { return }
        guard isMine || RunBoard.current?.lists(pid: pid) == true else { return }
        if let schedule = Schedule.current {
            // The signal ends it now, in the schedule: it makes no further step, and it
            // is gone (its locks freed) before the caller's next step.
            schedule.willEnd(spawnIndex)
            _ = try? ProcessControl.signal(pid, signal)
            ProcessControl.awaitEnd(pid)
            return
        }
        _ = try? ProcessControl.signal(pid, signal)
    }
}

/// The life cycle of every process of a run.
public enum Runtime {
    /// This process.
    public internal(set) static var this: ProcessState {
        @inline(__always) get { Execution.current.process ?? makeThis() }
        set { Execution.current.process = newValue }
    }

    @inline(never)
    static func makeThis() -> ProcessState {
        let p = ProcessState()
        Execution.current.process = p
        return p
    }

    // MARK: - Host

    /// Prepares the host: the board, the signal handlers, the output discipline, the
    /// gate's hooks.
    public static func startHost(options: RunOptions) throws(IPCError) {
        this.options = options
        let board = try RunBoard.install()
        if !options.supervised {
            // The host leads the run's group itself; its parent guards it.
            _ = setpgid(0, 0)
            board.header.pointee.self_group = 1
            ipc_store32(&board.header.pointee.group, UInt32(bitPattern: ProcessIdentity.pid))
        }
        _ = ipc_set_child_subreaper()  // orphaned grandchildren come back to us to be reaped
        ipc_shutdown_install(board.header)
        ipc_deadlock_exit_install()
        ipc_install_sigchld_handler()
        try installOutput()
        this.slot = board.claimSlot(name: "MainProcess", spawnIndex: 0, parent: getppid())
        this.object = ObjectRef(id: board.nextObjectID(), kind: .process, name: "MainProcess")
        board.header.pointee.deadlock_check = options.deadlockCheck && options.schedule == nil ? 1 : 0
        if let fd = options.reportDescriptor {
            this.reportFD = fd
        } else if let path = options.reportPath {
            this.reportFD = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        }
        ipc_set_report_fd(this.reportFD)
        HangBoard.install()
        if let path = options.tracePath {
            // A controlled run's trace counts from its virtual clock's zero.
            try Trace.start(path: path, origin: options.schedule == nil ? board.header.pointee.start_ns : 0)
        }
        if let path = options.eventsPath {
            try Trace.startEvents(path: path, origin: options.schedule == nil ? board.header.pointee.start_ns : 0)
        }
        try Hooks.install(options: options, board: board)
        Trace.processStarted(name: "MainProcess", index: 0)
        if let timeout = options.timeout { ipc_timeout_arm(timeout) }
    }

    /// Writes `report` to the report file, if there is one.
    public static func report(_ report: RunReport) {
        report.write(to: this.reportFD)
    }

    /// Before a fork: nothing buffered may be written twice.
    static func willFork() {
        ipc_flush_all()
        Trace.flush()
    }

    /// The normal end of the host: wait for every non-daemon child, end the daemon ones,
    /// then end whatever is left of the run (grandchildren, the supervisor) and remove
    /// the run's socket files.
    public static func finishHost() {
        ipc_exit_clear_words(UInt32(bitPattern: ProcessIdentity.pid))
        ipc_flush_all()
        waitForChildren()
        endSteps()
        Trace.flush()  // before the teardown closes the trace
        ipc_teardown(0)
        Trace.finish()
    }

    /// Sets the run's options before the host starts (the Lua module reads some).
    public static func configure(_ options: RunOptions) { this.options = options }

    /// Uncaught errors of children: those no process joined (`ipcplay test` fails on
    /// them), or all of them (a controlled run fails on any).
    public static func childErrors(includingJoined: Bool) -> [(name: String, pid: Int32, message: String, seen: Bool)] {
        RunBoard.current?.errorRecords().filter { includingJoined || !$0.seen } ?? []
    }

    /// A failure is named by its cause: in a controlled run that fails on any child's error
    /// (`explore`, `replay`), an uncaught error of a child made before `failure` (one
    /// process runs at a time, so before it in step order) is the headline, and `failure`
    /// (a deadlock on the dead child's lock, the main script's assertion) its consequence.
    public static func namedByCause(_ failure: RunReport) -> RunReport {
        guard this.options.strictChildErrors, this.options.schedule != nil,
              failure.outcome != .childError, let first = childErrors(includingJoined: true).first else { return failure }
        var report = RunReport(.childError)
        report.processes = ["\(first.name) (pid \(first.pid))"]
        report.messages = ["uncaught error in \(first.name) (pid \(first.pid)): \(first.message)"]
        switch failure.outcome {
        case .deadlock?: report.messages.append(consequence + "the run deadlocked: every process is blocked, and none of them can wake another:")
        case .error?: report.messages.append(consequence + "the main script raised: " + (failure.messages.first ?? ""))
        default: report.messages.append(consequence + "\(failure.outcome?.rawValue ?? "failure"): " + (failure.messages.first ?? ""))
        }
        report.blocked = failure.blocked
        report.cycle = failure.cycle
        return report
    }

    /// How `namedByCause` introduces what followed from the cause.
    public static let consequence = "as a consequence, "

    /// The host's end after an error in the main script: end every process at once.
    public static func abortHost() {
        ipc_flush_all()
        Schedule.current?.abandon()
        for child in this.children { child.send(signal: SIGTERM) }
        Trace.flush()
        ipc_teardown(200)
        Trace.finish()
    }

    // MARK: - Children

    static func becomeChild(name: String, identity: String, spawnIndex: Int, parent: Int32, board: RunBoard, object: ObjectRef) {
        ipc_reset_signals()
        // Without a supervisor, each process ends with the one that started it.
        if !this.options.supervised { _ = ipc_set_parent_death_signal(SIGKILL) }
        ipc_install_sigchld_handler()
        ipc_detach_stdin()
        let state = ProcessState()
        state.name = name
        state.identity = identity
        state.spawnIndex = spawnIndex
        state.isHost = false
        state.options = this.options
        state.locate = this.locate
        state.reportFD = this.reportFD
        state.slot = board.claimSlot(name: name, spawnIndex: spawnIndex, parent: parent)
        state.object = object
        state.parent = (this.name, parent)
        this = state  // the parent's children are not ours
        setTitle(name)
        Gate.reset()
        ipc_exit_reset_words()
        Hooks.becomeChild(identity: identity, spawnIndex: spawnIndex)
        Execution.current.trace.forgetBuffered()
        Trace.processStarted(name: name, index: spawnIndex)
        Gate.pass(.processStart, object)
    }

    /// `ipcplay: NAME (script.lua)` in `ps`, NAME in `top`: the run's processes told apart.
    static func setTitle(_ name: String) {
        let script = this.options.scriptName.map { " (" + ($0.split(separator: "/").last.map(String.init) ?? $0) + ")" } ?? ""
        ipc_set_process_title("ipcplay: " + name + script, name)
    }

    /// Ends a child process: waits for its own non-daemon children, ends its daemon ones,
    /// flushes its output and leaves with `_exit` (never the parent's exit path).
    public static func endChild(code: Int32) -> Never {
        ipc_exit_clear_words(UInt32(bitPattern: ProcessIdentity.pid))
        ipc_flush_all()
        waitForChildren()
        endSteps()
        Trace.flush()
        if let slot = this.slot, let board = RunBoard.current { board.endSlot(slot) }
        ipc_flush_all()
        _exit(code)
    }

    /// The process's last step: under a controlled scheduler it hands the turn on for good.
    static func endSteps() {
        ipc_flush_all()
        this.locationOverride = ""
        Gate.pass(.processEnd, this.object)
        this.locationOverride = nil
    }

    /// Waits for the non-daemon children, then terminates and reaps the daemon ones.
    static func waitForChildren() {
        this.locationOverride = this.isHost ? "the end of the main script" : "the end of the process"
        defer { this.locationOverride = nil }
        for child in this.children where !child.daemon {
            Gate.enter(.join, child.ref, wouldBlock: { child.isRunning })
            _ = child.join(deadline: .never)
            Gate.leave { CallResult(.done, text: "true") }
        }
        let daemons = this.children.filter { $0.daemon }
        for child in daemons { child.send(signal: SIGTERM) }
        for child in daemons {
            if !child.join(deadline: .after(seconds: 1)) {
                child.send(signal: SIGKILL)
                _ = child.join(deadline: .never)
            }
        }
    }

    // MARK: - Output

    /// The lock of the output discipline: shared by every process forked afterwards.
    static var outputLock: SharedRegion? {
        get { Execution.current.outputLock }
        set { Execution.current.outputLock = newValue }
    }

    /// Makes stdout and stderr line-disciplined (lines from many processes never splice),
    /// once, before anything captures the streams (Lua's `io` library does).
    public static func installOutput() throws(IPCError) {
        guard outputLock == nil else { return }
        let region = try SharedRegion(size: MemoryLayout<ipc_robust_lock>.size)
        let lock = region.header(ipc_robust_lock.self)
        try RobustLock(lock).initialize()
        outputLock = region
        _ = ipc_install_line_streams(lock)
    }

    /// Flushes every stdio stream (`fflush(NULL)`).
    public static func flushOutput() { ipc_flush_all() }

    /// One line on stderr, written whole.
    public static func warn(_ message: String) {
        ipc_flush_all()
        writeStderr("ipcplay: warning: \(message)\n")
    }

    /// Writes `text` to stdout directly (after `flushOutput`).
    public static func writeStdout(_ text: String) { Syscall.writeAll(1, text) }

    /// Writes `text` to stderr with as few writes as possible (one when it fits PIPE_BUF).
    public static func writeStderr(_ text: String) { Syscall.writeAll(2, text) }

    // MARK: - Time

    /// When an `ipc.sleep(seconds)` ends: scaled by `--time-scale`, on the run's clock
    /// (virtual under a controlled scheduler).
    public static func sleepDeadline(seconds: Double) -> Deadline {
        let scaled = seconds * this.options.timeScale
        guard scaled > 0 else { return .now }
        return scaled.isFinite ? .after(seconds: scaled) : .never
    }
}
