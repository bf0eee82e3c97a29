import Foundation
import Testing

/// Issue 24, lines in context: a call made in a helper is shown with the line that called
/// the helper, in explore's report, its interleaving, deadlock reports and step prompts.
@Suite("Locations name the line a helper was called from")
struct LocationTests {
    static let fixture = "Tests/EndToEndTests/Fixtures/helper_locks.lua"

    @Test func exploreNamesTheCallersOfAHelper() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-locations")
        defer { try? FileManager.default.removeItem(at: dir) }
        let reportPath = dir.appendingPathComponent("report").path
        let r = try Ipcplay.run(["explore", "--seed", "1", "--report", reportPath, Self.fixture])
        #expect(r.status == 1, "\(r.combined)")
        let f = Self.fixture
        // Both processes wait in the helper's second acquire, each called from its own line.
        #expect(r.stdout.contains("MainProcess: blocked in lock:acquire on a, at \(f):9 (from \(f):21)"), "\(r.stdout)")
        #expect(r.stdout.contains("Process-1: blocked in lock:acquire on b, at \(f):9 (from \(f):18)"), "\(r.stdout)")
        // The deadlock is explained by its cycle (the locks' owners).
        #expect(r.stdout.contains("\ncycle: MainProcess waits for a held by Process-1; Process-1 waits for b held by MainProcess\n"), "\(r.stdout)")
        // The interleaving: lines of the script itself, short.
        #expect(r.stdout.contains("@9 (from 21) (waits)") && r.stdout.contains("@9 (from 18) (waits)"), "\(r.stdout)")
        // Calls in the main chunk and in a process's own function have no caller.
        #expect(r.stdout.contains("ipc.spawn  @17\n") || r.stdout.contains("ipc.spawn  @17 "), "\(r.stdout)")
        #expect(!r.stdout.contains("@17 (from"), "\(r.stdout)")
    }

    @Test func aStepPromptNamesTheCaller() throws {
        let r = try Ipcplay.run(["step", Self.fixture], stdin: "2\n")
        let f = Self.fixture
        #expect(r.stdout.contains("lock:acquire on a  (\(f):8 (from \(f):18))"), "\(r.stdout)")
        #expect(r.stdout.contains("lock:acquire on b  (\(f):8 (from \(f):21))"), "\(r.stdout)")
    }

    @Test func aPlainRunsDeadlockReportNamesTheCaller() throws {
        // The main process holds the lock and joins the child, which waits for it: a
        // deadlock in every run, the child waiting in the helper called from line 6.
        let script = try Ipcplay.writeScript("""
            local ipc = require("ipc")
            local m = ipc.lock({name = "m"})
            local function atomic_begin() m:acquire() end
            atomic_begin()
            local p = ipc.spawn(function()
              atomic_begin()
            end)
            p:join()
            """)
        defer { Ipcplay.removeScript(script) }
        let r = try Ipcplay.run(["run", "--timeout", "20", script.path])
        #expect(r.stderr.contains("blocked in lock:acquire on m") && r.stderr.contains("s.lua:3 (from \(script.path):6)"), "\(r.combined)")
        #expect(r.stderr.contains("blocked in process:join") && r.stderr.contains("s.lua:8\n"), "\(r.combined)")
    }
}
