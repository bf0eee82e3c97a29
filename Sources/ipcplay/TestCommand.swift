import ArgumentParser
import Glibc
import IPCCore
import IPCLua
import IPCRuntime

extension IPCPlay {
    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run scenario tests: every *_test.lua under the paths (default tests/), each in its own process group.",
            discussion: """
                A test passes when its main script ends without error, no process of it is \
                left blocked (--timeout, default 30 s, or a deadlock), and no child that the \
                script did not join ended with an uncaught error. The run ends with the line \
                'N passed, N failed'.

                A failing test ends with a line to run it again. Under --sched or --explore it \
                is a 'replay:' line, which reproduces the schedule. In a plain run it is a \
                'rerun:' line: the same seed and options, but the kernel's schedule is not \
                reproduced (--explore-failures N looks for a schedule that fails).

                Exit status: 0 every test passed; 1 some test failed (a timeout or a deadlock \
                fails its test); 2 usage error; 130, 143 or 129: interrupted by SIGINT, SIGTERM \
                or SIGHUP (every test's processes are ended, the reports hold what had finished \
                and the interrupted tests).
                """
        )

        /// `run`'s options, applied to every test (--timeout defaults to 30 s here).
        @OptionGroup var scenario: ScenarioOptions

        @Option(name: .customLong("explore"), help: ArgumentHelp("Run each test under this many controlled schedules (ipcplay explore), or under every interleaving with `exhaustive` (explore --exhaustive); a failing test shows explore's report: its shrunk schedule, explanation and replay line.", valueName: "n|exhaustive"))
        var exploreOption: String?

        @Flag(help: "With --explore: print every step of a failing schedule's interleaving, with no elision.")
        var full = false

        @Option(help: ArgumentHelp("With --explore exhaustive: only schedules with at most this many preemptions.", valueName: "k"))
        var preemptions: Int?

        /// The schedules per test of `--explore N` (nil with `exhaustive`).
        var explore: Int? { exploreOption.flatMap { Int($0) } }
        var exhaustive: Bool { exploreOption == "exhaustive" }

        @Option(help: ArgumentHelp("Only the tests whose path contains this text.", valueName: "text"))
        var filter: String?

        @Option(name: .customLong("repeat"), help: ArgumentHelp("Run each test this many times; stop at its first failure.", valueName: "n"))
        var repetitions: Int = 1

        @Option(help: ArgumentHelp("Run this many tests at once.", valueName: "n"))
        var jobs: Int = 1

        @Flag(help: "Print TAP version 14 instead of the default report.")
        var tap = false

        @Option(name: .customLong("tap-version"), help: ArgumentHelp("The TAP version line with --tap: 14, or 13 for harnesses older than TAP 14 (Test-Harness before 3.48); the body is the same (default 14).", valueName: "n"))
        var tapVersion: Int?

        @Option(help: ArgumentHelp("Also write a JUnit XML report to this file.", valueName: "file"))
        var junit: String?

        @Option(name: .customLong("explore-failures"), help: ArgumentHelp("Run a test that failed in a plain run again under up to this many controlled schedules (ipcplay explore); a schedule that fails gives a replay line.", valueName: "n"))
        var exploreFailures: Int?

        @Option(help: ArgumentHelp("Write a Chrome/Perfetto trace of each test into this folder (one FILE.json per test, named after it).", valueName: "folder"))
        var trace: String?

        @Flag(help: "--timeline=FOLDER: write each test's swim-lane timeline as SVG into FOLDER (one FILE.svg per test, named after it).")
        var timeline = false

        @Option(name: .customLong("timeline-file"), help: .hidden)
        var timelineFolder: String?

        @Argument(help: ArgumentHelp("Test files or folders (default: tests).", valueName: "path"))
        var paths: [String] = []

        var timeout: Double { scenario.timeout ?? 30 }
        var timeScale: Double { scenario.timeScale }
        var jitter: Double { scenario.jitter }
        var seed: UInt64? { scenario.seed }

        func validate() throws {
            if let exploreOption, !exhaustive && (explore ?? 0) < 1 { throw ValidationError("--explore must be a number of schedules (at least 1) or 'exhaustive', not '\(exploreOption)'") }
            if let preemptions, preemptions < 0 { throw ValidationError("--preemptions must be at least 0") }
            if preemptions != nil && !exhaustive { throw ValidationError("--preemptions goes with --explore exhaustive") }
            if full && exploreOption == nil { throw ValidationError("--full goes with --explore") }
            if exploreOption != nil && jitter > 0 { throw ValidationError("--explore and --jitter do not go together") }
            if exploreOption != nil && scenario.sched != nil { throw ValidationError("--explore runs its own schedules: leave out --sched") }
            if scenario.crashes.kill > 0 && exploreOption == nil && scenario.sched == nil { throw ValidationError("--kill needs --explore or --sched") }
            if scenario.crashes.killRate != nil && exhaustive { throw ValidationError("--kill-rate does not go with --explore exhaustive: it tries every kill point") }
            if scenario.crashes.kill > 1 && exhaustive { throw ValidationError("--explore exhaustive goes with --kill 1 at most: the search does not cover several kills per schedule yet") }
            if repetitions < 1 { throw ValidationError("--repeat must be at least 1") }
            if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
            if let tapVersion, tapVersion != 13 && tapVersion != 14 { throw ValidationError("--tap-version must be 13 or 14") }
            if tapVersion != nil && !tap { throw ValidationError("--tap-version goes with --tap") }
            try scenario.checkControlled(by: "--sched or --explore", controlled: scenario.sched != nil || explore != nil)
            if scenario.depth != nil && scenario.sched == .random { throw ValidationError("--depth goes with --sched pct") }
            if scenario.noDeadlockCheck && explore != nil { throw ValidationError("--no-deadlock-check does not go with --explore (a controlled run sees every deadlock)") }
            if let n = exploreFailures, n < 1 { throw ValidationError("--explore-failures must be at least 1") }
            if exploreFailures != nil && (explore != nil || scenario.sched != nil) {
                throw ValidationError("--explore-failures re-runs a plain run's failures: leave out --explore and --sched")
            }
            if timeline { throw ValidationError("--timeline in test needs a folder: --timeline=FOLDER (one SVG per test)") }
            if explore != nil && (trace != nil || timelineFolder != nil) {
                throw ValidationError("--trace and --timeline record one run: they do not go with --explore")
            }
            for (option, folder) in [("--trace", trace), ("--timeline", timelineFolder)] {
                if let folder { try checkWritableFolder(folder, option: option) }
            }
        }

        func run() throws {
            // From now on SIGINT, SIGTERM and SIGHUP end every test's processes; the
            // runner then reports what it has and exits 128 + the signal.
            Cancellation.install(graceful: true)
            var runner = TestRunner(options: self)
            Glibc.exit(try runner.run())
        }
    }
}

