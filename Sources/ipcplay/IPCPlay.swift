import ArgumentParser
import Glibc
import IPCCore
import IPCLua
import IPCRuntime

/// `ipcplay`: a scriptable IPC playground.
@main
struct IPCPlay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipcplay",
        abstract: "Run Lua scenarios of inter-process communication, each worker in its own process.",
        discussion: """
            `ipcplay SCRIPT [ARGS...]` is short for `ipcplay run SCRIPT [ARGS...]`. \
            Options go before the script; what follows it is the script's own arguments.

            Exit status: 0 the script ended without error; 1 it raised (explore, replay, \
            step: a schedule failed); 2 usage error; 124 --timeout fired, or a deadlock; \
            130 interrupted (Ctrl-C); 143 terminated (SIGTERM).

            Shell completion: ipcplay --generate-completion-script bash|zsh|fish.
            """,
        version: Version.string,
        subcommands: [Run.self, Test.self, Explore.self, Replay.self, Step.self],
        defaultSubcommand: Run.self
    )

    /// Parses and runs; a usage error is one line on stderr and status 2.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // `ipcplay SCRIPT [ARGS...]` has no options to parse: run it without building the
        // parser, whose reflection costs more than the rest of start-up together.
        if let script = arguments.first, !script.hasPrefix("-"), script.hasSuffix(".lua") {
            do { try checkReadable(script) } catch {
                Runtime.writeStderr("ipcplay: \(error.message)\n")
                Glibc.exit(error.status)
            }
            var options = RunOptions()
            options.scriptName = script
            Glibc.exit(ScriptRunner.run(script: script, arguments: Array(arguments.dropFirst()), options: options))
        }
        if arguments.first == "help", arguments.count > 1, !subcommands.contains(arguments[1]) {
            Runtime.writeStderr("ipcplay: help: no command '\(arguments[1])' (the commands: run, test, explore, replay, step)\n")
            Glibc.exit(ScriptRunner.Status.usage)
        }
        var parsed = rewritingTimeline(arguments)
        do {
            // `ipcplay --option ...` is `run`'s option (the default command): parsed as
            // `run`, an unknown one is named as such, not taken for a missing script.
            if let first = parsed.first, first.hasPrefix("-"), !rootOptions.contains(first) { parsed.insert("run", at: 0) }
            var command = try parseAsRoot(parsed)
            try command.run()
        } catch let failure as CommandFailure {
            Runtime.writeStderr("ipcplay: \(failure.message)\n")
            Glibc.exit(failure.status)
        } catch {
            if exitCode(for: error) == .success {
                // --help, --version, --generate-completion-script
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            var text = message(for: error)
            if text.hasPrefix("Missing expected argument") {
                // The parser names a missing script before an unknown option: with a script
                // in place, an option it does not know is what is named.
                do { _ = try parseAsRoot(parsed + ["script.lua"]) } catch {
                    let other = message(for: error)
                    if other.hasPrefix("Unknown option") || other.hasPrefix("Missing value") { text = other }
                }
            }
            let line = text.split(separator: "\n").first.map(String.init) ?? text
            let command = parsed.first.flatMap { subcommands.contains($0) && $0 != "help" && $0 != "run" ? $0 + " " : nil } ?? ""
            Runtime.writeStderr("ipcplay: \(line) (see 'ipcplay \(command)--help')\n")
            Glibc.exit(ScriptRunner.Status.usage)
        }
    }

    /// `--timeline=FILE.svg` is an optional value, which the parser does not have: it
    /// becomes `--timeline-file FILE.svg`, among ipcplay's own options only (those before
    /// the script; the script's arguments are its own).
    static func rewritingTimeline(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var own = true
        var skip = false
        for (i, a) in arguments.enumerated() {
            if skip { skip = false; continue }
            if own && a.hasPrefix("--timeline=") {
                out += ["--timeline-file", String(a.dropFirst("--timeline=".count))]
                continue
            }
            // `--timeout -1`: a negative number is the option's value (which validation
            // then refuses by name), not an unknown option.
            if own && a.hasPrefix("--") && !a.contains("="), i + 1 < arguments.count, isNegativeNumber(arguments[i + 1]) {
                out.append(a + "=" + arguments[i + 1])
                skip = true
                continue
            }
            out.append(a)
            // The first argument that is not an option (nor a subcommand, nor an option's
            // value) is the script: ipcplay's options end there.
            if own && !a.hasPrefix("-") && i > 0 && !arguments[i - 1].hasPrefix("--") && !subcommands.contains(a) {
                own = false
            }
        }
        return out
    }

    static let subcommands: Set<String> = ["run", "test", "explore", "replay", "step", "help"]

    /// The options of `ipcplay` itself, not of a command.
    static let rootOptions: Set<String> = ["-h", "--help", "--version", "--generate-completion-script", "--experimental-dump-help"]

    static func isNegativeNumber(_ s: String) -> Bool {
        s.count > 1 && s.hasPrefix("-") && Double(s.dropFirst()) != nil
    }
}

