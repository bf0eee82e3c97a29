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
    /// What each live process was blocked in (timeouts, deadlocks, interruptions), one
    /// line each as the run printed it; `blockedProcesses` reads them field by field.
    public var blocked: [String] = []

    public var blockedProcesses: [BlockedProcess] { blocked.map(BlockedProcess.init(line:)) }
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
        lines += blocked.map { (Key.blocked, $0) }
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
            case Key.blocked: r.blocked.append(v)
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

    /// Reads the report file at `path` ("" when there is none).
    public static func read(path: String) -> RunReport {
        guard let text = fileText(path) else { return RunReport() }
        return parse(text)
    }
}

/// One process of a report's `blocked` list, read back from its line, which the run writes
/// in one of two forms (C's reports, with a pid and how long, and the controlled
/// scheduler's, without):
///   `NAME (pid N): blocked in CALL on OBJECT for 1.2 s, at FILE:LINE, held by WHO (pid M)`
///   `NAME: about to call CALL on OBJECT, at FILE:LINE`
///   `NAME (pid N): running (not blocked in an IPC call)`
public struct BlockedProcess: Equatable, Sendable {
    public var line: String
    public var name = ""
    public var pid: Int?
    /// "blocked in", "about to call" or "running".
    public var state = ""
    public var call = ""
    public var object = ""
    /// How long it had been blocked ("1.2 s").
    public var duration = ""
    /// The script's file:line of the call.
    public var location = ""
    /// Who holds what it waits for ("Process-1 (pid 12)"), where known.
    public var holder = ""

    public init(line: String) {
        self.line = line
        var rest = Substring(line)
        if let open = rest.firstRange(of: " (pid "), let close = rest[open.upperBound...].firstRange(of: "): ") {
            name = String(rest[..<open.lowerBound])
            pid = Int(rest[open.upperBound..<close.lowerBound])
            rest = rest[close.upperBound...]
        } else if let colon = rest.firstRange(of: ": ") {
            name = String(rest[..<colon.lowerBound])
            rest = rest[colon.upperBound...]
        } else {
            return
        }
        if rest.hasPrefix("running") {
            state = "running"
            return
        }
        for s in ["blocked in ", "about to call "] where rest.hasPrefix(s) {
            state = String(s.dropLast())
            rest = rest.dropFirst(s.count)
        }
        if let held = rest.ranges(of: ", held by ").last {
            holder = String(rest[held.upperBound...])
            rest = rest[..<held.lowerBound]
        }
        if let at = rest.firstRange(of: ", at ") {
            location = String(rest[at.upperBound...])
            rest = rest[..<at.lowerBound]
        }
        if let forRange = rest.ranges(of: " for ").last, rest.hasSuffix(" s") {
            duration = String(rest[forRange.upperBound...])
            rest = rest[..<forRange.lowerBound]
        }
        if let on = rest.firstRange(of: " on ") {
            object = String(rest[on.upperBound...])
            rest = rest[..<on.lowerBound]
        }
        call = String(rest)
    }
}
