import Foundation
import Testing

@Suite("Command line: statuses and error output")
struct CommandLineTests {
    @Test func versionAndHelp() throws {
        let v = try Ipcplay.run(["--version"])
        #expect(v.status == 0)
        #expect(v.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
        let h = try Ipcplay.run(["--help"])
        #expect(h.status == 0)
        #expect(h.stdout.contains("run"))
        #expect(h.stdout.contains("SCRIPT") || h.stdout.contains("script"))
    }

    @Test func missingScriptIsOneLineAndStatus2() throws {
        let r = try Ipcplay.run(["no/such/script.lua"])
        #expect(r.status == 2)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.combined)")
        #expect(r.stderr.contains("no/such/script.lua"))
        let r2 = try Ipcplay.run(["run", "no/such/script.lua"])
        #expect(r2.status == 2)
    }

    @Test func badOptionIsOneLineAndStatus2() throws {
        for args in [["--bogus", "x.lua"], ["run", "--timeout", "abc", "x.lua"], ["run", "--time-scale", "-1", "x.lua"], ["run"]] {
            let r = try Ipcplay.run(args)
            #expect(r.status == 2, "\(args): \(r.combined)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.combined)")
            #expect(r.stdout.isEmpty)
        }
    }

    /// Issue 30, point 7: each gets one line naming the option and the reason, status 2,
    /// before anything runs (the script would print, and leave a file).
    @Test func everyUsageErrorNamesTheOptionBeforeAnythingRuns() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-usage")
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("s.lua")
        let marker = dir.appendingPathComponent("ran")
        try "io.open(\"\(marker.path)\", \"w\"):close() print(\"ran\")\n".write(to: script, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["--bogus"], "Unknown option '--bogus'"),
            (["--bogus", script.path], "Unknown option '--bogus'"),
            (["--timeout", "-1", script.path], "--timeout must be a positive number"),
            (["--jitter", "-5", script.path], "--jitter must be a non-negative number"),
            (["run", "--depth", "5", script.path], "--depth goes with --sched pct"),
            (["run", "--sched", "random", "--depth", "2", script.path], "--depth goes with --sched pct"),
            (["run", "--max-steps", "5", script.path], "--max-steps goes with --sched"),
            (["--timeline=\(dir.path)/out.png", script.path], "--timeline=\(dir.path)/out.png: the timeline is written as SVG"),
            (["--timeline=/nonexistent/dir/t.svg", script.path], "--timeline /nonexistent/dir/t.svg: cannot write it"),
            (["--trace", "/nonexistent/dir/t.json", script.path], "--trace /nonexistent/dir/t.json: cannot write it"),
            (["test", "--timeline", dir.path], "--timeline in test needs a folder"),
            (["test", "--tap-version", "13", dir.path], "--tap-version goes with --tap"),
            (["test", "--depth", "2", dir.path], "--depth goes with --sched or --explore"),
            (["test", "--explore", "5", "--trace", dir.path, dir.path], "--trace and --timeline record one run"),
            (["test", "--explore", "5", "--explore-failures", "5", dir.path], "--explore-failures re-runs a plain run's failures"),
            (["test", "--trace", "/nonexistent/dir/traces", dir.path], "--trace /nonexistent/dir/traces: cannot make the folder"),
        ]
        for (args, message) in cases {
            let r = try Ipcplay.run(args)
            #expect(r.status == 2, "\(args): \(r.combined)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(message), "\(args): \(r.combined)")
            #expect(r.stdout.isEmpty, "\(args): \(r.combined)")
            #expect(!FileManager.default.fileExists(atPath: marker.path), "\(args) ran the script")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/out.png"))
        let help = try Ipcplay.run(["help", "nosuch"])
        #expect(help.status == 2 && help.stderr == "ipcplay: help: no command 'nosuch' (the commands: run, test, explore, replay, step)\n", "\(help.combined)")
        #expect(help.stdout.isEmpty)
        // `test --help` says what a timeout does in a test: it fails the test (status 1).
        let testHelp = try Ipcplay.run(["test", "--help"])
        let words = testHelp.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("1 some test failed (a timeout or a deadlock fails its test)"), "\(testHelp.stdout)")
        #expect(!words.contains("(exit 124)"), "\(testHelp.stdout)")
    }

    @Test func syntaxErrorNamesTheLine() throws {
        let r = try Ipcplay.runLua("local x = 1\nx = = 2\n")
        #expect(r.status == 1)
        #expect(r.stderr.contains("scenario.lua:2:"), "\(r.combined)")
    }

    @Test func runtimeErrorHasPositionAndTraceback() throws {
        let r = try Ipcplay.runLua("local function f()\n  error('kaboom')\nend\nf()\n")
        #expect(r.status == 1)
        #expect(r.stderr.contains("scenario.lua:2: kaboom"), "\(r.combined)")
        #expect(r.stderr.contains("stack traceback:"))
        #expect(r.stderr.contains("MainProcess"))
        #expect(r.stderr.contains("scenario.lua:4: in main chunk"))
    }

    @Test func bindingErrorsNameTheCallerLine() throws {
        let r = try Ipcplay.runLua("local q = ipc.queue()\nq:put(print)\n")
        #expect(r.status == 1)
        #expect(r.stderr.contains("scenario.lua:2: queue:put: cannot send a function (at value)"), "\(r.combined)")
    }

    @Test func argumentsAndModulesBesideTheScript() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipcplay-mod-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "return {answer = 42}\n".write(to: dir.appendingPathComponent("helper.lua"), atomically: true, encoding: .utf8)
        try """
            local h = require("helper")
            local ipc2 = require("ipc")
            assert(ipc2 == ipc, "require('ipc') is the global ipc")
            print(h.answer, arg[0], #arg, arg[1], arg[2], select("#", ...), ...)
            """.write(to: dir.appendingPathComponent("main.lua"), atomically: true, encoding: .utf8)
        // Run from elsewhere: the module is found beside the script, not in the cwd.
        let script = dir.appendingPathComponent("main.lua").path
        let r = try Ipcplay.run([script, "one", "--two"], directory: URL(fileURLWithPath: "/"))
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout == "42\t\(script)\t2\tone\t--two\t2\tone\t--two\n")
        let r2 = try Ipcplay.run(["run", "--time-scale", "0.5", script, "x"], directory: URL(fileURLWithPath: "/"))
        #expect(r2.stdout == "42\t\(script)\t1\tx\tnil\t1\tx\n", "\(r2.combined)")
    }

    @Test func osExitInTheMainScriptSetsTheStatus() throws {
        let r = try Ipcplay.runLua("local p = ipc.spawn(function() ipc.sleep(0.2) print('child done') end)\nos.exit(5)\n")
        #expect(r.status == 5)
        #expect(r.stdout == "child done\n", "the host still waits for non-daemon children: \(r.combined)")
    }
}