/// One test's result.
struct TestResult {
    enum Status { case passed, failed, skipped, interrupted }
    var name: String
    var status: Status
    var seconds: Double
    var message = ""
    var process = ""
    var blocked: [BlockedProcess] = []
    /// A deadlock's wait-for cycle (the `cycle:` line), or "".
    var cycle = ""
    var output = ""
    var seed: UInt64
    var run = 1
    /// The command that runs the test again, and whether it reproduces the failing
    /// schedule (`replay:`, under --sched or --explore) or only reruns it (`rerun:`).
    var repro = ""
    var reproduces = false
    /// A failing schedule's findings (`--explore`, `--explore-failures`).
    var schedule = ""
    /// The explanation's line ("critical pair: ...", "atomicity: ...").
    var explanation = ""
    /// `--explore`: explore's whole report of the failing schedule, printed as it is.
    var exploreReport = ""
    /// Its kills (`--kill`), each as `kill:` lines say it: `NAME before <call> at <file:line>`.
    var kills: [String] = []
    /// What `--explore-failures` found ("" when it did not run).
    var explored = ""

    var reproKey: String { reproduces ? "replay" : "rerun" }

    /// Said under a `rerun:` line.
    static let rerunNote = "the same seed and options; the kernel's schedule is not reproduced"
}

struct TestRunner {
    let options: IPCPlay.Test
    let executable = currentExecutable()
    let seed: UInt64
    var results: [TestResult] = []
    var scratchFolder = ""

    init(options: IPCPlay.Test) {
        self.options = options
        seed = options.seed ?? UInt64.random(in: 1...999_999_999)
    }

    // MARK: - Discovery