/// A failure of the command line itself, with its exit status.
struct CommandFailure: Error {
    var message: String
    var status: Int32 = ScriptRunner.Status.usage
}

/// The options every scenario run takes: `run`'s, which `test` applies to each test.
struct ScenarioOptions: ParsableArguments {
    @Option(help: ArgumentHelp("End the run after this many seconds, reporting what every process is blocked in (run: exit 124; test: the test fails; default 30 in test).", valueName: "seconds"))
    var timeout: Double?

    @Option(name: .customLong("time-scale"), help: ArgumentHelp("Multiply every ipc.sleep by this factor.", valueName: "factor"))
    var timeScale: Double = 1

    @Option(help: ArgumentHelp("Add a random delay of up to this many milliseconds before each IPC call.", valueName: "ms"))
    var jitter: Double = 0

    @Option(help: ArgumentHelp("Run under a controlled scheduler: one process at a time, virtual time, reproducible from --seed (random or pct).", valueName: "strategy"))
    var sched: SchedStrategy?

    @Option(help: ArgumentHelp("Seed of the jitter or of the controlled scheduler, and of math.random (chosen and printed when absent).", valueName: "n"))
    var seed: UInt64?

    @Option(help: ArgumentHelp("With --sched pct: the depth of the bugs to aim at (default 3).", valueName: "d"))
    var depth: Int?

    @Option(name: .customLong("max-steps"), help: ArgumentHelp("With --sched: a run longer than this many steps fails as a livelock.", valueName: "n"))
    var maxSteps: Int?

    @Option(name: .customLong("memory-limit"), help: ArgumentHelp("Let each process's Lua heap hold at most this many MiB, and one message take as much: past it, the script gets 'not enough memory'.", valueName: "MB"))
    var memoryLimit: Int?

    @Flag(name: .customLong("no-deadlock-check"), help: "Do not end the run when every process is blocked for ever.")
    var noDeadlockCheck = false

    @OptionGroup var crashes: KillOptions

    @Option(help: .hidden)
    var report: String?

    @Flag(name: .customLong("strict-child-errors"), help: .hidden)
    var strictChildErrors = false

    func validate() throws {
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
        if !(timeScale >= 0) || !timeScale.isFinite { throw ValidationError("--time-scale must be a non-negative number") }
        if !(jitter >= 0) || !jitter.isFinite { throw ValidationError("--jitter must be a non-negative number of milliseconds") }
        if sched != nil && jitter > 0 { throw ValidationError("--jitter and --sched do not go together (a controlled run has no timing to shake)") }
        if let depth, !(1...PCTScheduler.maxDepth).contains(depth) { throw ValidationError("--depth must be between 1 and \(PCTScheduler.maxDepth)") }
        if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps must be at least 1") }
        if let memoryLimit, !(1...Self.largestMemoryLimit).contains(memoryLimit) {
            throw ValidationError("--memory-limit must be between 1 and \(Self.largestMemoryLimit) MiB")
        }
    }

    /// Refuses the options that only mean something with a controlled scheduler when
    /// there is none (`what` names what would give one).
    func checkControlled(by what: String, controlled: Bool) throws {
        guard !controlled else { return }
        if depth != nil { throw ValidationError("--depth goes with \(what)") }
        if maxSteps != nil { throw ValidationError("--max-steps goes with \(what)") }
    }

    /// The run's options; `announce` prints a chosen seed.
    func runOptions(recording: RecordingOptions, announce: Bool = true) -> RunOptions {
        var o = RunOptions()
        o.timeout = timeout
        o.timeScale = timeScale
        o.jitterMilliseconds = jitter
        o.seed = seed
        o.deadlockCheck = !noDeadlockCheck
        o.reportPath = report
        o.strictChildErrors = strictChildErrors
        o.tracePath = recording.trace
        o.timeline = recording.wantsTimeline
        o.timelineSVG = recording.timelineFile
        o.eventsPath = recording.timelineEvents
        o.memoryLimit = memoryLimit.map { $0 << 20 }
        if (jitter > 0 || sched != nil) && seed == nil {
            o.seed = UInt64.random(in: 1...999_999_999)
            if announce {
                let what = sched != nil ? "--sched \(sched!.rawValue)" : "jitter up to \(jitter) ms"
                Runtime.writeStderr("ipcplay: \(what), seed \(o.seed!) (replay with --seed \(o.seed!))\n")
            }
        }
        if let sched {
            let kind: ScheduleOptions.Kind = sched == .pct ? .pct(depth: depth ?? 3, steps: Self.pctSteps) : .random
            o.schedule = ScheduleOptions(kind: kind, seed: o.seed!, maxSteps: maxSteps)
            // One run has no earlier run to measure: its kill rate defaults to one over the
            // steps PCT's change points are drawn from.
            o.schedule?.kills = ScheduleOptions.Kills(count: crashes.kill, rate: crashes.killRate ?? 1 / Double(Self.pctSteps))
        }
        return o
    }

