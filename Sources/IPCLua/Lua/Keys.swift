import CLua
import CLuaShim

/// Field names compared by identity: Lua interns short strings, so a key is one of ours
/// exactly when its string object is the one made here (no Swift string is built).
/// The strings are kept alive in the registry.
/// (They are kept in the bindings' execution context, `LuaExecution.keys`.)
enum Keys {
    static var value: UnsafeRawPointer? { LuaExecution.current.keys.value }
    static var name: UnsafeRawPointer? { LuaExecution.current.keys.name }
    static var typecode: UnsafeRawPointer? { LuaExecution.current.keys.typecode }
    static var pid: UnsafeRawPointer? { LuaExecution.current.keys.pid }
    static var daemon: UnsafeRawPointer? { LuaExecution.current.keys.daemon }
    static var exitcode: UnsafeRawPointer? { LuaExecution.current.keys.exitcode }
    static var parties: UnsafeRawPointer? { LuaExecution.current.keys.parties }
    static var nWaiting: UnsafeRawPointer? { LuaExecution.current.keys.nWaiting }
    static var broken: UnsafeRawPointer? { LuaExecution.current.keys.broken }

    /// Interns the keys in `s` (once per Lua state).
    static func intern(_ s: LuaState) throws(LuaRaise) {
        try s.newTable()
        func make(_ text: String) throws(LuaRaise) -> UnsafeRawPointer? {
            try s.push(text)
            let p = lua_topointer(s.L, -1)
            try s.rawSet(-2, index: Int64(s.rawLength(-2) + 1))
            return p
        }
        LuaExecution.current.keys = InternedKeys(
            value: try make("value"), name: try make("name"), typecode: try make("typecode"), pid: try make("pid"),
            daemon: try make("daemon"), exitcode: try make("exitcode"), parties: try make("parties"),
            nWaiting: try make("n_waiting"), broken: try make("broken"))
        try s.setField(ipc_lua_registryindex(), "ipc.keys")
    }
}

extension LuaState {
    /// The identity of the key at `i` (strings only; nil otherwise).
    @inline(__always)
    func key(_ i: Int32) -> UnsafeRawPointer? {
        lua_type(L, i) == LUA_TSTRING ? lua_topointer(L, i) : nil
    }

    /// In a custom `__index` (object at 1, key at 2, methods as upvalue 2): pushes the
    /// method named by the key and returns true, or pushes nothing and returns false.
    @inline(__always)
    func pushMethod() -> Bool {
        pushValue(2)
        if lua_rawget(L, ipc_lua_upvalueindex(2)) != LUA_TNIL { return true }
        pop()
        return false
    }
}