    func discover() throws(CommandFailure) -> [String] {
        var found: [String] = []
        for path in options.paths.isEmpty ? ["tests"] : options.paths {
            var st = stat()
            guard stat(path, &st) == 0 else { throw CommandFailure(message: "no such test or folder: \(path)") }
            if st.st_mode & S_IFMT == S_IFDIR {
                found += walk(path).sorted()
            } else {
                found.append(path)
            }
        }
        found = found.map { $0.hasPrefix("./") ? String($0.dropFirst(2)) : $0 }
        if let filter = options.filter { found = found.filter { $0.contains(filter) } }
        return found
    }

    func walk(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR { out += walk(path) } else if name.hasSuffix("_test.lua") { out.append(path) }
        }
        return out
    }

    // MARK: - Running

    struct Running {
        var index: Int
        var name: String
        var repetition: Int
        var seed: UInt64
        var process: Subprocess
        var started: Double
        var outputPath: String
        var reportPath: String
    }

    func runSeed(_ repetition: Int) -> UInt64 {
        repetition == 1 ? seed : seed &+ UInt64(repetition) &* 0x9e37_79b9
    }

    /// The `ipcplay test` command that runs test `name` again with `seed` and these options.
    func reproCommand(_ name: String, seed: UInt64) -> String {
        var parts = ["ipcplay", "test", "--seed", String(seed)]
        if options.jitter > 0 { parts += ["--jitter", fmt(options.jitter)] }
        if let sched = options.scenario.sched { parts += ["--sched", sched.rawValue] }
        if let depth = options.scenario.depth { parts += ["--depth", String(depth)] }
        if let maxSteps = options.scenario.maxSteps { parts += ["--max-steps", String(maxSteps)] }
        if options.timeScale != 1 { parts += ["--time-scale", fmt(options.timeScale)] }
        if options.timeout != 30 { parts += ["--timeout", fmt(options.timeout)] }
        if let limit = options.scenario.memoryLimit { parts += ["--memory-limit", String(limit)] }
        if let n = options.exploreOption { parts += ["--explore", n] }
        if let k = options.preemptions { parts += ["--preemptions", String(k)] }
        parts += options.scenario.crashes.arguments
        parts.append(name)
        return parts.map(Exploring.shellQuoted).joined(separator: " ")
    }

    func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d) }

    /// Where test `name`'s trace or timeline goes in `folder`: its path with `/` as `-`
    /// (`tests/queue_test.lua` → `tests-queue_test.json`), and the run's number when
    /// tests are repeated.
    func recordingPath(_ folder: String, _ name: String, repetition: Int, ext: String) -> String {
        var base = name.hasSuffix(".lua") ? String(name.dropLast(4)) : name
        while base.hasPrefix("/") || base.hasPrefix(".") { base.removeFirst() }
        base = base.split(separator: "/").joined(separator: "-")
        if options.repetitions > 1 { base += "-run\(repetition)" }
        return (folder.hasSuffix("/") ? folder : folder + "/") + base + "." + ext
    }

    /// Where test `name`'s trace is written: the --trace folder.
    func tracePath(_ index: Int, _ name: String, _ repetition: Int) -> String {
        if let folder = options.trace { return recordingPath(folder, name, repetition: repetition, ext: "json") }
        return "\(scratchFolder)/\(index)-\(repetition).json"
    }

    /// Where test `name`'s events are recorded for its timeline (--timeline=FOLDER).
    func eventsPath(_ index: Int, _ repetition: Int) -> String { "\(scratchFolder)/\(index)-\(repetition).events" }

    /// Draws the timeline of a test that has ended (--timeline=FOLDER) from its trace.
    func drawTimeline(_ r: Running) {
        guard let folder = options.timelineFolder else { return }
        let picture = Timeline(eventsPath: eventsPath(r.index, r.repetition))
        let path = recordingPath(folder, r.name, repetition: r.repetition, ext: "svg")
        guard let f = fopen(path, "w") else {
            Runtime.writeStderr("ipcplay: cannot write the timeline \(path): \(Syscall.lastError)\n")
            return
        }
        fputs(picture.svg(), f)
        fclose(f)
    }

    mutating func run() throws(CommandFailure) -> Int32 {
        let tests = try discover()
        if let junit = options.junit {
            // Found out now, not after every test has run.
            guard let f = fopen(junit, "w") else {
                throw CommandFailure(message: "cannot write the JUnit report \(junit): \(Syscall.lastError)")
            }
            fclose(f)
        }
        let scratch = try makeScratchDirectory()
        scratchFolder = scratch
        defer { removeScratch(scratch) }
        if options.tap {
            print("TAP version \(options.tapVersion ?? 14)")
            print("1..\(tests.count)")
        } else if options.jitter > 0 {
            print("jitter up to \(fmt(options.jitter)) ms, seed \(seed) (rerun with --seed \(seed))")
        } else if let runs = options.explore {
            print("each test under \(runs) schedules, seed \(seed)")
        } else if options.exhaustive {
            print("each test under every interleaving\(options.preemptions.map { " with at most \($0) preemptions" } ?? ""), seed \(seed)")
        }
        fflushStdout()
        var queue = Array(tests.enumerated())
        queue.reverse()
        var running: [Running] = []
        var pendingRepeats: [(Int, String, Int)] = []
        var finalResults = [TestResult?](repeating: nil, count: tests.count)
        var emitted = [Bool](repeating: false, count: tests.count)
        var nextToEmit = 0

        func start(_ index: Int, _ name: String, _ repetition: Int) throws(CommandFailure) -> Running {
            let runSeed = self.runSeed(repetition)
            let out = "\(scratch)/\(index)-\(repetition).out"
            let report = "\(scratch)/\(index)-\(repetition).report"
            var args: [String]
            if options.exploreOption != nil {
                args = [executable, "explore"] + (options.explore.map { ["--runs", String($0)] } ?? ["--exhaustive"])
                if let k = options.preemptions { args += ["--preemptions", String(k)] }
                args += ["--seed", String(runSeed), "--timeout", fmt(options.timeout), "--report", report]
                if let depth = options.scenario.depth { args += ["--depth", String(depth)] }
                if let maxSteps = options.scenario.maxSteps { args += ["--max-steps", String(maxSteps)] }
                if let limit = options.scenario.memoryLimit { args += ["--memory-limit", String(limit)] }
                args += options.scenario.crashes.arguments
                // The CPUs shared out: --jobs tests at once, each running its schedules on its share.
                args += ["--jobs", String(max(1, Explorer.cpus / max(1, options.jobs)))]
                if options.full { args.append("--full") }
            } else {
                // The seed always goes along: a test's randomness (ipc.test.seed(), math.random)
                // comes from it, so the rerun line runs it with the same numbers.
                args = [executable, "run", "--timeout", fmt(options.timeout), "--time-scale", fmt(options.timeScale),
                        "--report", report, "--strict-child-errors", "--seed", String(runSeed)]
                if options.jitter > 0 { args += ["--jitter", fmt(options.jitter)] }
                if let sched = options.scenario.sched {
                    args += ["--sched", sched.rawValue]
                    if let depth = options.scenario.depth { args += ["--depth", String(depth)] }
                    if let maxSteps = options.scenario.maxSteps { args += ["--max-steps", String(maxSteps)] }
                    args += options.scenario.crashes.arguments
                }
                if let limit = options.scenario.memoryLimit { args += ["--memory-limit", String(limit)] }
                if options.scenario.noDeadlockCheck { args.append("--no-deadlock-check") }
                // The timeline is drawn here from the trace once the test has ended, however
                // it ended (a run cut short by its timeout draws none itself).
                if options.trace != nil { args += ["--trace", tracePath(index, name, repetition)] }
                if options.timelineFolder != nil { args += ["--timeline-events", eventsPath(index, repetition)] }
            }
            args.append(name)
            let p = try Subprocess.spawn(args, outputPath: out)
            return Running(index: index, name: name, repetition: repetition, seed: runSeed, process: p,
                           started: MonotonicClock.realSeconds(), outputPath: out, reportPath: report)
        }

        /// Prints the results that are due: in order with one job or TAP (whose numbers
        /// count up), else as they come.
        func emitDue(_ latest: Int?) {
            if options.jobs == 1 || options.tap || latest == nil {
                while nextToEmit < tests.count, let res = finalResults[nextToEmit] {
                    if !emitted[nextToEmit] { emit(res, number: nextToEmit + 1) }
                    emitted[nextToEmit] = true
                    nextToEmit += 1
                }
                if latest == nil {
                    // Interrupted: whatever finished out of order too.
                    for (i, res) in finalResults.enumerated() where !emitted[i] {
                        if let res { emit(res, number: i + 1) }
                        emitted[i] = true
                    }
                }
            } else if let i = latest, let res = finalResults[i] {
                emit(res, number: i + 1)
                emitted[i] = true
            }
        }

        while (!queue.isEmpty || !running.isEmpty || !pendingRepeats.isEmpty) && !Cancellation.isRequested {
            while running.count < options.jobs, !Cancellation.isRequested,
                  let next = pendingRepeats.popLast() ?? queue.popLast().map({ ($0.offset, $0.element, 1) }) {
                running.append(try start(next.0, next.1, next.2))
            }
            var progressed = false
            var i = 0
            while i < running.count && !Cancellation.isRequested {
                let r = running[i]
                var status = r.process.poll()
                let elapsed = MonotonicClock.realSeconds() - r.started
                if status == nil && elapsed > options.timeout + 15 {
                    // The run's own --timeout should have ended it: a safety net.
                    r.process.killGroup()
                    status = r.process.poll() ?? 137
                }
                guard let exit = status else { i += 1; continue }
                r.process.killGroup()  // whatever it left behind
                running.remove(at: i)
                progressed = true
                drawTimeline(r)
                var result = interpret(r, exit: exit, seconds: elapsed)
                if result.status == .passed && r.repetition < options.repetitions {
                    pendingRepeats.append((r.index, r.name, r.repetition + 1))
                    continue
                }
                result.run = r.repetition
                if result.status == .failed, let runs = options.exploreFailures, !Cancellation.isRequested {
                    exploreFailure(&result, runs: runs, scratch: scratch)
                }
                finalResults[r.index] = result
                emitDue(r.index)
            }
            if !progressed && !Cancellation.isRequested { MonotonicClock.sleep(seconds: 0.005) }
        }
        if Cancellation.isRequested {
            for (index, result) in interrupt(running) { finalResults[index] = result }
            emitDue(nil)
        }
        results = finalResults.compactMap { $0 }
        let passed = results.filter { $0.status == .passed }.count
        let failed = results.filter { $0.status == .failed }.count
        let skipped = results.filter { $0.status == .skipped }.count
        let interrupted = results.filter { $0.status == .interrupted }.count
        var summary = "\(passed) passed, \(failed) failed"
        if skipped > 0 { summary += ", \(skipped) skipped" }
        if Cancellation.isRequested {
            summary = "interrupted by \(Cancellation.signalName): " + summary + ", \(interrupted) interrupted, \(tests.count - results.count) not run"
            if options.tap { print("Bail out! interrupted by \(Cancellation.signalName)") }
        }
        print(options.tap ? "# " + summary : summary)
        fflushStdout()
        if let junit = options.junit { try writeJUnit(to: junit) }
        if Cancellation.isRequested { return Cancellation.exitStatus }
        return failed > 0 ? 1 : 0
    }

    /// After a signal: the handler has asked each running test's host to end (SIGTERM: it
    /// ends its processes and removes its socket files, and reports what each was doing).
    /// What is left after a grace period is killed, with every descendant of this process.
    func interrupt(_ running: [Running]) -> [(Int, TestResult)] {
        for r in running { kill(r.process.pid, SIGTERM) }
        var exits = [Int32?](repeating: nil, count: running.count)
        let deadline = MonotonicClock.realSeconds() + 0.6
        while MonotonicClock.realSeconds() < deadline {
            for (i, r) in running.enumerated() where exits[i] == nil { exits[i] = r.process.poll() }
            if exits.allSatisfy({ $0 != nil }) { break }
            MonotonicClock.sleep(seconds: 0.005)
        }
        for r in running { r.process.killGroup() }
        Cancellation.endDescendants(milliseconds: 300)
        let now = MonotonicClock.realSeconds()
        return running.enumerated().map { i, r in
            var result = interpret(r, exit: exits[i] ?? 128 + SIGKILL, seconds: now - r.started)
            result.status = .interrupted
            let detail = result.message
            result.message = "interrupted by \(Cancellation.signalName) after \(format2(result.seconds)) s, before the test ended"
            if !detail.isEmpty { result.message += "\n" + detail }
            if !result.blocked.isEmpty { result.message += "\nwhat each process was doing:" }
            result.run = r.repetition
            return (r.index, result)
        }
    }

    /// `--explore-failures`: runs the failed test `result` under controlled schedules; a
    /// schedule that fails gives a replay line that reproduces a failure.
    func exploreFailure(_ result: inout TestResult, runs: Int, scratch: String) {
        let out = "\(scratch)/explore-\(result.seed).out"
        let report = "\(scratch)/explore-\(result.seed).report"
        var args = [executable, "explore", "--runs", String(runs), "--seed", String(result.seed), "--timeout", fmt(options.timeout),
                    "--report", report]
        if let limit = options.scenario.memoryLimit { args += ["--memory-limit", String(limit)] }
        args.append(result.name)
        guard let p = try? Subprocess.spawn(args, outputPath: out) else { return }
        let started = MonotonicClock.realSeconds()
        while p.poll() == nil {
            if Cancellation.isRequested || MonotonicClock.realSeconds() - started > options.timeout * Double(runs) + 60 {
                p.killGroup()
                _ = Cancellation.endDescendants(milliseconds: 300)
                result.explored = "exploring the failure was cut short"
                return
            }
            MonotonicClock.sleep(seconds: 0.005)
        }
        p.killGroup()
        let found = RunReport.read(path: report)
        if found.failed, let replay = found.replay {
            result.explored = "under explore (\(runs) schedules at most), a schedule failed: "
                + (found.outcome == .deadlock ? "deadlock" : oneLine(found.messages.first ?? found.outcome?.rawValue ?? "failure"))
            result.repro = replay
            result.reproduces = true
            result.schedule = found.schedule ?? ""
            result.explanation = found.explanation ?? ""
            result.kills = found.kills
        } else {
            result.explored = "under explore, no schedule of \(runs) failed"
        }
    }

    /// A private folder for the tests' output and report files.
    func makeScratchDirectory() throws(CommandFailure) -> String {
        var template = Array("/tmp/ipcplay-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buf -> String? in
            guard let base = buf.baseAddress, mkdtemp(base) != nil else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: base, count: strlen(base)), as: UTF8.self)
        }
        guard let made else { throw CommandFailure(message: "cannot create a folder in /tmp: \(Syscall.lastError)", status: 1) }
        return made
    }

    /// Removes the scratch folder: it holds plain files only.
    func removeScratch(_ dir: String) {
        for name in walkAll(dir) { unlink(name) }
        rmdir(dir)
    }

    func walkAll(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { out.append(dir + "/" + name) }
        }
        return out
    }

    // MARK: - Results

    func interpret(_ r: Running, exit: Int32, seconds: Double) -> TestResult {
        let report = RunReport.read(path: r.reportPath)
        var result = TestResult(name: r.name, status: .failed, seconds: seconds, seed: r.seed)
        result.output = fileText(r.outputPath) ?? ""
        result.repro = reproCommand(r.name, seed: r.seed)
        result.reproduces = options.scenario.sched != nil || options.explore != nil
        result.message = report.messages.joined(separator: "\n")
        result.process = report.processes.first ?? ""
        result.blocked = report.blocked
        result.cycle = report.cycle ?? ""
        result.schedule = report.schedule ?? ""
        result.explanation = report.explanation ?? ""
        // Explore's report (headline, failure, interleaving, schedule, explanation, replay)
        // is the test's report: shown once, whole.
        if options.exploreOption != nil, report.interleaving != nil, report.replay != nil { result.exploreReport = result.output }
        result.kills = report.kills
        if let replay = report.replay {
            result.repro = replay
            result.reproduces = true
        }
        switch report.outcome {
        case .ok? where exit == 0:
            result.status = .passed
        case .skipped?:
            result.status = .skipped
        case .timeout?:
            result.message = "timed out after \(fmt(options.timeout)) s; what each process was doing:"
        case .deadlock?:
            result.message = "deadlock: every process was blocked, and none could wake another:"
        case .interrupted?:
            result.status = .interrupted
        case .error?, .childError?, .livelock?, .diverged?:
            break
        case .ok?, nil:
            result.message = exit == 0 ? "the run ended without a result" : "the run ended with status \(exit)"
            if exit > 128 { result.message += " (signal \(exit - 128))" }
        }
        return result
    }

    func emit(_ r: TestResult, number: Int) {
        if options.tap {
            switch r.status {
            case .passed: print("ok \(number) - \(r.name)")
            case .skipped: print("ok \(number) - \(r.name) # SKIP \(oneLine(r.message))")
            case .failed, .interrupted:
                print("not ok \(number) - \(r.name)\(r.status == .interrupted ? " (interrupted)" : "")")
                print("  ---")
                print("  message: \(yaml(r.message))")
                if r.status == .interrupted { print("  interrupted: \(yaml(Cancellation.signalName))") }
                if !r.process.isEmpty { print("  process: \(yaml(r.process))") }
                print("  seed: \(r.seed)")
                if options.repetitions > 1 { print("  run: \(r.run)") }
                if !r.blocked.isEmpty {
                    print("  blocked:")
                    for b in r.blocked { print(yamlBlocked(b, indent: "    ")) }
                }
                if r.cycle.hasPrefix("cycle: ") { print("  cycle: \(yaml(String(r.cycle.dropFirst(7))))") }
                if !r.kills.isEmpty { print("  kills:\n" + r.kills.map { "    - \(yaml($0))" }.joined(separator: "\n")) }
                if !r.schedule.isEmpty { print("  schedule: \(yaml(r.schedule))") }
                if !r.explanation.isEmpty { print("  explanation: \(yaml(r.explanation))") }
                if !r.explored.isEmpty { print("  explored: \(yaml(r.explored))") }
                print("  \(r.reproKey): \(yaml(r.repro))")
                if !r.reproduces { print("  note: \(yaml(TestResult.rerunNote))") }
                print("  ...")
            }
        } else {
            let time = String(format2(r.seconds)) + " s"
            switch r.status {
            case .passed: print("PASS  \(r.name) (\(time))")
            case .skipped: print("SKIP  \(r.name): \(oneLine(r.message))")
            case .failed, .interrupted:
                let head = r.status == .interrupted ? "INTR" : "FAIL"
                print("\(head)  \(r.name) (\(time))" + (options.repetitions > 1 ? ", on run \(r.run) of \(options.repetitions)" : ""))
                if !r.exploreReport.isEmpty {
                    for line in r.exploreReport.split(separator: "\n", omittingEmptySubsequences: false).dropLast(r.exploreReport.hasSuffix("\n") ? 1 : 0) {
                        print(line.isEmpty ? "" : "      \(line)")
                    }
                    break
                }
                for line in r.message.split(separator: "\n", omittingEmptySubsequences: false) { print("      \(line)") }
                if !r.process.isEmpty { print("      in \(r.process)") }
                for b in r.blocked { print("        \(b.line)") }
                if !r.cycle.isEmpty && r.cycle != r.explanation { print("      \(r.cycle)") }
                for kill in r.kills { print("      kill: \(kill)") }
                if !r.schedule.isEmpty { print("      schedule: \(r.schedule)") }
                if !r.explanation.isEmpty { print("      \(r.explanation)") }
                // What the test printed, without ipcplay's own report (shown above).
                let output = r.output.split(separator: "\n").filter { line in
                    !(line.hasPrefix("ipcplay: error in") || line.hasPrefix("ipcplay: timeout:") || line.hasPrefix("ipcplay: deadlock:")
                      || line.hasPrefix("ipcplay: interrupted") || line.hasPrefix("ipcplay: terminated")
                      || line.hasPrefix("stack traceback:") || line.hasPrefix("\t") || line.hasPrefix("  "))
                }
                if !output.isEmpty {
                    print("      output\(output.count > 30 ? " (last 30 lines)" : ""):")
                    for line in output.suffix(30) { print("      | \(line)") }
                }
                if !r.explored.isEmpty { print("      \(r.explored)") }
                print("      \(r.reproKey): \(r.repro)" + (r.reproduces ? "" : "  (\(TestResult.rerunNote))"))
            }
        }
        fflushStdout()
    }

    /// A blocked process as a YAML mapping in a sequence, each field on its line (TAP
    /// harnesses' YAMLish readers take a mapping item, where a quoted scalar holding
    /// `word: ` would be misread as one).
    func yamlBlocked(_ b: BlockedProcess, indent: String) -> String {
        var fields: [(String, String)] = [("process", yaml(b.name))]
        if let pid = b.pid { fields.append(("pid", String(pid))) }
        fields.append(("state", yaml(b.state.rawValue)))
        if !b.call.isEmpty { fields.append(("call", yaml(b.call))) }
        if !b.object.isEmpty { fields.append(("object", yaml(b.object))) }
        if !b.location.isEmpty { fields.append(("at", yaml(b.location))) }
        if !b.duration.isEmpty { fields.append(("for", yaml(b.duration))) }
        if let holder = b.holder { fields.append(("held_by", yaml(holder.text))) }
        fields.append(("line", yaml(b.line)))
        return fields.enumerated().map { i, f in indent + (i == 0 ? "- " : "  ") + f.0 + ": " + f.1 }.joined(separator: "\n")
    }

    func format2(_ d: Double) -> String {
        let cents = Int((d * 100).rounded())
        return "\(cents / 100).\(cents % 100 < 10 ? "0" : "")\(cents % 100)"
    }

    func oneLine(_ s: String) -> String { s.split(separator: "\n").first.map(String.init) ?? s }

    /// A YAML double-quoted scalar.
    func yaml(_ s: String) -> String {
        let table: [Unicode.Scalar: String] = ["\"": "\\\"", "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"]
        return "\"" + s.escaped(table) { $0.value < 0x20 || $0.value == 0x7f ? "\\x" + hex2($0.value) : nil } + "\""
    }

    func hex2(_ v: UInt32) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(v >> 4) & 15], digits[Int(v) & 15]])
    }

    /// XML text with the five entities, and control characters dropped.
    func xml(_ s: String) -> String {
        s.escaped(String.xmlEntities.merging(["'": "&apos;"]) { $1 }) {
            $0.value < 0x20 && $0 != "\n" && $0 != "\t" && $0 != "\r" ? "" : nil
        }
    }

    func writeJUnit(to path: String) throws(CommandFailure) {
        let failures = results.filter { $0.status == .failed }.count
        let errors = results.filter { $0.status == .interrupted }.count
        let skipped = results.filter { $0.status == .skipped }.count
        let total = results.reduce(0) { $0 + $1.seconds }
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites tests=\"\(results.count)\" failures=\"\(failures)\" errors=\"\(errors)\" skipped=\"\(skipped)\" time=\"\(format2(total))\">\n"
        x += "  <testsuite name=\"ipcplay\" tests=\"\(results.count)\" failures=\"\(failures)\" skipped=\"\(skipped)\" errors=\"\(errors)\" time=\"\(format2(total))\">\n"
        x += "    <properties><property name=\"seed\" value=\"\(seed)\"/>"
        if let signal = Cancellation.signal.map({ _ in Cancellation.signalName }) { x += "<property name=\"interrupted\" value=\"\(signal)\"/>" }
        x += "</properties>\n"
        for r in results {
            let classname = r.name.split(separator: "/").dropLast().joined(separator: ".")
            x += "    <testcase name=\"\(xml(r.name))\" classname=\"\(xml(classname.isEmpty ? "tests" : classname))\" time=\"\(format2(r.seconds))\">\n"
            switch r.status {
            case .passed: break
            case .skipped: x += "      <skipped message=\"\(xml(oneLine(r.message)))\"/>\n"
            case .failed, .interrupted:
                var body = r.message
                if !r.blocked.isEmpty { body += "\n" + r.blocked.map { "  " + $0.line }.joined(separator: "\n") }
                if !r.cycle.isEmpty && r.cycle != r.explanation { body += "\n" + r.cycle }
                body += r.kills.map { "\nkill: \($0)" }.joined()
                if !r.schedule.isEmpty { body += "\nschedule: \(r.schedule)" }
                if !r.explanation.isEmpty { body += "\n\(r.explanation)" }
                if !r.explored.isEmpty { body += "\n\(r.explored)" }
                body += "\nseed: \(r.seed)\n\(r.reproKey): \(r.repro)"
                if !r.reproduces { body += "\n(\(TestResult.rerunNote))" }
                let element = r.status == .interrupted ? "error" : "failure"
                let type = r.status == .interrupted ? "interrupted" : "failure"
                x += "      <\(element) message=\"\(xml(oneLine(r.message)))\" type=\"\(type)\">\(xml(body))</\(element)>\n"
                x += "      <system-out>\(xml(r.output))</system-out>\n"
            }
            x += "    </testcase>\n"
        }
        x += "  </testsuite>\n</testsuites>\n"
        guard let f = fopen(path, "w") else {
            throw CommandFailure(message: "cannot write the JUnit report \(path): \(Syscall.lastError)", status: 1)
        }
        fputs(x, f)
        fclose(f)
    }
}

func fflushStdout() { Runtime.flushOutput() }
