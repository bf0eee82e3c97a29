import ArgumentParser
import Glibc
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
                'N passed, N failed' and a non-zero status when any failed.
                """
        )

        /// `run`'s options, applied to every test (--timeout defaults to 30 s here).
        @OptionGroup var scenario: ScenarioOptions

        @Option(name: .customLong("explore"), help: ArgumentHelp("Run each test under this many controlled schedules (ipcplay explore), or under every interleaving with `exhaustive` (explore --exhaustive); a failing test shows its shrunk schedule, critical pair and replay line.", valueName: "n|exhaustive"))
        var exploreOption: String?

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

        @Option(name: .customLong("tap-version"), help: ArgumentHelp("The TAP version line with --tap: 14, or 13 for harnesses older than TAP 14 (Test-Harness before 3.48); the body is the same.", valueName: "n"))
        var tapVersion: Int = 14

        @Option(help: ArgumentHelp("Also write a JUnit XML report to this file.", valueName: "file"))
        var junit: String?

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
            if exploreOption != nil && jitter > 0 { throw ValidationError("--explore and --jitter do not go together") }
            if exploreOption != nil && scenario.sched != nil { throw ValidationError("--explore runs its own schedules: leave out --sched") }
            if repetitions < 1 { throw ValidationError("--repeat must be at least 1") }
            if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
            if tapVersion != 13 && tapVersion != 14 { throw ValidationError("--tap-version must be 13 or 14") }
        }

        func run() throws {
            var runner = TestRunner(options: self)
            Glibc.exit(try runner.run())
        }
    }
}

/// One test's result.
struct TestResult {
    enum Status { case passed, failed, skipped }
    var name: String
    var status: Status
    var seconds: Double
    var message = ""
    var process = ""
    var blocked: [String] = []
    var output = ""
    var seed: UInt64
    var run = 1
    var replay = ""
    /// A failing schedule's findings (`--explore`).
    var schedule = ""
    var pair = ""
}

struct TestRunner {
    let options: IPCPlay.Test
    let executable = currentExecutable()
    let seed: UInt64
    var results: [TestResult] = []

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

    func replayCommand(_ name: String, seed: UInt64) -> String {
        var parts = ["ipcplay", "test", "--seed", String(seed)]
        if options.jitter > 0 { parts += ["--jitter", fmt(options.jitter)] }
        if let sched = options.scenario.sched { parts += ["--sched", sched.rawValue] }
        if options.timeScale != 1 { parts += ["--time-scale", fmt(options.timeScale)] }
        if options.timeout != 30 { parts += ["--timeout", fmt(options.timeout)] }
        if let limit = options.scenario.memoryLimit { parts += ["--memory-limit", String(limit)] }
        if let n = options.exploreOption { parts += ["--explore", n] }
        if let k = options.preemptions { parts += ["--preemptions", String(k)] }
        parts.append(name)
        return parts.joined(separator: " ")
    }

    func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d) }

    mutating func run() throws(CommandFailure) -> Int32 {
        let tests = try discover()
        if let junit = options.junit {
            // Found out now, not after every test has run.
            guard let f = fopen(junit, "w") else {
                throw CommandFailure(message: "cannot write the JUnit report \(junit): \(String(cString: strerror(errno)))", status: 1)
            }
            fclose(f)
        }
        let scratch = try makeScratchDirectory()
        defer { removeScratch(scratch) }
        if options.tap {
            print("TAP version \(options.tapVersion)")
            print("1..\(tests.count)")
        } else if options.jitter > 0 {
            print("jitter up to \(fmt(options.jitter)) ms, seed \(seed) (replay with --seed \(seed))")
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
                if let limit = options.scenario.memoryLimit { args += ["--memory-limit", String(limit)] }
            } else {
                // The seed always goes along: a test's randomness (ipc.test.seed(), math.random)
                // comes from it, so the replay line reproduces the run.
                args = [executable, "run", "--timeout", fmt(options.timeout), "--time-scale", fmt(options.timeScale),
                        "--report", report, "--strict-child-errors", "--seed", String(runSeed)]
                if options.jitter > 0 { args += ["--jitter", fmt(options.jitter)] }
                if let sched = options.scenario.sched { args += ["--sched", sched.rawValue, "--depth", String(options.scenario.depth)] }
                if let limit = options.scenario.memoryLimit { args += ["--memory-limit", String(limit)] }
            }
            args.append(name)
            let p = try Subprocess.spawn(args, outputPath: out)
            return Running(index: index, name: name, repetition: repetition, seed: runSeed, process: p,
                           started: MonotonicSeconds.now(), outputPath: out, reportPath: report)
        }

        while !queue.isEmpty || !running.isEmpty || !pendingRepeats.isEmpty {
            while running.count < options.jobs, let next = pendingRepeats.popLast() ?? queue.popLast().map({ ($0.offset, $0.element, 1) }) {
                running.append(try start(next.0, next.1, next.2))
            }
            var progressed = false
            var i = 0
            while i < running.count {
                let r = running[i]
                var status = r.process.poll()
                let elapsed = MonotonicSeconds.now() - r.started
                if status == nil && elapsed > options.timeout + 15 {
                    // The run's own --timeout should have ended it: a safety net.
                    r.process.killGroup()
                    status = r.process.poll() ?? 137
                }
                guard let exit = status else { i += 1; continue }
                r.process.killGroup()  // whatever it left behind
                running.remove(at: i)
                progressed = true
                var result = interpret(r, exit: exit, seconds: elapsed)
                if result.status == .passed && r.repetition < options.repetitions {
                    pendingRepeats.append((r.index, r.name, r.repetition + 1))
                    continue
                }
                result.run = r.repetition
                finalResults[r.index] = result
                if options.jobs == 1 || options.tap {
                    // In order (with jobs, TAP numbers must still count up).
                    while nextToEmit < tests.count, let res = finalResults[nextToEmit] {
                        emit(res, number: nextToEmit + 1)
                        nextToEmit += 1
                    }
                } else {
                    emit(result, number: r.index + 1)
                }
            }
            if !progressed { MonotonicSeconds.sleep(0.005) }
        }
        results = finalResults.compactMap { $0 }
        let passed = results.filter { $0.status == .passed }.count
        let failed = results.filter { $0.status == .failed }.count
        let skipped = results.filter { $0.status == .skipped }.count
        var summary = "\(passed) passed, \(failed) failed"
        if skipped > 0 { summary += ", \(skipped) skipped" }
        print(options.tap ? "# " + summary : summary)
        fflushStdout()
        if let junit = options.junit { try writeJUnit(to: junit) }
        return failed > 0 ? 1 : 0
    }

    /// A private folder for the tests' output and report files.
    func makeScratchDirectory() throws(CommandFailure) -> String {
        var template = Array("/tmp/ipcplay-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buf -> String? in
            guard let base = buf.baseAddress, mkdtemp(base) != nil else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: base, count: strlen(base)), as: UTF8.self)
        }
        guard let made else { throw CommandFailure(message: "cannot create a folder in /tmp: \(String(cString: strerror(errno)))", status: 1) }
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
        result.replay = replayCommand(r.name, seed: r.seed)
        result.message = report.messages.joined(separator: "\n")
        result.process = report.processes.first ?? ""
        result.blocked = report.blocked
        result.schedule = report.schedule ?? ""
        result.pair = report.pair ?? ""
        if let replay = report.replay { result.replay = replay }
        switch report.outcome {
        case .ok? where exit == 0:
            result.status = .passed
        case .skipped?:
            result.status = .skipped
        case .timeout?:
            result.message = "timed out after \(fmt(options.timeout)) s; what each process was doing:"
        case .deadlock?:
            result.message = "deadlock: every process was blocked, and none could wake another:"
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
            case .failed:
                print("not ok \(number) - \(r.name)")
                print("  ---")
                print("  message: \(yaml(r.message))")
                if !r.process.isEmpty { print("  process: \(yaml(r.process))") }
                print("  seed: \(r.seed)")
                if options.repetitions > 1 { print("  run: \(r.run)") }
                if !r.schedule.isEmpty { print("  schedule: \(yaml(r.schedule))") }
                if !r.pair.isEmpty { print("  critical_pair: \(yaml(r.pair))") }
                print("  replay: \(yaml(r.replay))")
                if !r.blocked.isEmpty {
                    print("  blocked:")
                    for b in r.blocked { print("    - \(yaml(b))") }
                }
                print("  ...")
            }
        } else {
            let time = String(format2(r.seconds)) + " s"
            switch r.status {
            case .passed: print("PASS  \(r.name) (\(time))")
            case .skipped: print("SKIP  \(r.name): \(oneLine(r.message))")
            case .failed:
                print("FAIL  \(r.name) (\(time))" + (options.repetitions > 1 ? ", on run \(r.run) of \(options.repetitions)" : ""))
                for line in r.message.split(separator: "\n", omittingEmptySubsequences: false) { print("      \(line)") }
                if !r.process.isEmpty { print("      in \(r.process)") }
                for b in r.blocked { print("        \(b)") }
                if !r.schedule.isEmpty { print("      schedule: \(r.schedule)") }
                if !r.pair.isEmpty { print("      critical pair: \(r.pair)") }
                // What the test printed, without ipcplay's own report (shown above).
                let output = r.output.split(separator: "\n").filter { line in
                    !(line.hasPrefix("ipcplay: error in") || line.hasPrefix("ipcplay: timeout:") || line.hasPrefix("ipcplay: deadlock:")
                      || line.hasPrefix("stack traceback:") || line.hasPrefix("\t") || line.hasPrefix("  "))
                }
                if !output.isEmpty {
                    print("      output\(output.count > 30 ? " (last 30 lines)" : ""):")
                    for line in output.suffix(30) { print("      | \(line)") }
                }
                print("      replay: \(r.replay)")
            }
        }
        fflushStdout()
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
        let skipped = results.filter { $0.status == .skipped }.count
        let total = results.reduce(0) { $0 + $1.seconds }
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites tests=\"\(results.count)\" failures=\"\(failures)\" skipped=\"\(skipped)\" time=\"\(format2(total))\">\n"
        x += "  <testsuite name=\"ipcplay\" tests=\"\(results.count)\" failures=\"\(failures)\" skipped=\"\(skipped)\" errors=\"0\" time=\"\(format2(total))\">\n"
        x += "    <properties><property name=\"seed\" value=\"\(seed)\"/></properties>\n"
        for r in results {
            let classname = r.name.split(separator: "/").dropLast().joined(separator: ".")
            x += "    <testcase name=\"\(xml(r.name))\" classname=\"\(xml(classname.isEmpty ? "tests" : classname))\" time=\"\(format2(r.seconds))\">\n"
            switch r.status {
            case .passed: break
            case .skipped: x += "      <skipped message=\"\(xml(oneLine(r.message)))\"/>\n"
            case .failed:
                var body = r.message
                if !r.blocked.isEmpty { body += "\n" + r.blocked.joined(separator: "\n") }
                if !r.schedule.isEmpty { body += "\nschedule: \(r.schedule)" }
                if !r.pair.isEmpty { body += "\ncritical pair: \(r.pair)" }
                body += "\nseed: \(r.seed)\nreplay: \(r.replay)"
                x += "      <failure message=\"\(xml(oneLine(r.message)))\" type=\"failure\">\(xml(body))</failure>\n"
                x += "      <system-out>\(xml(r.output))</system-out>\n"
            }
            x += "    </testcase>\n"
        }
        x += "  </testsuite>\n</testsuites>\n"
        guard let f = fopen(path, "w") else {
            throw CommandFailure(message: "cannot write the JUnit report \(path): \(String(cString: strerror(errno)))", status: 1)
        }
        fputs(x, f)
        fclose(f)
    }
}

/// Wall time for the runner's own bookkeeping.
enum MonotonicSeconds {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func sleep(_ s: Double) {
        var ts = timespec(tv_sec: Int(s), tv_nsec: Int((s - Double(Int(s))) * 1e9))
        nanosleep(&ts, nil)
    }
}

func fflushStdout() { Runtime.flushOutput() }
