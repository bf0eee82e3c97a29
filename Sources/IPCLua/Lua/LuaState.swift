import CLua
import CLuaShim
import IPCCore

/// A Lua error raised by a binding: the trampoline raises `message` after the Swift
/// frame has returned.
public struct LuaRaise: Error {
    public var message: String
    /// False while the message does not name the call yet (a protected API call that
    /// failed: "not enough memory"); the gate puts the call's name in front.
    public var named = true
    public init(_ message: String) { self.message = message }

    /// A protected API call failed: its message ("not enough memory", or what a hook
    /// raised in it), unnamed.
    @inline(never)
    static func protectedCallFailed() -> LuaRaise {
        var e = LuaRaise(String(cString: ipc_lua_lasterror()))
        e.named = false
        return e
    }
}

/// A `lua_State*` seen from Swift. API calls that cannot raise a Lua error are made
/// directly (`lua_type`, `lua_to*x`, `lua_rawget*`, pushing numbers and booleans); calls
/// that allocate (strings, tables, userdata, closures, stores into tables) can raise a
/// memory error and run finalizers, so they go through CLuaShim's protected helpers and
/// throw `LuaRaise` when they fail; anything else that could raise (metamethods,
/// `luaL_check*`, `lua_error`) stays in C.
public struct LuaState {
    public let L: OpaquePointer

    @inlinable public init(_ L: OpaquePointer) { self.L = L }

    // MARK: - Stack

    @inlinable public var top: Int32 { lua_gettop(L) }
    @inlinable public func setTop(_ n: Int32) { lua_settop(L, n) }
    @inlinable public func pop(_ n: Int32 = 1) { ipc_lua_pop(L, n) }
    @inlinable public func absolute(_ i: Int32) -> Int32 { lua_absindex(L, i) }
    @inlinable public func ensureStack(_ n: Int32) -> Bool { lua_checkstack(L, n) != 0 }
    @inlinable public func pushValue(_ i: Int32) { lua_pushvalue(L, i) }

    // MARK: - Types

    @inlinable public func type(_ i: Int32) -> Int32 { lua_type(L, i) }
    @inlinable public func isNoneOrNil(_ i: Int32) -> Bool { lua_type(L, i) <= LUA_TNIL }

    /// The type name as Lua's `type()` says it, but "integer"/"float" for numbers.
    public func typeName(_ i: Int32) -> String {
        let t = lua_type(L, i)
        if t == LUA_TNUMBER { return lua_isinteger(L, i) != 0 ? "integer" : "number" }
        if t == LUA_TNONE { return "no value" }
        if t == LUA_TTHREAD { return "coroutine" }
        return String(cString: lua_typename(L, t))
    }

    @inlinable public func isInteger(_ i: Int32) -> Bool { lua_isinteger(L, i) != 0 }

    /// The integer at `i`, only when it is an integer-subtype number.
    @inlinable
    public func integer(_ i: Int32) -> Int64? {
        guard lua_type(L, i) == LUA_TNUMBER, lua_isinteger(L, i) != 0 else { return nil }
        return lua_tointegerx(L, i, nil)
    }

    /// The number at `i` (integer or float) as a Double.
    @inlinable
    public func number(_ i: Int32) -> Double? {
        guard lua_type(L, i) == LUA_TNUMBER else { return nil }
        return lua_tonumberx(L, i, nil)
    }

    @inlinable public func boolean(_ i: Int32) -> Bool { lua_toboolean(L, i) != 0 }

    /// The bytes of the string at `i` (no number conversion), valid while it is on the stack.
    @inlinable
    public func bytes(_ i: Int32) -> UnsafeRawBufferPointer? {
        guard lua_type(L, i) == LUA_TSTRING else { return nil }
        var len = 0
        guard let p = lua_tolstring(L, i, &len) else { return nil }
        return UnsafeRawBufferPointer(start: p, count: len)
    }

    public func string(_ i: Int32) -> String? {
        guard let b = bytes(i) else { return nil }
        return String(decoding: b, as: UTF8.self)
    }

    // MARK: - Pushing values that need no memory

    @inlinable public func pushNil() { lua_pushnil(L) }
    @inlinable public func push(_ b: Bool) { lua_pushboolean(L, b ? 1 : 0) }
    @inlinable public func push(_ i: Int64) { lua_pushinteger(L, i) }
    @inlinable public func push(_ i: Int) { lua_pushinteger(L, Int64(i)) }
    @inlinable public func push(_ d: Double) { lua_pushnumber(L, d) }

    // MARK: - Calls that allocate (protected)

    /// Throws the error of a failed protected call.
    @inline(__always)
    func check(_ status: Int32) throws(LuaRaise) {
        if status != LUA_OK { throw LuaRaise.protectedCallFailed() }
    }

