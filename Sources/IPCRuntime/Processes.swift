import CSystemShim
import Glibc
import IPCCore

/// Who the calling process is.
public enum CurrentProcess {
    /// `MainProcess` in the host, the Process's name in a child.
    nonisolated(unsafe) public internal(set) static var name = "MainProcess"
    /// The path of spawn counters that names default children: "" in the host, "2" in
    /// its second child, "2:1" in that child's first child (as multiprocessing does).
    nonisolated(unsafe) public internal(set) static var identity = ""
    /// 0 in the host, else the run-wide spawn index of this process.
    nonisolated(unsafe) public internal(set) static var spawnIndex = 0
    nonisolated(unsafe) public internal(set) static var isHost = true
    /// This process's slot on the run's board, if it got one.
    nonisolated(unsafe) static var slot: Int?
    /// How many Process objects this process has made (for `Process-N` names).
    nonisolated(unsafe) static var processCounter = 0

    /// The default name of the next Process made here.
    public static func nextDefaultName() -> String {
        processCounter += 1
        return identity.isEmpty ? "Process-\(processCounter)" : "Process-\(identity):\(processCounter)"
    }

    static var childIdentityPrefix: String { identity.isEmpty ? "" : identity + ":" }
}

/// A process started by this one (the runtime half of an `ipc.process`).
public final class ChildProcess {
    public var name: String
    public var daemon: Bool
    /// The default-name counter value when it was made, for the child's identity.
    let ordinal: Int
    public private(set) var pid: Int32 = 0
    /// The process that started it: only it can join or reap it.
    public private(set) var parentPid: Int32 = 0
    public private(set) var termination: ProcessControl.Termination?
    var pidfd: Int32 = -1

    public init(name: String?, daemon: Bool) {
        let n = CurrentProcess.nextDefaultName()
        self.name = name ?? n
        self.daemon = daemon
        ordinal = CurrentProcess.processCounter
    }

    deinit { if pidfd >= 0 { close(pidfd) } }

    public var isStarted: Bool { pid != 0 }
    public var isMine: Bool { parentPid == ProcessIdentity.pid }

    /// Forks; the child runs `body` and ends with the code it returns. In the parent,
    /// returns once the child exists.
    public func start(_ body: () -> Int32) throws(IPCError) {
        guard let board = RunBoard.current else { throw IPCError.system("the runtime is not started") }
        if CurrentProcess.isHost { try Supervisor.ensureStarted(board: board) }
        let group = Int32(bitPattern: ipc_load32(&board.header.pointee.group))
        let spawnIndex = board.nextSpawnIndex()
        let parent = ProcessIdentity.pid
        ipc_flush_all()  // or buffered output would be printed twice
        Trace.flush()    // or buffered events would be written twice
        let child: Int32
        // Until both sides have put the child in the run's group, no signal handler may
        // end the run: it would kill the group and miss the child.
        ipc_block_signals_for_fork()
        do { child = try ProcessControl.fork() } catch {
            ipc_unblock_signals_after_fork()
            throw IPCError.resource("cannot fork: \(error)")
        }
        if child == 0 {
            ProcessIdentity.refreshAfterFork()
            _ = setpgid(0, group)
            // Resets handlers and unblocks signals: one sent to the group meanwhile is
            // delivered now, with its default action.
            Runtime.becomeChild(name: name, identity: CurrentProcess.childIdentityPrefix + String(ordinal),
                                spawnIndex: spawnIndex, parent: parent, board: board)
            Runtime.endChild(code: body())
        }
        _ = setpgid(child, group)
        ipc_unblock_signals_after_fork()
        pid = child
        parentPid = parent
        Trace.instant("spawn \(name)", args: [("pid", String(child))])
        pidfd = (try? ProcessControl.pidfdOpen(child))?.rawValue ?? -1
        Runtime.children.append(self)
    }

    /// Reaps the child if it has ended (non-blocking). Parent only.
    @discardableResult
    public func poll() -> ProcessControl.Termination? {
        if termination != nil || !isStarted || !isMine { return termination }
        if let t = try? ProcessControl.wait(pid, block: false) { record(t) }
        return termination
    }

    func record(_ t: ProcessControl.Termination) {
        termination = t
        Trace.instant("exit \(name)", args: [("pid", String(pid)), ("exitcode", String(t.exitcode))])
        if pidfd >= 0 { close(pidfd); pidfd = -1 }
        RunBoard.current?.releaseSlot(pid: pid)
        Runtime.children.removeAll { $0 === self }
    }