    /// A single `--sched pct` run places its change points among this many choices.
    static let pctSteps = 100

    /// 1 TiB, in MiB.
    static let largestMemoryLimit = 1 << 20
}

/// What a run records of its IPC calls: a trace, a timeline (`run` and `replay`).
struct RecordingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write a Chrome/Perfetto trace of every IPC call (see docs/tracing.md).", valueName: "file"))
    var trace: String?

    @Flag(help: "Print a swim-lane timeline of the run when it ends (--timeline=FILE.svg writes it as SVG).")
    var timeline = false

    @Option(name: .customLong("timeline-file"), help: .hidden)
    var timelineFile: String?

    /// Where to record the run's events for a timeline drawn by another process
    /// (`ipcplay test --timeline=FOLDER` draws each test's once it has ended).
    @Option(name: .customLong("timeline-events"), help: .hidden)
    var timelineEvents: String?

    /// A timeline is asked for, printed or as SVG.
    var wantsTimeline: Bool { timeline || timelineFile != nil }

    /// Found out before anything runs: a timeline file is SVG (named .svg), and both
    /// files can be written.
    func validate() throws {
        if let timelineFile {
            if !timelineFile.lowercased().hasSuffix(".svg") {
                throw ValidationError("--timeline=\(timelineFile): the timeline is written as SVG; name the file .svg")
            }
            try checkWritableFile(timelineFile, option: "--timeline")
        }
        if let trace { try checkWritableFile(trace, option: "--trace") }
    }
}

/// The script a command runs, and the script's own arguments: everything after it.
struct ScriptArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("The Lua script.", valueName: "script"), completion: .file(extensions: ["lua"]))
    var script: String

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Arguments for the script.", valueName: "args"))
    var arguments: [String] = []
}

enum SchedStrategy: String, ExpressibleByArgument, CaseIterable, Sendable { case random, pct }

extension IPCPlay {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a scenario script; it sees its arguments in `arg`, as with `lua`."
        )

        @OptionGroup var options: ScenarioOptions

        @OptionGroup var recording: RecordingOptions

        @OptionGroup var target: ScriptArguments

        func validate() throws {
            if options.depth != nil && options.sched != .pct { throw ValidationError("--depth goes with --sched pct") }
            try options.checkControlled(by: "--sched", controlled: options.sched != nil)
            if options.crashes.kill > 0 && options.sched == nil { throw ValidationError("--kill needs --sched (kills are decisions of a controlled schedule)") }
        }

        func run() throws {
            try checkReadable(target.script)
            var runOptions = options.runOptions(recording: recording)
            runOptions.scriptName = target.script
            let status = ScriptRunner.run(script: target.script, arguments: target.arguments, options: runOptions)
            Glibc.exit(status)
        }
    }
}

/// A missing or unreadable script is a usage error (status 2), reported in one line.
func checkReadable(_ path: String) throws(CommandFailure) {
    var st = stat()
    if stat(path, &st) != 0 {
        throw CommandFailure(message: "cannot open \(path): \(Syscall.lastError)")
    }
    if st.st_mode & S_IFMT == S_IFDIR {
        throw CommandFailure(message: "cannot run \(path): it is a directory")
    }
    if access(path, R_OK) != 0 {
        throw CommandFailure(message: "cannot open \(path): \(Syscall.lastError)")
    }
}

/// A file an option will write: refused now, before anything runs, when it cannot be
/// (ValidationError: one line, exit 2). The check opens it without truncating it; a file
/// that did not exist is removed again.
func checkWritableFile(_ path: String, option: String) throws {
    var st = stat()
    let existed = stat(path, &st) == 0
    if existed && st.st_mode & S_IFMT == S_IFDIR { throw ValidationError("\(option) \(path): it is a folder") }
    let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw ValidationError("\(option) \(path): cannot write it: \(Syscall.lastError)") }
    close(fd)
    if !existed { unlink(path) }
}

/// A folder an option will write files into: made when missing (one level), refused
/// when it cannot be written.
func checkWritableFolder(_ path: String, option: String) throws {
    var st = stat()
    if stat(path, &st) != 0 {
        if mkdir(path, 0o755) != 0 { throw ValidationError("\(option) \(path): cannot make the folder: \(Syscall.lastError)") }
    } else if st.st_mode & S_IFMT != S_IFDIR {
        throw ValidationError("\(option) \(path): not a folder (one file per test goes into it)")
    }
    if access(path, W_OK) != 0 { throw ValidationError("\(option) \(path): cannot write into it: \(Syscall.lastError)") }
}
