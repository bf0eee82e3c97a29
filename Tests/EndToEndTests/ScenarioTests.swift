import Foundation
import Testing

/// Every `tests/*_test.lua` scenario passes (its script asserts what it checks).
@Suite("Lua scenarios in tests/")
struct ScenarioTests {
    static let scenarios: [String] = {
        let dir = Ipcplay.packageRoot.appendingPathComponent("tests")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix("_test.lua") }.sorted()
    }()

    @Test(arguments: scenarios)
    func scenarioPasses(_ name: String) throws {
        let r = try Ipcplay.run(["run", "tests/\(name)"], limit: 180)
        #expect(!r.hung, "\(name) hung: \(r.combined)")
        #expect(r.status == 0, "\(name): \(r.combined)")
    }
}
