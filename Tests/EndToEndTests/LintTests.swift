import Foundation
import Testing

/// All the Lua of the repository (scripts/, tests/, the test fixtures, types/) passes
/// luacheck with the root's .luacheckrc: no warning, no error.
@Suite("Lint")
struct LintTests {
    @Test(.enabled(if: OutsideTools.luacheck, "luacheck is not installed (apt-get install lua-check)"))
    func luacheckReportsNothing() throws {
        let root = Ipcplay.packageRoot.path
        let r = try Ipcplay.shell("cd '\(root)' && luacheck --codes --no-color .")
        #expect(r.status == 0, "luacheck --codes .:\n\(r.output)")
    }
}
