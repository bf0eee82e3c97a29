import CRuntimeShim
import Glibc
import IPCCore

/// What a run tells the program that started it (`ipcplay test`, `explore`): how it ended
/// and why. Written by the run (its host, its supervisor, or the signal handlers of
/// CRuntimeShim, which write the same keys) as "key: value" lines to the file that
/// `--report` names; read back by `RunReport.parse`. Nobody else spells a key.
public struct RunReport: Equatable, Sendable {
    public enum Outcome: String, Sendable {
        case ok
        /// The main script raised.
        case error
        /// A child ended with an uncaught error that nobody joined (`ipcplay test`).
        case childError = "child-error"
        case timeout
        case deadlock
        case skipped
        /// A controlled run passed --max-steps.
        case livelock
        /// A replay met a step the schedule does not name.
        case diverged
        /// Ended by SIGINT, SIGTERM or SIGHUP before it finished.
        case interrupted
    }

    public var outcome: Outcome?
    /// "name (pid N)" of the process the outcome is about.
    public var processes: [String] = []
    public var messages: [String] = []
    /// What each live process was blocked in (timeouts, deadlocks, interruptions).
    public var blocked: [BlockedProcess] = []
    /// A deadlock's wait-for cycle, the `cycle:` line (`WaitForGraph.cycleLine`).
    public var cycle: String?
    /// A controlled run's findings: the schedule, its explanation (the contract's whole line), the replay line,
    /// the interleaving (explore, test --explore).
    public var schedule: String?
    public var explanation: String?
    /// "NAME before <call> at <file:line>": the processes the schedule killed (`--kill`).
    public var kills: [String] = []
    public var replay: String?
    public var interleaving: String?

    public init(_ outcome: Outcome? = nil) { self.outcome = outcome }

    /// Whether the run failed, in the sense of `explore`: an error anywhere, a deadlock,
    /// a livelock or a divergence.
    public var failed: Bool {
        switch outcome {
        case .ok?, .skipped?: return false
        default: return true
        }
    }

    // MARK: - Keys

    enum Key {
        static let outcome = IPC_REPORT_OUTCOME
        static let blocked = IPC_REPORT_BLOCKED
        static let blockedPid = IPC_REPORT_BLOCKED_PID
        static let blockedState = IPC_REPORT_BLOCKED_STATE
        static let blockedCall = IPC_REPORT_BLOCKED_CALL
        static let blockedObject = IPC_REPORT_BLOCKED_OBJECT
        static let blockedAt = IPC_REPORT_BLOCKED_AT
        static let blockedWaited = IPC_REPORT_BLOCKED_WAITED
        /// The holder its line shows ("PID NAME").
        static let blockedHolder = IPC_REPORT_BLOCKED_HOLDER
        /// One of the processes that hold what it waits for ("PID NAME", "- NAME").
        static let blockedHeldBy = "blocked-held-by"
        static let cycle = "cycle"
        static let process = "process"
        static let message = "message"
        static let schedule = "schedule"
        static let explanation = "explanation"
        static let kill = "kill"
        static let replay = "replay"
        static let interleaving = "interleaving"
    }

    // MARK: - Writing

    /// The report as lines (a value's own lines continue indented by two spaces).
    public var text: String {
        var lines: [(String, String)] = []
        if let outcome { lines.append((Key.outcome, outcome.rawValue)) }
        lines += processes.map { (Key.process, $0) }
        lines += messages.map { (Key.message, $0) }
        for b in blocked { lines += Self.fields(of: b) }
        if let cycle { lines.append((Key.cycle, cycle.hasPrefix(Self.cyclePrefix) ? String(cycle.dropFirst(Self.cyclePrefix.count)) : cycle)) }
        lines += kills.map { (Key.kill, $0) }
        if let schedule { lines.append((Key.schedule, schedule)) }
        if let explanation { lines.append((Key.explanation, explanation)) }
        if let replay { lines.append((Key.replay, replay)) }
        if let interleaving { lines.append((Key.interleaving, interleaving)) }
        var text = ""
        for (k, v) in lines {
            text += k + ": " + v.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n  ") + "\n"
        }
        return text
    }

    /// Appends the report to `fd` in one write.
    public func write(to fd: Int32) {
        guard fd >= 0 else { return }
        Syscall.writeAll(fd, text)
    }

    // MARK: - Reading

