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
        subcommands: [Run.self],
        defaultSubcommand: Run.self
    )

    /// Parses and runs; a usage error is one line on stderr and status 2.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
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

    func validate() throws {
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
        if !(timeScale >= 0) || !timeScale.isFinite { throw ValidationError("--time-scale must be a non-negative number") }
    }

    var runOptions: RunOptions {
        var o = RunOptions()
        o.timeout = timeout
        o.timeScale = timeScale
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
func checkReadable(_ path: String) throws {
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
