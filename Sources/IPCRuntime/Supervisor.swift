import CRuntimeShim
import CSystemShim
import Glibc
import IPCCore

/// The supervisor: a small process, forked by the host before its first worker (or when
/// the host first parks for ever), that leads the process group of every worker and
/// watches for deadlocks.
///
/// - Through the group the host can end every descendant at once (`kill(-group)`),
///   grandchildren included, without ever signalling a pid it has already reaped; and
///   when the host itself dies, even by SIGKILL, the supervisor is told
///   (PR_SET_PDEATHSIG) and ends the group.
/// - When every running process of the run is parked for ever on the run's own objects
///   (no timeout, nothing an outside program could end), nothing can wake any of them:
///   the supervisor confirms it over a grace period (nothing moves, every process asleep
///   in the kernel), reports the deadlock with what each process is blocked in, and
///   ends the run (status 124).
enum Supervisor {
    /// Forks the supervisor if this run has none yet. Called in the host only.
    static func ensureStarted(board: RunBoard) throws(IPCError) {
        if ipc_load32(&board.header.pointee.group) != 0 { return }
        ipc_flush_all()
        let host = ProcessIdentity.pid
        let pid: Int32
        do { pid = try ProcessControl.fork() } catch {
            throw IPCError.resource("cannot fork the supervisor: \(error)")
        }
        if pid == 0 {
            ProcessIdentity.refreshAfterFork()
            run(board: board, host: host)
        }
        _ = setpgid(pid, pid)
        ipc_store32(&board.header.pointee.group, UInt32(bitPattern: pid))
    }

    /// The supervisor's life: hold the group, watch for deadlocks, until the host ends it.
    static func run(board: RunBoard, host: Int32) -> Never {
        _ = setpgid(0, 0)
        ipc_supervisor_arm(host)
        Trace.isOn = false  // the supervisor is not a process of the scenario
        Runtime.setTitle("supervisor")
        // Hold no descriptor of the run: a pipe end kept open here would hide its
        // end-of-stream from the workers. Keep stderr and the report file for reports.
        ipc_close_from(3, Runtime.this.reportFD)
        let devnull = open("/dev/null", O_RDWR)
        if devnull >= 0 {
            _ = dup2(devnull, 0)
            _ = dup2(devnull, 1)
            if devnull > 2 { _ = close(devnull) }
        }
        let h = board.header
        while true {
            let seq = ipc_load32(&h.pointee.supervisor_word)
            if h.pointee.deadlock_check != 0 && allParked(board) {
                switch confirmDeadlock(board) {
                case .confirmed: reportDeadlock(board, host: host)
                // Every process has said it parks for ever, but one is not asleep in the
                // kernel yet: nothing will tell the supervisor again, so it looks again.
                case .settling: continue
                case .notADeadlock: break
                }
            }
            _ = Futex.wait(&h.pointee.supervisor_word, expected: seq, deadline: .never)
        }
    }

    static func allParked(_ board: RunBoard) -> Bool {
        let live = ipc_load32(&board.header.pointee.live)
        return live > 0 && ipc_load32(&board.header.pointee.parked) >= live
    }

    enum Verdict { case confirmed, settling, notADeadlock }

    /// `.confirmed` when, over about half a second, every running process stays parked for
    /// ever on the run's objects, asleep in the kernel, and no IPC call completes;
    /// `.settling` when all still say they park for ever and nothing moved, but one of them
    /// is not asleep yet (on its way into the kernel, or just scheduled out).
    static func confirmDeadlock(_ board: RunBoard) -> Verdict {
        let progress = ipc_load64(&board.header.pointee.progress)
        for _ in 0..<4 {
            MonotonicClock.sleep(nanoseconds: 150_000_000)
            guard allParked(board), ipc_load64(&board.header.pointee.progress) == progress else { return .notADeadlock }
            var listed = 0
            for p in board.snapshot() {
                let state = processState(p.pid)
                if state == nil || state == "Z" || state == "X" { continue }  // gone
                guard p.blocked, p.deadlineNanoseconds == 0, !p.external else { return .notADeadlock }
                guard state == "S" else { return .settling }
                listed += 1
            }
            if listed == 0 { return .notADeadlock }
        }
        return .confirmed
    }

    /// The scheduler state of `pid` from /proc (R running, S sleeping, Z zombie, ...).
    static func processState(_ pid: Int32) -> Character? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 512)
        let n = read(fd, &buf, buf.count)
        guard n > 0, let paren = buf[..<n].lastIndex(of: UInt8(ascii: ")")), paren + 2 < n else { return nil }
        return Character(UnicodeScalar(buf[paren + 2]))
    }

    static func reportDeadlock(_ board: RunBoard, host: Int32) {
        var report = RunReport(.deadlock)
        report.blocked = board.blockedEntries()
        report.cycle = WaitForGraph.cycleLine(report.blocked)
        Runtime.writeStderr(deadlockReport(report))
        Runtime.report(report)
        kill(host, SIGUSR2)  // the host ends the run
        while true { pause() }
    }

    /// The deadlock report as `run` prints it: the headline, what each process is blocked
    /// in, and the wait-for cycle when the holders make one.
    static func deadlockReport(_ report: RunReport, headline: String = deadlockHeadline) -> String {
        headline + "\n" + report.blocked.map { "  " + $0.line + "\n" }.joined() + (report.cycle.map { $0 + "\n" } ?? "")
    }

    static let deadlockHeadline = "ipcplay: deadlock: every process is blocked, and none of them can wake another:"
}
