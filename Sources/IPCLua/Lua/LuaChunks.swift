import CLua
import CLuaShim
import IPCCore

/// Parts of the module written in Lua (pure Lua logic that calls back into methods:
/// `condition:wait_for`, the `ipc.test` helpers), compiled once per Lua state.
enum LuaChunks {
    /// `clock()`: the run's clock in seconds (virtual under a controlled scheduler). For
    /// the Lua parts of the module only: reading it is not a call of the contract.
    static let clock: ipc_swift_function = { L in
        lua_pushnumber(L, MonotonicClock.seconds())
        return 1
    }

    /// Loads `source` as the chunk `name`, calls it with `arguments` (pushed by the
    /// caller, on the stack top) and leaves its one result. False (nothing left, the
    /// arguments popped) when it fails, which would be a bug of the module.
    @discardableResult
    static func push(_ source: String, name: String, _ s: LuaState, arguments: Int32 = 0) throws(LuaRaise) -> Bool {
        var src = source
        let loaded = src.withUTF8 { buf in
            buf.withMemoryRebound(to: CChar.self) { ipc_lua_loadbuffer(s.L, $0.baseAddress, $0.count, name) }
        }
        guard loaded == LUA_OK else { s.pop(1 + arguments); return false }
        try s.push(function: clock)
        if arguments > 0 { lua_rotate(s.L, -(arguments + 2), 2) }  // chunk, clock, then the arguments
        guard ipc_lua_pcall(s.L, arguments + 1, 1, 0) == LUA_OK else { s.pop(); return false }
        return true
    }
}
