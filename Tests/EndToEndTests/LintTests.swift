import Foundation
import Testing

/// The Lua of the repository (scripts/, tests/ and the LuaLS definitions in types/) passes
/// luacheck with the root's .luacheckrc: no warning, no error.
@Suite("Lint")
struct LintTests {
    @Test(.enabled(if: OutsideTools.luacheck, "luacheck is not installed (apt-get install lua-check)"))
    func luacheckReportsNothing() throws {
        let root = Ipcplay.packageRoot.path
        let r = try Ipcplay.shell("cd '\(root)' && luacheck --codes --no-color scripts tests types")
        #expect(r.status == 0, "luacheck --codes scripts tests types:\n\(r.output)")
    }
}