    /// Pushes a string (one of up to IPC_LUA_SMALL_STRING bytes without a protected call:
    /// see ipc_lua_pushsmall).
    public func push(_ s: String) throws(LuaRaise) {
        var s = s
        let status = s.withUTF8 { buf in
            ipc_lua_pushsmall(L, UnsafeRawPointer(buf.baseAddress)?.assumingMemoryBound(to: CChar.self), buf.count)
        }
        try check(status)
    }

    public func push(bytes p: UnsafeRawPointer?, count: Int) throws(LuaRaise) {
        try check(ipc_lua_pushsmall(L, p?.assumingMemoryBound(to: CChar.self), count))
    }

    /// Pushes `nil, reason`: the contract's way of reporting "timeout", "closed", ...
    public func fail(_ reason: String) throws(LuaRaise) -> Int32 {
        pushNil()
        do { try push(reason) } catch { pop(); throw error }
        return 2
    }

    public func newTable(array: Int32 = 0, hash: Int32 = 0) throws(LuaRaise) {
        try check(ipc_lua_p_createtable(L, array, hash))
    }

    /// t[key] = value for the table at `t`, the value on top of the stack (popped).
    public func setField(_ t: Int32, _ key: String) throws(LuaRaise) {
        var key = key
        let status = key.withUTF8 { k in ipc_lua_p_setfield(L, t, UnsafeRawPointer(k.baseAddress)?.assumingMemoryBound(to: CChar.self), k.count) }
        try check(status)
    }

    /// Pushes t[key] (raw) for the table at `t`; returns its type.
    @discardableResult
    public func rawField(_ t: Int32, _ key: String) throws(LuaRaise) -> Int32 {
        var key = key
        var type: Int32 = LUA_TNIL
        let status = key.withUTF8 { k in ipc_lua_p_getfield(L, t, UnsafeRawPointer(k.baseAddress)?.assumingMemoryBound(to: CChar.self), k.count, &type) }
        try check(status)
        return type
    }

    @inlinable public func rawLength(_ i: Int32) -> Int { Int(lua_rawlen(L, i)) }
    @inlinable @discardableResult public func rawGet(_ t: Int32, index n: Int64) -> Int32 { lua_rawgeti(L, t, n) }
    /// t[n] = value for the table at `t`, the value on top of the stack (popped).
    public func rawSet(_ t: Int32, index n: Int64) throws(LuaRaise) { try check(ipc_lua_p_rawseti(L, t, n)) }

    /// Pushes the registry's `_LOADED` table (package.loaded).
    public func pushLoadedTable() throws(LuaRaise) {
        try rawField(ipc_lua_registryindex(), "_LOADED")
    }

    /// The "file:line" of the innermost Lua function on the call stack, or "?"; and the
    /// line its function was called from when it is a function of the script's (a helper):
    /// `f.lua:16 (from f.lua:42)`.
    public func callLocation() -> String {
        var src = [CChar](repeating: 0, count: 256)
        var callerSrc = [CChar](repeating: 0, count: 256)
        var line: Int32 = 0
        var callerLine: Int32 = 0
        guard ipc_lua_calllocation(L, 1, &src, src.count, &line, &callerSrc, callerSrc.count, &callerLine) != 0 else { return "?" }
        func text(_ chars: [CChar]) -> String {
            let end = chars.firstIndex(of: 0) ?? chars.count
            return String(decoding: chars[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let here = "\(text(src)):\(line)"
        return callerLine > 0 ? "\(here) (from \(text(callerSrc)):\(callerLine))" : here
    }

    /// Pushes a Swift binding as a Lua function (through the raising trampoline); the
    /// `upvalues` values on the stack top are popped.
    public func push(function: ipc_swift_function, upvalues: Int32 = 0) throws(LuaRaise) {
        try check(ipc_lua_pushswift(L, function, upvalues))
    }
}

/// Runs a binding: its thrown `LuaRaise` becomes the error value, raised by the C
/// trampoline once this Swift frame has returned.
@inline(__always)
public func luaEntry(_ L: OpaquePointer?, _ body: (LuaState) throws(LuaRaise) -> Int32) -> Int32 {
    do {
        return try body(LuaState(L!))
    } catch {
        handOver(error)
        return IPC_LUA_RAISE
    }
}

/// Gives the trampoline the message to raise (it pushes it, in C).
@inline(never)
func handOver(_ error: LuaRaise) {
    var message = error.message
    message.withUTF8 { m in ipc_lua_setraise(UnsafeRawPointer(m.baseAddress)?.assumingMemoryBound(to: CChar.self), m.count) }
}