    public var isAlive: Bool { isStarted && poll() == nil }

    /// Waits for the child to end, until `deadline`. True when it has ended. Parent only.
    public func join(deadline: Deadline) -> Bool {
        if poll() != nil { return true }
        if deadline.hasExpired { return false }
        Parking.parking(deadline)
        defer { Parking.woke() }
        if deadline.isNever || pidfd < 0 {
            if let t = try? ProcessControl.wait(pid, block: true) { record(t) }
            return termination != nil
        }
        while termination == nil {
            let ready = (try? Poll.wait(fd: pidfd, events: Int16(POLLIN), deadline: deadline)) ?? true
            poll()
            if !ready { break }
        }
        return termination != nil
    }

    /// Sends `signal` unless the child has already been reaped (its pid may be reused).
    public func send(signal: Int32) {
        guard isStarted, poll() == nil else { return }
        if isMine {
            _ = try? ProcessControl.signal(pid, signal)
        } else if RunBoard.current?.lists(pid: pid) == true {
            _ = try? ProcessControl.signal(pid, signal)
        }
    }
}

/// The process-wide state of the runtime and the life cycle of every process of a run.
public enum Runtime {
    /// The children this process started and has not reaped.
    nonisolated(unsafe) static var children: [ChildProcess] = []
    nonisolated(unsafe) public private(set) static var options = RunOptions()

    // MARK: - Host

    /// Prepares the host: the board, the signal handlers, the output discipline.
    public static func startHost(options: RunOptions) throws(IPCError) {
        self.options = options
        let board = try RunBoard.install()
        _ = ipc_set_child_subreaper()  // orphaned grandchildren come back to us to be reaped
        ipc_shutdown_install(board.header)
        ipc_deadlock_exit_install()
        ipc_install_sigchld_handler()
        _ = ipc_install_line_streams(&board.header.pointee.output_lock)
        CurrentProcess.slot = board.claimSlot(name: "MainProcess", spawnIndex: 0, parent: getppid())
        board.header.pointee.deadlock_check = options.deadlockCheck ? 1 : 0
        if let path = options.reportPath {
            reportFD = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            ipc_set_report_fd(reportFD)
        }
        if options.jitterMilliseconds > 0 {
            Calls.jitterNanoseconds = UInt64(options.jitterMilliseconds * 1e6)
            Calls.seedJitter(runSeed: options.seed ?? 0, identity: "")
        }
        installParkingHooks()
        if let path = options.tracePath {
            try Trace.start(path: path, origin: board.header.pointee.start_ns)
            Trace.processStarted(name: "MainProcess", index: 0)
        }
        if let timeout = options.timeout { ipc_timeout_arm(timeout) }
    }

    /// The descriptor of the report file (`ipcplay test`), or -1.
    nonisolated(unsafe) static var reportFD: Int32 = -1

    /// Appends "key: value" lines to the report file, if there is one.
    public static func report(_ lines: [(String, String)]) {
        guard reportFD >= 0 else { return }
        var text = ""
        for (k, v) in lines {
            text += k + ": " + v.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n  ") + "\n"
        }
        var t = text
        t.withUTF8 { buf in _ = Glibc.write(reportFD, buf.baseAddress, buf.count) }
    }

    /// The normal end of the host: wait for every non-daemon child, end the daemon ones,
    /// then end whatever is left of the run (grandchildren, the supervisor) and remove
    /// the run's socket files.
    public static func finishHost() {
        ipc_flush_all()
        waitForChildren()
        Trace.flush()  // before the teardown closes the trace
        ipc_teardown(0)
        Trace.finish()
    }

    /// Uncaught errors of children that no process joined (`ipcplay test` fails on them).
    public static func unjoinedChildErrors() -> [(name: String, pid: Int32, message: String)] {
        RunBoard.current?.errorRecords().filter { !$0.seen }.map { ($0.name, $0.pid, $0.message) } ?? []
    }

    /// The host's end after an error in the main script: end every process at once.
    public static func abortHost() {
        ipc_flush_all()
        for child in children { child.send(signal: SIGTERM) }
        Trace.flush()
        ipc_teardown(200)
        Trace.finish()
    }

    // MARK: - Children

