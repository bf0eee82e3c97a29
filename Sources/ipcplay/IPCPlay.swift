import ArgumentParser
import Glibc
import IPCLua
import IPCRuntime

/// `ipcplay`: a scriptable IPC playground.
@main
struct IPCPlay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipcplay",
        abstract: "Run Lua scenarios of inter-process communication, each worker in its own process.",
        discussion: """
            `ipcplay SCRIPT [ARGS...]` is short for `ipcplay run SCRIPT [ARGS...]`.
            Exit status: 0 the script ended without error; 1 it raised; 2 usage error;
            124 --timeout fired; 130 interrupted.
            """,
        version: Version.string,
        subcommands: [Run.self, Test.self],
        defaultSubcommand: Run.self
    )

    /// Parses and runs; a usage error is one line on stderr and status 2.
    static func main() {
        // `--timeline=FILE.svg` is an optional value, which the parser does not have.
        let arguments = CommandLine.arguments.dropFirst().flatMap { a -> [String] in
            a.hasPrefix("--timeline=") ? ["--timeline-file", String(a.dropFirst("--timeline=".count))] : [a]
        }
        // `ipcplay SCRIPT [ARGS...]` has no options to parse: run it without building the
        // parser, whose reflection costs more than the rest of start-up together.
        if let script = arguments.first, !script.hasPrefix("-"), script.hasSuffix(".lua") {
            do { try checkReadable(script) } catch {
                Runtime.writeStderr("ipcplay: \(error.message)\n")
                Glibc.exit(error.status)
            }
            Glibc.exit(ScriptRunner.run(script: script, arguments: Array(arguments.dropFirst()), options: RunOptions()))
        }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let failure as CommandFailure {
            Runtime.writeStderr("ipcplay: \(failure.message)\n")
            Glibc.exit(failure.status)
        } catch {
            if exitCode(for: error) == .success {
                // --help, --version
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            let text = message(for: error)
            let line = text.split(separator: "\n").first.map(String.init) ?? text
            Runtime.writeStderr("ipcplay: \(line) (see 'ipcplay --help')\n")
            Glibc.exit(ScriptRunner.Status.usage)
        }
    }
}

/// A failure of the command line itself, with its exit status.
struct CommandFailure: Error {
    var message: String
    var status: Int32 = ScriptRunner.Status.usage
}

/// The options every scenario run takes (`run`, and `test` for each test).
struct ScenarioOptions: ParsableArguments {
    @Option(help: ArgumentHelp("End the whole run after this many seconds, reporting what every process is blocked in (exit 124).", valueName: "seconds"))
    var timeout: Double?

    @Option(name: .customLong("time-scale"), help: ArgumentHelp("Multiply every ipc.sleep by this factor.", valueName: "factor"))
    var timeScale: Double = 1

    @Option(help: ArgumentHelp("Add a random delay of up to this many milliseconds before each IPC call.", valueName: "ms"))
    var jitter: Double = 0

    @Option(help: ArgumentHelp("Seed of the jitter (chosen and printed when absent).", valueName: "n"))
    var seed: UInt64?

    @Flag(name: .customLong("no-deadlock-check"), help: "Do not end the run when every process is blocked for ever.")
    var noDeadlockCheck = false

    @Option(help: ArgumentHelp("Write a Chrome/Perfetto trace of every IPC call (see docs/tracing.md).", valueName: "file"))
    var trace: String?

    @Flag(help: "Print a swim-lane timeline of the run when it ends (--timeline=FILE.svg writes it as SVG).")
    var timeline = false

    @Option(name: .customLong("timeline-file"), help: .hidden)
    var timelineFile: String?

    @Option(help: .hidden)
    var report: String?

    @Flag(name: .customLong("strict-child-errors"), help: .hidden)
    var strictChildErrors = false

    func validate() throws {
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
        if !(timeScale >= 0) || !timeScale.isFinite { throw ValidationError("--time-scale must be a non-negative number") }
        if !(jitter >= 0) || !jitter.isFinite { throw ValidationError("--jitter must be a non-negative number of milliseconds") }
    }

    var runOptions: RunOptions {
        var o = RunOptions()
        o.timeout = timeout
        o.timeScale = timeScale
        o.jitterMilliseconds = jitter
        o.seed = seed
        o.deadlockCheck = !noDeadlockCheck
        o.reportPath = report
        o.strictChildErrors = strictChildErrors
        o.tracePath = trace
        o.timeline = timeline || timelineFile != nil
        o.timelineSVG = timelineFile
        if jitter > 0 && seed == nil {
            o.seed = UInt64.random(in: 1...999_999_999)
            Runtime.writeStderr("ipcplay: jitter up to \(jitter) ms, seed \(o.seed!) (replay with --seed \(o.seed!))\n")
        }
        return o
    }
}

extension IPCPlay {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a scenario script; it sees its arguments in `arg`, as with `lua`."
        )

        @OptionGroup var options: ScenarioOptions

        @Argument(help: ArgumentHelp("The Lua script to run.", valueName: "script"))
        var script: String

        @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Arguments for the script.", valueName: "args"))
        var arguments: [String] = []

        func run() throws {
            try checkReadable(script)
            let status = ScriptRunner.run(script: script, arguments: arguments, options: options.runOptions)
            Glibc.exit(status)
        }
    }
}

/// A missing or unreadable script is a usage error (status 2), reported in one line.
func checkReadable(_ path: String) throws(CommandFailure) {
    var st = stat()
    if stat(path, &st) != 0 {
        throw CommandFailure(message: "cannot open \(path): \(String(cString: strerror(errno)))")
    }
    if st.st_mode & S_IFMT == S_IFDIR {
        throw CommandFailure(message: "cannot run \(path): it is a directory")
    }
    if access(path, R_OK) != 0 {
        throw CommandFailure(message: "cannot open \(path): \(String(cString: strerror(errno)))")
    }
}