    /// Reads a report; when several outcomes were written (a run that timed out while
    /// reporting), the last one counts.
    public static func parse(_ text: String) -> RunReport {
        var pairs: [(String, String)] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  "), !pairs.isEmpty {
                pairs[pairs.count - 1].1 += "\n" + line.dropFirst(2)
            } else if let colon = line.firstIndex(of: ":") {
                var value = line[line.index(after: colon)...]
                if value.hasPrefix(" ") { value = value.dropFirst() }
                pairs.append((String(line[..<colon]), String(value)))
            }
        }
        var r = RunReport()
        for (k, v) in pairs {
            switch k {
            case Key.outcome: r.outcome = Outcome(rawValue: v)
            case Key.process: r.processes.append(v)
            case Key.message: r.messages.append(v)
            case Key.blocked: r.blocked.append(BlockedProcess(name: v, state: .running))
            case Key.blockedPid: r.updateLastBlocked { $0.pid = Int32(v) }
            case Key.blockedState: r.updateLastBlocked { $0.state = BlockedProcess.State(rawValue: v) ?? .running }
            case Key.blockedCall: r.updateLastBlocked { $0.call = v }
            case Key.blockedObject: r.updateLastBlocked { $0.object = v }
            case Key.blockedAt: r.updateLastBlocked { $0.location = v }
            case Key.blockedWaited: r.updateLastBlocked { $0.waitedNanoseconds = Int64(v) }
            case Key.blockedHolder: r.updateLastBlocked { $0.holder = Self.holder(v) }
            case Key.blockedHeldBy: r.updateLastBlocked { $0.holders.append(Self.holder(v)) }
            case Key.cycle: r.cycle = cyclePrefix + v
            case Key.schedule: r.schedule = v
            case Key.explanation: r.explanation = v
            case Key.kill: r.kills.append(v)
            case Key.replay: r.replay = v
            case Key.interleaving: r.interleaving = v
            default: break
            }
        }
        return r
    }

    /// How the `cycle:` line begins (its key in the report file says it already).
    static let cyclePrefix = "cycle: "

    /// The report fields of one blocked process: `blocked: NAME` opens it, the others
    /// belong to the last one opened.
    static func fields(of b: BlockedProcess) -> [(String, String)] {
        var f = [(Key.blocked, b.name)]
        if let pid = b.pid { f.append((Key.blockedPid, String(pid))) }
        f.append((Key.blockedState, b.state.rawValue))
        guard b.state != .running else { return f }
        f.append((Key.blockedCall, b.call))
        if !b.object.isEmpty { f.append((Key.blockedObject, b.object)) }
        if !b.location.isEmpty { f.append((Key.blockedAt, b.location)) }
        if let ns = b.waitedNanoseconds { f.append((Key.blockedWaited, String(ns))) }
        if let h = b.holder { f.append((Key.blockedHolder, holderField(h))) }
        f += b.holders.map { (Key.blockedHeldBy, holderField($0)) }
        return f
    }

    static func holderField(_ h: BlockedProcess.Holder) -> String { (h.pid.map(String.init) ?? "-") + " " + h.name }

    static func holder(_ field: String) -> BlockedProcess.Holder {
        let parts = field.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        return BlockedProcess.Holder(name: parts.count > 1 ? String(parts[1]) : "", pid: Int32(parts[0]))
    }

    mutating func updateLastBlocked(_ change: (inout BlockedProcess) -> Void) {
        guard !blocked.isEmpty else { return }
        change(&blocked[blocked.count - 1])
    }

    /// Reads the report file at `path` ("" when there is none).
    public static func read(path: String) -> RunReport {
        guard let text = fileText(path) else { return RunReport() }
        return parse(text)
    }
}

/// One process of a report's `blocked` list: what it was doing when the run ended, field by
/// field. The run fills it from its board (or its schedule), the report carries the fields
/// (`blocked: NAME`, `blocked-call: ...`: see `RunReport.text`), and `line` formats it,
/// the one place where an entry becomes text. Written in one of two forms: the board's,
/// with a pid and how long, and the controlled scheduler's, without:
///   `NAME (pid N): blocked in CALL on OBJECT for 1.2 s, at FILE:LINE, held by WHO (pid M)`
///   `NAME: about to call CALL on OBJECT, at FILE:LINE`
///   `NAME (pid N): running (not blocked in an IPC call)`
public struct BlockedProcess: Equatable, Sendable {
    public enum State: String, Sendable {
        case blocked = "blocked in"
        case aboutToCall = "about to call"
        case running
    }

    /// A process that holds what another waits for.
    public struct Holder: Equatable, Sendable {
        public var name: String
        public var pid: Int32?
        public init(name: String, pid: Int32?) { self.name = name; self.pid = pid }
        /// "Process-1 (pid 12)", or the name alone.
        public var text: String {
            guard let pid else { return name }
            return name.isEmpty ? "(pid \(pid))" : "\(name) (pid \(pid))"
        }
    }

    public var name = ""
    public var pid: Int32?
    public var state = State.running
    public var call = ""
    public var object = ""
    /// The script's file:line of the call.
    public var location = ""
    /// How long it had been blocked (board entries only).
    public var waitedNanoseconds: Int64?
    /// The owner of the lock it waits for, shown in its line (board entries).
    public var holder: Holder?
    /// Every process that holds what it waits for, where the run knows them: a lock's
    /// owner, the process a join waits for, the processes that still have the write end
    /// of the pipe it reads. Empty when unknown (a queue, an event, a semaphore). The
    /// edges of the wait-for graph (`WaitForGraph`).
    public var holders: [Holder] = []
    // Made in this module only (the board, the schedule, a report read back): the
    // memberwise initializer, in the order above, is its initializer.

    /// How long it had been blocked ("1.2 s"), or "".
    public var duration: String {
        guard let ns = waitedNanoseconds else { return "" }
        let tenths = max(0, ns) / 100_000_000
        return "\(tenths / 10).\(tenths % 10) s"
    }

    /// The entry as one line of a report.
    public var line: String {
        var s = name + (pid.map { " (pid \($0))" } ?? "") + ": "
        guard state != .running else { return s + "running (not blocked in an IPC call)" }
        s += state.rawValue + " " + call
        if !object.isEmpty { s += " on " + object }
        if waitedNanoseconds != nil { s += " for " + duration }
        if !location.isEmpty { s += ", at " + location }
        if let holder { s += ", held by " + holder.text }
        return s
    }
}
