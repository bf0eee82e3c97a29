import ArgumentParser
import Glibc
import IPCCore
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

    @Flag(help: "Print every step of a failing schedule's interleaving, with no elision.")
    var full = false

    func validate() throws {
        if maxSteps < 1 { throw ValidationError("--max-steps must be at least 1") }
        if !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
        if let memoryLimit, !(1...ScenarioOptions.largestMemoryLimit).contains(memoryLimit) {
            throw ValidationError("--memory-limit must be between 1 and \(ScenarioOptions.largestMemoryLimit) MiB")
        }
    }

    /// The options, as words, that shape a run and differ from their defaults: a replay
    /// line carries them, so that pasting it runs the same schedule under the same limits.
    /// An option that changes what a run does (a kill plan, a limit) belongs here.
    var shapingArguments: [String] {
        var words: [String] = []
        if maxSteps != 100_000 { words += ["--max-steps", String(maxSteps)] }
        if timeout != 60 { words += ["--timeout", timeout == timeout.rounded() && timeout < 1e15 ? String(Int(timeout)) : String(timeout)] }
        if let memoryLimit { words += ["--memory-limit", String(memoryLimit)] }
        return words
    }

    /// Checks that `target`'s script is readable, prepares it once with these options
    /// (and `seed`, `tracePath`) and returns the fork server that runs it.
    func explorer(_ target: ScriptArguments, seed: UInt64? = nil, tracePath: String? = nil, eventsPath: String? = nil) throws -> Explorer {
        try checkReadable(target.script)
        var base = RunOptions()
        base.timeout = timeout
        base.memoryLimit = memoryLimit.map { $0 << 20 }
        base.seed = seed
        base.tracePath = tracePath
        base.eventsPath = eventsPath
        base.scriptName = target.script
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

        @Option(name: .customLong("shrink-runs"), help: ArgumentHelp("Spend at most this many runs shrinking a failing schedule.", valueName: "n"))
        var shrinkRuns: Int = ShrinkLimits().budget

        @OptionGroup var crashes: KillOptions

        @OptionGroup var parallel: ParallelOptions

        @OptionGroup var options: ScheduleCommandOptions

        @OptionGroup var target: ScriptArguments

        func validate() throws {
            if exhaustiveOptions.exhaustive && parallel.shard != nil {
                throw ValidationError("--shard does not go with --exhaustive yet: only random and pct schedules are split into shards")
            }
            if !(1...PCTScheduler.maxDepth).contains(depth) { throw ValidationError("--depth must be between 1 and \(PCTScheduler.maxDepth)") }
            if let runs, runs < 1 { throw ValidationError("--runs must be at least 1") }
            if shrinkRuns < 1 { throw ValidationError("--shrink-runs must be at least 1") }
            try exhaustiveOptions.validate()
            if exhaustiveOptions.exhaustive && crashes.killRate != nil {
                throw ValidationError("--kill-rate does not go with --exhaustive: it tries every kill point")
            }
            if exhaustiveOptions.exhaustive && crashes.kill > 1 {
                throw ValidationError("--exhaustive goes with --kill 1 at most: the search does not cover several kills per schedule yet")
            }
            if let timeLimit, !(timeLimit > 0) { throw ValidationError("--time-limit must be a positive number of seconds") }
        }

        func run() throws {
            Cancellation.install(graceful: false)
            if exhaustiveOptions.exhaustive {
                try exhaustiveOptions.run(runs: runs, timeLimit: timeLimit, seed: seed, kills: crashes.kill, parallel: parallel,
                                          options: options, target: target)
            }
            let runs = self.runs ?? 1000
            let seed = self.seed ?? UInt64.random(in: 1...999_999_999)
            let explorer = try options.explorer(target, seed: seed)
            var exploration = Exploration()
            exploration.strategy = strategy == .pct ? .pct : .random
            exploration.depth = depth
            exploration.runs = runs
            exploration.timeLimit = timeLimit
            exploration.seed = seed
            crashes.apply(to: &exploration)
            try parallel.apply(to: &exploration)
            let outcome = exploration.explore(explorer)
            let describe = "\(strategy.rawValue)\(strategy == .pct ? ", depth \(depth)" : ""), seed \(seed)" + crashes.described
            if Cancellation.isRequested && outcome.failure == nil { stopped(outcome, describe: describe) }
            if let failure = outcome.failure {
                var limits = exploration.shrinkLimits(after: outcome)
                limits.budget = shrinkRuns
                Exploring.shrinkAndReport(failure, explorer: explorer, limits: limits, target: target, options: options,
                                          headline: "schedule \((outcome.failureSchedule ?? 0) + 1) of \(runs) failed (\(describe))") {
                    if Cancellation.isRequested { stopped(outcome, describe: describe, whileShrinking: failure) }
                }
            }
            if let line = parallel.shardLine(runs: runs) { print(line) }
            if strategy == .pct {
                print(Exploring.bound(outcome, depth: depth))
            }
            if crashes.kill > 0 {
                // Kill points are sampled: PCT's bound is about the orderings, not about them.
                print("kills: \(outcome.killedRuns) of \(outcome.schedules) schedules killed a process (kill points are sampled, not enumerated)")
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

        @Argument(help: ArgumentHelp("The token of an `explore`'s replay line, or @FILE for a token kept in FILE.", valueName: "token"))
        var token: String

        @OptionGroup var target: ScriptArguments

        func run() throws {
            Cancellation.install(graceful: false)
            let wantTimeline = recording.wantsTimeline
            let eventsPath = wantTimeline ? "/tmp/ipcplay-replay-\(getpid()).events" : nil
            // The token is checked whole before anything is prepared; its calls are named
            // once the module has declared them. A run takes at most one decision a step.
            let text: String
            do {
                text = try ReplayToken.text(ofArgument: token)
                _ = try ReplayToken(parsing: text, maxDecisions: options.maxSteps, resolvingCalls: false)
            } catch {
                throw CommandFailure(message: "\(error) (see 'ipcplay replay --help')")
            }
            let explorer = try options.explorer(target, tracePath: recording.trace, eventsPath: eventsPath)
            let parsed: ReplayToken
            do { parsed = try ReplayToken(parsing: text, maxDecisions: options.maxSteps) } catch {
                throw CommandFailure(message: "\(error) (see 'ipcplay replay --help')")
            }
            let hash = ReplayToken.hash(ofScript: target.script)
            if !parsed.scriptHash.isEmpty && parsed.scriptHash != hash {
                Runtime.writeStderr("ipcplay: warning: \(target.script) changed since this token was made; replaying it anyway (decisions are named by process and call)\n")
            }
            let run = explorer.run(.directed(.end), seed: parsed.seed, decisions: parsed.decisions, byIndex: false, locations: true,
                                   output: .inherit)
            if Cancellation.isRequested {
                if let eventsPath { unlink(eventsPath) }
                Runtime.writeStderr("ipcplay: interrupted by \(Cancellation.signalName); the replay did not finish\n")
                Glibc.exit(Cancellation.exitStatus)
            }
            if let eventsPath {
                let picture = Timeline(eventsPath: eventsPath)
                if let svg = recording.timelineFile {
                    if let f = fopen(svg, "w") { fputs(picture.svg(), f); fclose(f) }
                } else {
                    let terminal = Terminal.standardOutput
                    Runtime.writeStdout(picture.render(columns: terminal.columns, colour: terminal.colour))
                }
                unlink(eventsPath)
            }
            var report = run.report
            if run.failed && !Cancellation.isRequested {
                // Its interleaving, schedule and explanation, as explore prints them.
                let explanation = explorer.explain(run, picks: run.picks, kills: run.kills).0
                report = Exploring.report(run, explanation: explanation, script: target.script, full: options.full)
                print("\n" + Exploring.findings(report), terminator: "")
            }
            if let path = options.report { Exploring.write(report, to: path) }
            fflushStdout()
            Glibc.exit(run.failed ? 1 : 0)
        }
    }
}

/// Shrinking's progress on one line of the terminal, when stderr is one (redrawn at most
/// ten times a second; nothing at all in a pipe or a file).
final class ShrinkProgress {
    let shown = isatty(2) != 0
    var last: Int64 = 0
    var drawn = false

    func show(runs: Int, preemptions: Int, steps: Int) {
        guard shown else { return }
        let now = MonotonicClock.real()
        guard now - last >= 100_000_000 else { return }
        last = now
        drawn = true
        Runtime.writeStderr("\rshrinking: \(runs) runs, best so far \(preemptions) preemptions, \(steps) steps\u{1b}[K")
    }

    func clear() {
        if drawn { Runtime.writeStderr("\r\u{1b}[K") }
    }
}

/// Crash exploration: `--kill N` and `--kill-rate` (explore, run --sched, test).
struct KillOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Let the scheduler SIGKILL up to this many processes per schedule (never the main process), each before a call.", valueName: "n"))
    var kill: Int = 0

    @Option(name: .customLong("kill-rate"), help: ArgumentHelp("With --kill: the probability that a step is a kill (default: one over the steps of the longest run so far, about one kill point per run).", valueName: "p"))
    var killRate: Double?

    func validate() throws {
        if kill < 0 { throw ValidationError("--kill must be at least 0") }
        if let killRate, !(killRate > 0 && killRate <= 1) { throw ValidationError("--kill-rate must be a probability above 0 and at most 1") }
        if killRate != nil && kill == 0 { throw ValidationError("--kill-rate needs --kill N") }
    }

    /// Sets up `exploration`'s kills with these options.
    func apply(to exploration: inout Exploration) {
        exploration.kills = kill
        exploration.killRate = killRate
    }

    /// The options again, for a command line that passes them on.
    var arguments: [String] {
        guard kill > 0 else { return [] }
        return ["--kill", String(kill)] + (killRate.map { ["--kill-rate", String($0)] } ?? [])
    }

    /// ", kill 1" in an explore's headline.
    var described: String { kill > 0 ? ", kill \(kill)" + (killRate.map { " at rate \($0)" } ?? "") : "" }
}

