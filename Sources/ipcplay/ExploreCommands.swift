import ArgumentParser
import Glibc
import IPCLua
import IPCRuntime

/// The options of the commands that run a script under many schedules.
struct ScheduleCommandOptions: ParsableArguments {
    @Option(name: .customLong("max-steps"), help: ArgumentHelp("A run longer than this many steps fails as a livelock.", valueName: "n"))
    var maxSteps: Int = 100_000

    @Option(help: ArgumentHelp("End a run that takes longer than this many seconds of real time (exit 124).", valueName: "seconds"))
    var timeout: Double = 60

    @Option(name: .customLong("memory-limit"), help: ArgumentHelp("Let each process's Lua heap hold at most this many MiB, and one message take as much.", valueName: "MB"))
    var memoryLimit: Int?

    @Option(help: .hidden)
    var report: String?

    func validate() throws {
        if maxSteps < 1 { throw ValidationError("--max-steps must be at least 1") }
        if !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
        if let memoryLimit, !(1...ScenarioOptions.largestMemoryLimit).contains(memoryLimit) {
            throw ValidationError("--memory-limit must be between 1 and \(ScenarioOptions.largestMemoryLimit) MiB")
        }
    }

    /// Checks that `target`'s script is readable, prepares it once with these options
    /// (and `seed`, `tracePath`) and returns the fork server that runs it.
    func explorer(_ target: ScriptArguments, seed: UInt64? = nil, tracePath: String? = nil) throws -> Explorer {
        try checkReadable(target.script)
        var base = RunOptions()
        base.timeout = timeout
        base.memoryLimit = memoryLimit.map { $0 << 20 }
        base.seed = seed
        base.tracePath = tracePath
        return try Exploring.explorer(script: target.script, arguments: target.arguments, base: base, maxSteps: maxSteps)
    }
}

extension IPCPlay {
    struct Explore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a script under many schedules until one fails; shrink it and name the two calls whose order matters.",
            discussion: "A run fails when the main script raises, any process ends with an uncaught error, the run deadlocks, or it passes --max-steps. With --exhaustive it visits every interleaving once, up to the order of independent steps. Exit status: 0 no schedule failed; 1 one did (its shrunk schedule, its critical pair and a replay line are printed); 2 usage error; 3 --exhaustive stopped by --runs or --time-limit before it was complete."
        )

        @Option(help: ArgumentHelp("pct (priorities with d-1 change points) or random.", valueName: "strategy"))
        var strategy: SchedStrategy = .pct

        @Option(help: ArgumentHelp("PCT's bug depth.", valueName: "d"))
        var depth: Int = 3

        @Option(help: ArgumentHelp("How many schedules to run at most (default 1000; with --exhaustive, no limit).", valueName: "n"))
        var runs: Int?

        @OptionGroup var exhaustiveOptions: ExhaustiveOptions

        @Option(name: .customLong("time-limit"), help: ArgumentHelp("Stop after this many seconds.", valueName: "seconds"))
        var timeLimit: Double?

        @Option(help: ArgumentHelp("Seed of the exploration (chosen and printed when absent).", valueName: "n"))
        var seed: UInt64?

        @OptionGroup var options: ScheduleCommandOptions

        @OptionGroup var target: ScriptArguments

        func validate() throws {
            if !(1...PCTScheduler.maxDepth).contains(depth) { throw ValidationError("--depth must be between 1 and \(PCTScheduler.maxDepth)") }
            if let runs, runs < 1 { throw ValidationError("--runs must be at least 1") }
            try exhaustiveOptions.validate()
            if let timeLimit, !(timeLimit > 0) { throw ValidationError("--time-limit must be a positive number of seconds") }
        }

        func run() throws {
            if exhaustiveOptions.exhaustive { try exhaustiveOptions.run(runs: runs, timeLimit: timeLimit, seed: seed, options: options, target: target) }
            let runs = self.runs ?? 1000
            let seed = self.seed ?? UInt64.random(in: 1...999_999_999)
            let explorer = try options.explorer(target, seed: seed)
            var exploration = Exploration()
            exploration.strategy = strategy == .pct ? .pct : .random
            exploration.depth = depth
            exploration.runs = runs
            exploration.timeLimit = timeLimit
            exploration.seed = seed
            let outcome = exploration.explore(explorer)
            let describe = "\(strategy.rawValue)\(strategy == .pct ? ", depth \(depth)" : ""), seed \(seed)"
            if let failure = outcome.failure {
                let finding = explorer.shrink(failure)
                let report = Exploring.report(finding, script: target.script, arguments: target.arguments, explorer: explorer)
                print("ipcplay: schedule \(outcome.schedules) of \(runs) failed (\(describe)); shrunk in \(finding.runs) runs")
                print(Exploring.text(report, output: finding.run.output))
                if let path = options.report { Exploring.write(report, to: path) }
                fflushStdout()
                Glibc.exit(1)
            }
            if strategy == .pct {
                print(Exploring.bound(outcome, depth: depth))
            }
            print("\(outcome.schedules) schedules, \(outcome.distinct) distinct interleavings, no failure")
            if let path = options.report { Exploring.write(RunReport(.ok), to: path) }
            fflushStdout()
            Glibc.exit(0)
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run exactly the schedule a replay token names.",
            discussion: "Exit status: 0 the run did not fail, 1 it failed (or no longer fits the script: the step where it diverged is named), 2 usage error."
        )

        @OptionGroup var recording: RecordingOptions

        @OptionGroup var options: ScheduleCommandOptions

        @Argument(help: ArgumentHelp("The token of an `explore`'s replay line.", valueName: "token"))
        var token: String

        @OptionGroup var target: ScriptArguments

        func run() throws {
            let wantTimeline = recording.wantsTimeline
            let tracePath = recording.trace ?? (wantTimeline ? "/tmp/ipcplay-replay-\(getpid()).json" : nil)
            // The token names calls: it is read once the module has declared them.
            let explorer = try options.explorer(target, tracePath: tracePath)
            let parsed: ReplayToken
            do { parsed = try ReplayToken(parsing: token) } catch {
                throw CommandFailure(message: "\(error) (see 'ipcplay replay --help')")
            }
            let hash = ReplayToken.hash(ofScript: target.script)
            if !parsed.scriptHash.isEmpty && parsed.scriptHash != hash {
                Runtime.writeStderr("ipcplay: warning: \(target.script) changed since this token was made; replaying it anyway (decisions are named by process and call)\n")
            }
            let run = explorer.run(.directed(.end), seed: parsed.seed, decisions: parsed.decisions, byIndex: false, output: .inherit)
            if wantTimeline, let tracePath {
                let picture = Timeline(tracePath: tracePath)
                if let svg = recording.timelineFile {
                    if let f = fopen(svg, "w") { fputs(picture.svg(), f); fclose(f) }
                } else {
                    let terminal = Terminal.standardOutput
                    Runtime.writeStdout(picture.render(columns: terminal.columns, colour: terminal.colour))
                }
                if recording.trace == nil { unlink(tracePath) }
            }
            if let path = options.report { Exploring.write(run.report, to: path) }
            Glibc.exit(run.failed ? 1 : 0)
        }
    }
}

