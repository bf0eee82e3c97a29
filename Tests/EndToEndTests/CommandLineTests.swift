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