/// What `explore`, `replay` and `step` share: the fork server, the report of a finding.
enum Exploring {
    /// Shrinks a failing run within `limits` (showing progress on a terminal), then prints
    /// the finding under `ipcplay: HEADLINE; shrunk in N runs`, writes --report, and exits 1.
    /// `afterShrinking` may end the program first (an interrupted command).
    static func shrinkAndReport(_ failure: Explorer.Run, explorer: Explorer, limits: ShrinkLimits, target: ScriptArguments,
                                options: ScheduleCommandOptions, headline: String, afterShrinking: () -> Void = {}) -> Never {
        var limits = limits
        let progress = ShrinkProgress()
        limits.progress = progress.show
        let finding = explorer.shrink(failure, limits: limits)
        progress.clear()
        afterShrinking()
        let report = report(finding, script: target.script, arguments: target.arguments, shaping: options.shapingArguments,
                            full: options.full)
        let stopped = finding.stopped.map { " (\($0.rawValue))" } ?? ""
        print("ipcplay: \(headline); shrunk in \(finding.runs) runs\(stopped)")
        print(text(report, output: finding.run.output))
        if let path = options.report { write(report, to: path) }
        fflushStdout()
        Glibc.exit(1)
    }

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

    /// PCT's guarantee, for the runs that kept to its conditions, stating them; and why the
    /// others are not counted.
    static func bound(_ o: Exploration.Outcome, depth: Int) -> String {
        var lines: [String] = []
        if o.keptPCT > 0 {
            let runs = o.keptPCT == o.schedules ? "these \(o.schedules) runs" : "the \(o.keptPCT) of these \(o.schedules) runs that kept to its conditions"
            lines.append("PCT: a depth-\(depth) bug is found with probability ≥ \(percent(o.bound(depth: depth))) in \(runs)"
                         + " (n = \(o.keptProcesses) processes, k = \(o.keptSteps) steps with a choice, d = \(depth))")
        } else {
            lines.append("PCT: no probability bound: no run kept to PCT's conditions")
        }
        var why: [String] = []
        if o.leftLonger > 0 { why.append("\(o.leftLonger) made more choices than the k their change points were drawn from") }
        if o.leftAtYield > 0 { why.append("\(o.leftAtYield) lowered a process at an explicit yield (a call with timeout 0 that found nothing)") }
        if o.leftFair > 0 { why.append("\(o.leftFair) went on with fair random choices after \(PCTScheduler.fairBound) choices") }
        if !why.isEmpty { lines.append("PCT: not counted: " + why.joined(separator: "; ")) }
        return lines.joined(separator: "\n")
    }

