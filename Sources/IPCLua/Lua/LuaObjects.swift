import CLua
import CLuaShim
import IPCCore

/// A Lua-visible type: one metatable (registered under `metatableName`) with `__index`,
/// `__gc` and `__tostring`, and a method table listed LuaSocket-style.
///
/// A userdata is recognised by the identity of its metatable, remembered when the type
/// is registered (forked children share it), which costs no string lookup.
public final class LuaType: @unchecked Sendable {
    /// The registry key of the metatable, e.g. "ipc.Queue".
    public let metatableName: String
    /// The name used in error messages and `tostring`, e.g. "queue".
    public let label: String
    public let methods: [(name: String, function: ipc_swift_function)]
    /// A custom `__index` (fields); without one, `__index` is the method table.
    public var index: ipc_swift_function?
    public var newIndex: ipc_swift_function?
    public var length: ipc_swift_function?
    public var toString: ipc_swift_function?
    /// Methods implemented in C: (name, acquire method, release method) guarded calls.
    public var guardedCalls: [(name: String, acquire: String, release: String)] = []
    /// Methods written in C (they call back into Lua).
    public var cMethods: [(name: String, function: lua_CFunction)] = []
    /// The metatable, once registered in this process's Lua state.
    var metatable: UnsafeRawPointer?

    public init(_ metatableName: String, label: String, methods: [(name: String, function: ipc_swift_function)]) {
        self.metatableName = metatableName
        self.label = label
        self.methods = methods
    }
}

/// Boxing of Swift objects in Lua full userdata: the userdata holds one retained
/// reference; `__gc` releases it (in each process, for its own copy).
enum LuaObjects {
    static let collect: ipc_swift_function = { L in
        guard let ud = lua_touserdata(L, 1) else { return 0 }
        if let p = ud.load(as: UnsafeMutableRawPointer?.self) {
            ud.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
            Unmanaged<AnyObject>.fromOpaque(p).release()
        }
        return 0
    }

    static let defaultToString: ipc_swift_function = { L in
        luaEntry(L) { s throws(LuaRaise) in
            guard let ud = lua_touserdata(s.L, 1), let p = ud.load(as: UnsafeMutableRawPointer?.self) else {
                s.push("ipc object (collected)")
                return 1
            }
            let object = Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue()
            if let named = object as? LuaDescribable { s.push(named.luaDescription) } else { s.push("ipc object") }
            return 1
        }
    }

    /// Creates the metatable of `type` in the registry. Call once per Lua state.
    static func register(_ type: LuaType, in s: LuaState) {
        let L = s.L
        _ = luaL_newmetatable(L, type.metatableName)
        let mt = s.top
        type.metatable = lua_topointer(L, mt)
        s.newTable(hash: Int32(type.methods.count + type.guardedCalls.count))
        let methods = s.top
        for (name, fn) in type.methods {
            s.push(function: fn)
            s.setField(methods, name)
        }
        for (name, fn) in type.cMethods {
            lua_pushcclosure(L, fn, 0)
            s.setField(methods, name)
        }
        for g in type.guardedCalls {
            s.rawField(methods, g.acquire)
            s.rawField(methods, g.release)
            ipc_lua_pushguardedcall(L, "\(type.label):\(g.name)")
            s.setField(methods, g.name)
        }
        if let index = type.index {
            // The custom __index gets the method table as upvalue 2.
            s.pushValue(methods)
            s.push(function: index, upvalues: 1)
            s.setField(mt, "__index")
        } else {
            s.pushValue(methods)
            s.setField(mt, "__index")
        }
        s.pushValue(methods)
        s.setField(mt, "methods")
        if let f = type.newIndex { s.push(function: f); s.setField(mt, "__newindex") }
        if let f = type.length { s.push(function: f); s.setField(mt, "__len") }
        s.push(function: type.toString ?? defaultToString)
        s.setField(mt, "__tostring")
        s.push(function: collect)
        s.setField(mt, "__gc")
        s.push(type.label)
        s.setField(mt, "__name")
        s.push(true)
        s.setField(mt, "__ipc")
        s.setTop(mt - 1)
    }
}

/// Objects that describe themselves for `tostring`.
protocol LuaDescribable: AnyObject {
    var luaDescription: String { get }
}

extension LuaState {
    /// Pushes `object` as a userdata of `type`.
    public func push(object: AnyObject, type: LuaType) {
        let ud = ipc_lua_newuserdata(L, MemoryLayout<UnsafeMutableRawPointer?>.size)!
        ud.storeBytes(of: Unmanaged.passRetained(object).toOpaque(), as: UnsafeMutableRawPointer?.self)
        _ = ipc_lua_getregisteredmetatable(L, type.metatableName)
        lua_setmetatable(L, -2)
    }

    /// The object at `i` when it is a live userdata of `type`.
    @inline(__always)
    public func object<T: AnyObject>(_ i: Int32, _ type: LuaType, as: T.Type) -> T? {
        guard lua_type(L, i) == LUA_TUSERDATA, lua_getmetatable(L, i) != 0 else { return nil }
        let mt = lua_topointer(L, -1)
        pop()
        guard mt == type.metatable, let ud = lua_touserdata(L, i),
              let p = ud.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        return unsafeDowncast(Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue(), to: T.self)
    }

    /// The object at `i` when it is a live userdata of any of `types`.
    public func object<T: AnyObject>(_ i: Int32, anyOf types: [LuaType], as: T.Type) -> T? {
        for t in types { if let o = object(i, t, as: T.self) { return o } }
        return nil
    }

    /// `self` of a method call, or the error that explains how to call it.
    @inline(__always)
    public func receiver<T: AnyObject>(_ type: LuaType, _ call: String, as: T.Type) throws(LuaRaise) -> T {
        if let o = object(1, type, as: T.self) { return o }
        throw LuaRaise("\(call): expected a \(type.label) as self, got \(typeName(1)) (call it with ':', as x:\(call.split(separator: ":").last ?? "")(...))")
    }

    /// `self` that may be any of several types sharing one Swift class.
    public func receiver<T: AnyObject>(anyOf types: [LuaType], _ call: String, as: T.Type) throws(LuaRaise) -> T {
        if let o = object(1, anyOf: types, as: T.self) { return o }
        throw LuaRaise("\(call): expected a \(types[0].label) as self, got \(typeName(1)) (call it with ':', as x:\(call.split(separator: ":").last ?? "")(...))")
    }

    /// "a queue", "an integer", "a string": what the value at `i` is, for messages.
    public func describe(_ i: Int32) -> String {
        let what = ipcLabel(i) ?? typeName(i)
        return ("aeiou".contains(what.first ?? "x") ? "an " : "a ") + what
    }

    /// The label of the ipc object at `i`, if it is one.
    public func ipcLabel(_ i: Int32) -> String? {
        guard type(i) == LUA_TUSERDATA, lua_getmetatable(L, i) != 0 else { return nil }
        defer { pop() }
        guard rawField(-1, "__ipc") == LUA_TBOOLEAN else { pop(); return nil }
        pop()
        rawField(-1, "__name")
        defer { pop() }
        return string(-1)
    }
}
