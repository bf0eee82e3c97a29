-- luacheck configuration: `luacheck .` reports nothing (checked by
-- Tests/EndToEndTests/LintTests.swift when luacheck is installed).
std = "lua54"

-- Build products are not ours.
exclude_files = {".build/**", "Fuzz/.build/**"}

-- `ipc` is preset as a global for short scripts (and returned by require("ipc")).
read_globals = {"ipc"}

-- types/ holds LuaLS definition files: declarations with empty bodies, which define the
-- global `ipc` and its fields, and method tables that nothing reads.
files["types"] = {
  globals = {"ipc"},
  unused_args = false,  -- parameters exist to be documented, not used
  ignore = {"241"},     -- the class tables are filled with methods and never read
}