    /// A probability in percent, rounded down (never up to a certainty it is not).
    static func percent(_ p: Double) -> String {
        let hundredths = min(Int((p * 10_000).rounded(.down)), 9_999)
        if hundredths == 0 { return "\(p * 100)%" }
        let fraction = hundredths % 100
        return "\(hundredths / 100)" + (fraction == 0 ? "" : fraction % 10 == 0 ? ".\(fraction / 10)" : ".\(fraction < 10 ? "0" : "")\(fraction)") + "%"
    }

    /// The findings of a failing schedule, as `explore` prints them and `test --explore`
    /// reports them.
    static func report(_ finding: Finding, script: String, arguments: [String], shaping: [String], full: Bool) -> RunReport {
        var report = report(finding.run, explanation: finding.explanation, script: script, full: full)
        let token = ReplayToken(scriptHash: ReplayToken.hash(ofScript: script), seed: finding.run.seed, decisions: finding.run.decisions)
        report.replay = replayLine(token, script: script, arguments: arguments, shaping: shaping)
        return report
    }

    /// The findings of the failing `run` (logged with locations), explained by `explanation`
    /// (no replay line).
    static func report(_ run: Explorer.Run, explanation: Explanation, script: String, full: Bool) -> RunReport {
        var report = run.report
        if report.outcome == nil { report.outcome = .error; report.messages = ["the run ended with status \(run.status)"] }
        // The contract's format, whatever the numbers: "schedule: N steps, K preemptions".
        report.schedule = "\(run.steps.count) steps, \(run.preemptions) preemptions"
        report.kills = killLines(run, script: script)
        report.explanation = explanation.line(describe)
        report.interleaving = interleaving(run, explanation: explanation, script: script, full: full)
        return report
    }