/// The command line's manners: options before the script only, exit statuses in --help,
/// completion, a JUnit file that cannot be written, colour and width in a terminal.
@Suite("Command line: manners")
struct CommandLineMannersTests {
    @Test func whatFollowsTheScriptIsTheScripts() throws {
        let r = try Ipcplay.runLua("print(table.concat(arg, ' '))", args: ["--timeline=x.svg", "--timeout", "3", "--trace", "t.json"])
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout == "--timeline=x.svg --timeout 3 --trace t.json\n", "\(r.combined)")
        // Before the script, the same spelling is ipcplay's.
        let svg = FileManager.default.temporaryDirectory.appendingPathComponent("ipcplay-\(UUID().uuidString.prefix(8)).svg")
        defer { try? FileManager.default.removeItem(at: svg) }
        let own = try Ipcplay.runLua("print(#arg)", options: ["--timeline=\(svg.path)"])
        #expect(own.status == 0 && own.stdout == "0\n", "\(own.combined)")
        #expect(FileManager.default.fileExists(atPath: svg.path))
    }

    /// Issue 30, point 8: a worker's title in `ps` is `ipcplay: NAME (script.lua)` and its
    /// name in `top` is NAME, so that the run's processes can be told apart.
    @Test func workersHaveTitlesThatNameThem() throws {
        let r = try Ipcplay.runLua("""
            local function me()
              local f = io.open("/proc/self/cmdline", "rb"); local s = f:read("a"); f:close()
              local c = io.open("/proc/self/comm"); local comm = c:read("l"); c:close()
              return (s:match("^[^%z]*")), comm
            end
            local p = ipc.process{name = "alpha", target = function() print(me()) end}
            p:start(); p:join()
            ipc.spawn(function() print(me()) end):join()
            print(me())
            """)
        #expect(r.status == 0, "\(r.combined)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(r.combined)")
        #expect(lines.first == "ipcplay: alpha (scenario.lua)\talpha", "\(r.stdout)")
        #expect(lines.dropFirst().first == "ipcplay: Process-2 (scenario.lua)\tProcess-2", "\(r.stdout)")
        #expect(lines.last?.hasSuffix("ipcplay\tipcplay") == true, "the host keeps its command line: \(r.stdout)")
    }

    @Test func helpListsEveryExitStatus() throws {
        let h = try Ipcplay.run(["--help"])
        let words = Set(h.stdout.split(whereSeparator: { " \n;,.()".contains($0) }).map(String.init))
        for status in ["0", "1", "2", "124", "130", "143"] {
            #expect(words.contains(status), "exit status \(status) in --help:\n\(h.stdout)")
        }
        #expect(h.stdout.contains("--generate-completion-script"), "\(h.stdout)")
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionCompletesLuaScripts(shell: String) throws {
        let r = try Ipcplay.run(["--generate-completion-script", shell])
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout.contains("lua"), "the script argument completes .lua files:\n\(r.stdout.prefix(400))")
        for command in ["explore", "replay", "step", "test"] { #expect(r.stdout.contains(command)) }
    }

    @Test func aJUnitFileThatCannotBeWrittenIsAClearError() throws {
        let r = try Ipcplay.run(["test", "--junit", "/nonexistent/dir/report.xml", "tests/output_test.lua"])
        #expect(r.status == 2, "\(r.combined)")
        #expect(r.stderr.hasPrefix("ipcplay: cannot write the JUnit report /nonexistent/dir/report.xml: "), "\(r.combined)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.combined)")
        #expect(!r.stdout.contains("PASS"), "found out before running the tests: \(r.stdout)")
    }

    /// A terminal of 70 columns through tmux: the timeline fills its width and is
    /// coloured, unless NO_COLOR or TERM=dumb says otherwise.
    @Test(.needsTmux, arguments: [("", true), ("NO_COLOR=1", false), ("TERM=dumb", false)])
    func timelineColourAndWidthInATerminal(environment: String, coloured: Bool) throws {
        let session = "ipcplay-tl-\(UUID().uuidString.prefix(8))"
        func tmux(_ args: String) throws -> String { try Ipcplay.tmux(args) }
        let command = "env -u NO_COLOR \(environment) COLUMNS= \(Ipcplay.binary) run --timeline --time-scale 0.01 scripts/producer_consumer.lua; echo DONE; sleep 30"
        _ = try tmux("new-session -d -s \(session) -x 70 -y 200 -c \(Ipcplay.packageRoot.path) '\(command)' </dev/null >/dev/null 2>&1")
        defer { _ = try? tmux("kill-session -t \(session)") }
        var screen = ""
        for _ in 0..<200 {
            screen = try tmux("capture-pane -p -e -S - -t \(session)")
            if screen.contains("DONE") { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(screen.contains("DONE"), "\(screen)")
        let picture = screen.split(separator: "\n").drop { !$0.contains("MainProcess") }
        #expect(picture.count > 10, "\(screen)")
        #expect(screen.contains("\u{1B}[3") == coloured, "colour escapes with '\(environment)': \(screen.prefix(600))")
        let plain = picture.map { $0.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression) }
        let widest = plain.map(\.count).max() ?? 0
        #expect(widest <= 70 && widest > 60, "the timeline fits the terminal's 70 columns: \(widest)\n\(plain.joined(separator: "\n"))")
    }
}