/// What `explore`, `replay` and `step` share: the fork server, the report of a finding.
enum Exploring {
    /// Prepares `script` once and returns the fork server that runs it.
    static func explorer(script: String, arguments: [String], base: RunOptions, maxSteps: Int) throws -> Explorer {
        guard let prepared = ScriptRunner.prepare(script: script, arguments: arguments, options: base) else {
            throw CommandFailure(message: "cannot prepare \(script)", status: 1)
        }
        if let error = prepared.loadError { throw CommandFailure(message: error, status: 1) }
        do {
            return try Explorer(base: base, maxSteps: maxSteps) { options in ScriptRunner.execute(prepared, options: options) }
        } catch {
            throw CommandFailure(message: "\(error)", status: 1)
        }
    }

    /// PCT's guarantee for these runs.
    static func bound(_ o: Exploration.Outcome, depth: Int) -> String {
        var parts: [String] = []
        for d in Set([depth, min(depth, 2)]).sorted(by: >) {
            parts.append("a depth-\(d) bug is found with probability ≥ \(percent(o.bound(depth: d)))")
        }
        return "PCT: \(parts.joined(separator: "; ")) in these \(o.schedules) runs (n = \(o.processes) processes, k = \(o.steps) steps with a choice)"
    }

    static func percent(_ p: Double) -> String {
        if p >= 0.995 && p < 1 { return "99%" }
        if p >= 0.1 { return "\(Int((p * 100).rounded(.down)))%" }
        let text = String(Double(Int(p * 10000)) / 100)
        return text + "%"
    }

    /// The findings of a failing schedule, as `explore` prints them and `test --explore`
    /// reports them.
    static func report(_ finding: Finding, script: String, arguments: [String], explorer: Explorer) -> RunReport {
        let run = finding.run
        var report = run.report
        if report.outcome == nil { report.outcome = .error; report.messages = ["the run ended with status \(run.status)"] }
        // The contract's format, whatever the numbers: "schedule: N steps, K preemptions".
        report.schedule = "\(run.steps.count) steps, \(run.preemptions) preemptions"
        if let pair = finding.pair {
            report.pair = "\(describe(pair.first)) / \(describe(pair.second))"
        }
        let token = ReplayToken(scriptHash: ReplayToken.hash(ofScript: script), seed: run.seed, decisions: run.decisions)
        report.replay = (["ipcplay", "replay", token.text, script] + arguments).map(shellQuoted).joined(separator: " ")
        report.interleaving = interleaving(finding, script: script)
        return report
    }

    /// "value read at lost_update.lua:9"
    static func describe(_ step: ScheduleLog.Step) -> String {
        let name = CallSite.all.indices.contains(step.site) ? CallSite.all[step.site].name : "?"
        return step.location.isEmpty ? name : "\(name) at \(step.location)"
    }

