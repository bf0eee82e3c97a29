import Foundation
import Testing

/// Every `tests/*_test.lua` scenario passes under `ipcplay test` (which also fails a test
/// that hangs, deadlocks, or leaves an uncaught error in a child nobody joined).
@Suite("Lua scenarios in tests/, under ipcplay test")
struct ScenarioTests {
    static let scenarios: [String] = {
        let dir = Ipcplay.packageRoot.appendingPathComponent("tests")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix("_test.lua") }.sorted()
    }()

    @Test(arguments: scenarios)
    func scenarioPasses(_ name: String) throws {
        // A hang still fails; the bound only has to outlast the longest scenario on a
        // loaded CI machine (leaks_test's 10,000 spawns took 105-141 s at load 15).
        let timeout = 300 * Ipcplay.slowdown
        let r = try Ipcplay.run(["test", "--timeout", "\(timeout)", "tests/\(name)"], limit: Double(timeout + 80))
        #expect(!r.hung, "\(name) hung: \(r.combined)")
        #expect(r.status == 0 && r.stdout.hasSuffix("1 passed, 0 failed\n"), "\(name): \(r.combined)")
    }

    /// The example scripts (those that need no outside peer), with their sleeps scaled.
    @Test func exampleScriptsPassUnderTheRunner() throws {
        let dir = Ipcplay.packageRoot.appendingPathComponent("scripts")
        let scripts = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".lua") && !$0.hasPrefix("unix_") }.sorted().map { "scripts/\($0)" }
        #expect(scripts.count >= 9)
        let r = try Ipcplay.run(["test", "--time-scale", "0.01", "--timeout", "60", "--jobs", "2"] + scripts, limit: 200)
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout.hasSuffix("\(scripts.count) passed, 0 failed\n"), "\(r.stdout)")
    }
}