    static func becomeChild(name: String, identity: String, spawnIndex: Int, parent: Int32, board: RunBoard) {
        ipc_reset_signals()
        ipc_install_sigchld_handler()
        ipc_detach_stdin()
        CurrentProcess.name = name
        CurrentProcess.identity = identity
        CurrentProcess.spawnIndex = spawnIndex
        CurrentProcess.isHost = false
        CurrentProcess.processCounter = 0
        CurrentProcess.slot = board.claimSlot(name: name, spawnIndex: spawnIndex, parent: parent)
        // The parent's children are not ours.
        children = []
        parkedForEver = false
        if Calls.jitterNanoseconds != 0 { Calls.seedJitter(runSeed: options.seed ?? 0, identity: identity) }
        Trace.buffer.count = 0
        Trace.processStarted(name: name, index: spawnIndex)
    }

    /// Ends a child process: waits for its own non-daemon children, ends its daemon ones,
    /// flushes its output and leaves with `_exit` (never the parent's exit path).
    public static func endChild(code: Int32) -> Never {
        ipc_flush_all()
        waitForChildren()
        Trace.flush()
        if let slot = CurrentProcess.slot, let board = RunBoard.current { board.endSlot(slot) }
        ipc_flush_all()
        _exit(code)
    }

    /// Waits for the non-daemon children, then terminates and reaps the daemon ones.
    static func waitForChildren() {
        locationOverride = CurrentProcess.isHost ? "the end of the main script" : "the end of the process"
        defer { locationOverride = nil }
        for child in children where !child.daemon {
            Calls.enter("process:join", child.name)
            _ = child.join(deadline: .never)
        }
        let daemons = children.filter { $0.daemon }
        for child in daemons { child.send(signal: SIGTERM) }
        for child in daemons {
            if !child.join(deadline: .after(seconds: 1)) {
                child.send(signal: SIGKILL)
                _ = child.join(deadline: .never)
            }
        }
    }

    // MARK: - Blocking and output

    /// Where the process is when no Lua code runs (waiting for children at its end).
    nonisolated(unsafe) static var locationOverride: String?
    /// Computes the Lua location of the current call (set by the bindings).
    nonisolated(unsafe) public static var locate: (() -> String)?
    /// True while this process counts itself as parked for ever on the run's objects.
    nonisolated(unsafe) static var parkedForEver = false

    static func installParkingHooks() {
        Parking.willPark = { deadline in
            ipc_flush_all()  // a prompt without a newline shows before we sleep
            if Trace.isOn { Trace.flush(); Trace.parked() }
            guard let slot = CurrentProcess.slot, let board = RunBoard.current else { return }
            board.publishBlocked(slot: slot, call: Calls.call, object: Calls.object,
                                 location: locationOverride ?? locate?() ?? "", deadline: deadline,
                                 external: Calls.external)
            if deadline.isNever && !Calls.external {
                parkedForEver = true
                board.parkedForEver()
            }
        }
        Parking.didWake = {
            Trace.woke()
            guard let slot = CurrentProcess.slot, let board = RunBoard.current else { return }
            if parkedForEver {
                parkedForEver = false
                board.unparked()
            }
            board.publishBlocked(slot: slot, call: nil, object: "", location: "", deadline: .never, external: false)
        }
        Parking.recoveredFromDeadHolder = { object, dead, during in
            warn("\(object) was held by process \(dead), which died; \(during) took it over")
        }
    }

    /// Flushes every stdio stream (`fflush(NULL)`).
    public static func flushOutput() { ipc_flush_all() }

    /// One line on stderr, written whole.
    public static func warn(_ message: String) {
        ipc_flush_all()
        writeStderr("ipcplay: warning: \(message)\n")
    }

    /// Writes `text` to stdout directly (after `flushOutput`).
    public static func writeStdout(_ text: String) { write(fd: 1, text) }

    /// Writes `text` to stderr with as few writes as possible (one when it fits PIPE_BUF).
    public static func writeStderr(_ text: String) { write(fd: 2, text) }

    static func write(fd: Int32, _ text: String) {
        var t = text
        t.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let r = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if r < 0 { if errno == EINTR { continue }; return }
                off += r
            }
        }
    }

    /// `ipc.sleep`: scaled by `--time-scale`, resumed after signals with the time left.
    public static func sleep(seconds: Double) {
        let scaled = seconds * options.timeScale
        guard scaled > 0, scaled.isFinite else { return }
        Calls.enter("ipc.sleep", "")
        let deadline = Deadline.after(seconds: scaled)
        Parking.parking(deadline)
        defer {
            Parking.woke()
            Trace.complete("ipc.sleep", object: "")
        }
        MonotonicClock.sleep(nanoseconds: scaled >= 9e9 * 1e9 ? Int64.max : Int64(scaled * 1e9))
    }
}