    /// The command that replays `token`: `ipcplay replay [OPTIONS] TOKEN SCRIPT [ARGS]`,
    /// with the options that shape the run; a long token is written to a file and named
    /// as `@FILE` (see `ReplayToken.filePath`).
    static func replayLine(_ token: ReplayToken, script: String, arguments: [String], shaping: [String]) -> String {
        var word = token.text
        if word.utf8.count > ReplayToken.longestInline {
            let path = ReplayToken.filePath(for: word)
            do {
                try ReplayToken.write(word, to: path)
                word = "@" + path
            } catch {
                Runtime.writeStderr("ipcplay: \(error); the replay line holds the whole token\n")
            }
        }
        return (["ipcplay", "replay"] + shaping + [word, script] + arguments).map(shellQuoted).joined(separator: " ")
    }

    /// The contract's line per kill (after "kill: "): "worker before value:set at transfer.lua:12".
    static func killLines(_ run: Explorer.Run, script: String) -> [String] {
        run.steps.filter(\.killed).map { s in "\(run.name(s.process)) before \(describe(s))" }
    }

    /// "value read at lost_update.lua:9"
    static func describe(_ step: ScheduleLog.Step) -> String {
        let name = CallSite.all.indices.contains(step.site) ? CallSite.all[step.site].name : "?"
        return step.location.isEmpty ? name : "\(name) at \(step.location)"
    }