    /// The shrunk schedule as lanes: every step when it is short, else the steps around
    /// the critical pair and the preemptions, the rest elided; then, when the run failed
    /// with processes waiting, the calls they waited in.
    static func interleaving(_ finding: Finding, script: String) -> String {
        let run = finding.run
        var steps = run.steps.map { s in
            (process: s.process, call: CallSite.all.indices.contains(s.site) ? CallSite.all[s.site].name : "?",
             object: run.objectNames[s.object] ?? "",
             location: shortLocation(s.location, script: script) + (s.resumed ? " (resumes)" : s.timeout ? " (times out)" : ""))
        }
        let made = steps.count
        for case let p? in run.pending {
            steps.append((p.process, CallSite.all.indices.contains(p.site) ? CallSite.all[p.site].name : "?",
                          run.objectNames[p.object] ?? "", shortLocation(p.location, script: script) + " (waits)"))
        }
        var keep = Set<Int>()
        if steps.count <= 60 {
            keep = Set(steps.indices)
        } else {
            keep.formUnion(0..<5)
            keep.formUnion(max(0, made - 12)..<steps.count)  // how it ends
            for (i, s) in run.steps.enumerated() where s.preempted { keep.formUnion(max(0, i - 3)...min(steps.count - 1, i + 3)) }
            if let pair = finding.pair {
                keep.formUnion(max(0, pair.firstIndex - 4)...min(steps.count - 1, pair.firstIndex + 3))
                if let j = pair.secondIndex { keep.formUnion(max(0, j - 3)...min(steps.count - 1, j + 4)) }
            }
            keep.formUnion(made..<steps.count)
        }
        let rows = keep.sorted()
        var elided: [(after: Int, count: Int)] = []
        for (a, b) in zip(rows, rows.dropFirst()) where b - a > 1 { elided.append((a, b - a - 1)) }
        var marked = Set<Int>()
        if let pair = finding.pair {
            marked.insert(pair.firstIndex)
            marked.insert(pair.secondIndex ?? made + (run.pending.prefix(pair.second.process).compactMap { $0 }.count))
        }
        let picture = Timeline(schedule: steps, names: run.names, rows: rows, elided: elided, marked: marked)
        // Wide enough for a call, its object and its line in each lane.
        return picture.render(columns: max(Terminal.standardOutput.columns, 8 + 30 * max(run.names.count, 1)), colour: false)
    }

    /// "9" for a line of the script itself, "other.lua:9" otherwise.
    static func shortLocation(_ location: String, script: String) -> String {
        guard let colon = location.lastIndex(of: ":") else { return location }
        let file = location[..<colon]
        if file == script || script.hasSuffix("/" + file) || file.hasSuffix("/" + script) { return String(location[location.index(after: colon)...]) }
        return location
    }

    /// The finding as text.
    static func text(_ report: RunReport, output: String) -> String {
        var out = ""
        switch report.outcome {
        case .deadlock?:
            out += "deadlock: every process is blocked, and none of them can wake another:\n"
            out += report.blocked.map { "  \($0)\n" }.joined()
        case .error?:
            out += report.messages.map { "error in the main script: \($0)\n" }.joined()
        case .childError?:
            out += report.messages.map { "error in a child: \($0)\n" }.joined()
        default:
            out += report.messages.map { "\(report.outcome?.rawValue ?? "failure"): \($0)\n" }.joined()
            out += report.blocked.map { "  \($0)\n" }.joined()
        }
        // What the run printed (children's errors and their tracebacks too), but the lines
        // of the report already shown above.
        let shown = Set(report.messages.flatMap { $0.split(separator: "\n").map { String($0).trimmingCharacters() } }
                        + report.blocked.map { $0.trimmingCharacters() })
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast(output.hasSuffix("\n") ? 1 : 0).filter { line in
            let bare = String(line).trimmingCharacters()
            if line.hasPrefix("ipcplay: deadlock:") { return false }
            if report.outcome == .error, line.hasPrefix("ipcplay: error in MainProcess") { return false }
            return !shown.contains(bare)
        }
        if !lines.isEmpty {
            out += "output of the shrunk schedule\(lines.count > 30 ? " (last 30 lines)" : ""):\n"
            out += lines.suffix(30).map { "| \($0)\n" }.joined()
        }
        out += "\n" + (report.interleaving ?? "")
        out += "schedule: \(report.schedule ?? "")\n"
        out += "critical pair: \(report.pair ?? "none found (no single swap of two steps makes this schedule pass)")\n"
        out += "replay: \(report.replay ?? "")"
        return out
    }

    static func write(_ report: RunReport, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        report.write(to: fd)
        if fd >= 0 { close(fd) }
    }

    /// A shell word: as is when it is safe, else in single quotes.
    static func shellQuoted(_ s: String) -> String {
        let safe = s.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || "-_./=:,+@%".unicodeScalars.contains(c)
        }
        return safe && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }

    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Substring(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