    /// The schedule as lanes: every step when it is short or `full`, else the steps around
    /// the preemptions and the ones the explanation names (marked, never elided, nor the
    /// steps on either side of them), the rest elided; then, when the run failed with
    /// processes waiting, the calls they waited in.
    static func interleaving(_ run: Explorer.Run, explanation: Explanation, script: String, full: Bool) -> String {
        var steps = run.steps.map { s in
            let call = CallSite.all.indices.contains(s.site) ? CallSite.all[s.site].name : "?"
            // A kill is its own row: the call it came before, which never took effect (as
            // the lanes show calls: "queue:put" as "put", with its object).
            return (process: s.process, call: s.killed ? "KILLED before " + (call.split(separator: ":").last.map(String.init) ?? call) : call,
             object: run.objectNames[s.object] ?? "",
             location: shortLocation(s.location, script: script) + (s.resumed ? " (resumes)" : s.timeout ? " (times out)" : ""))
        }
        let made = steps.count
        // The row of each call a process waited in at the end.
        var waitingRow: [Int: Int] = [:]
        for case let p? in run.pending {
            waitingRow[p.process] = steps.count
            steps.append((p.process, CallSite.all.indices.contains(p.site) ? CallSite.all[p.site].name : "?",
                          run.objectNames[p.object] ?? "", shortLocation(p.location, script: script) + " (waits)"))
        }
        let marked = Set(explanation.named.compactMap { $0.index ?? waitingRow[$0.step.process] })
        var keep = Set<Int>()
        if full || steps.count <= 60 {
            keep = Set(steps.indices)
        } else {
            keep.formUnion(0..<5)
            keep.formUnion(max(0, made - 12)..<steps.count)  // how it ends
            for i in marked { keep.formUnion(max(0, i - 1)...min(steps.count - 1, i + 1)) }
            // Around the preemptions, as long as the table stays readable (a schedule whose
            // shrinking was cut short can have thousands).
            for (i, s) in run.steps.enumerated() where s.preempted {
                if keep.count > 240 { break }
                keep.formUnion(max(0, i - 3)...min(steps.count - 1, i + 3))
            }
            for i in marked { keep.formUnion(max(0, i - 3)...min(steps.count - 1, i + 3)) }
            keep.formUnion(made..<steps.count)
        }
        let rows = keep.sorted()
        var elided: [(after: Int, count: Int)] = []
        for (a, b) in zip(rows, rows.dropFirst()) where b - a > 1 { elided.append((a, b - a - 1)) }
        let picture = Timeline(schedule: steps, names: run.names, rows: rows, elided: elided, marked: marked)
        // Wide enough for a call, its object and its line in each lane.
        return picture.render(columns: max(Terminal.standardOutput.columns, 8 + 30 * max(run.names.count, 1)), colour: false)
    }

    /// "9" for a line of the script itself, "other.lua:9" otherwise.
    static func shortLocation(_ location: String, script: String) -> String {
        // "f.lua:16 (from f.lua:42)": each part on its own.
        let parts = location.split(separator: " (from ", maxSplits: 1)
        if parts.count == 2, parts[1].hasSuffix(")") {
            return shortLocation(String(parts[0]), script: script) + " (from " + shortLocation(String(parts[1].dropLast()), script: script) + ")"
        }
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
            out += report.blocked.map { "  \($0.line)\n" }.joined()
        case .error?:
            out += report.messages.map { "error in the main script: \($0)\n" }.joined()
        case .childError?:
            // The cause, then what followed from it (a deadlock lists what each waited in).
            out += report.messages.map { $0.hasPrefix(Runtime.consequence) ? "\($0)\n" : "error in a child: \($0)\n" }.joined()
            out += report.blocked.map { "  \($0.line)\n" }.joined()
        default:
            out += report.messages.map { "\(report.outcome?.rawValue ?? "failure"): \($0)\n" }.joined()
            out += report.blocked.map { "  \($0.line)\n" }.joined()
        }
        // What the run printed (children's errors and their tracebacks too), but the lines
        // of the report already shown above.
        let shown = Set(report.messages.flatMap { $0.split(separator: "\n").map { String($0).trimmingCharacters() } }
                        + report.blocked.map { $0.line.trimmingCharacters() } + [report.cycle ?? ""])
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
        out += "\n" + findings(report)
        out += "replay: \(report.replay ?? "")"
        return out
    }

    /// The interleaving, the kills, the `schedule:` line and the explanation's line, each
    /// line ended.
    static func findings(_ report: RunReport) -> String {
        var out = report.interleaving ?? ""
        out += report.kills.map { "kill: \($0)\n" }.joined()
        out += "schedule: \(report.schedule ?? "")\n"
        // A deadlock's explanation is its wait-for cycle, when the run's holders give one.
        out += (report.explanation ?? report.cycle ?? Explanation(form: .none).line { _ in "" }) + "\n"
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
