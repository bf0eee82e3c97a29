import CLua
import CLuaShim
import IPCCore

/// Every Lua-visible type of the module. A userdata is recognised by the identity of its
/// metatable, remembered per type when the type is registered (forked children share
/// it): a check costs a pointer comparison, no string lookup and no reference counting.
public enum TypeID: Int, CaseIterable, Sendable {
    case process, connection, queue, joinableQueue, value, array, semaphore, boundedSemaphore
    case lock, rlock, event, condition, barrier, server, socket, dgram

    /// Types that share a Swift class and methods.
    public enum Family: Sendable { case process, connection, queue, scalars, semaphore, lock, event, condition, barrier, socket }

    public var family: Family {
        switch self {
        case .process: return .process
        case .connection: return .connection
        case .queue, .joinableQueue: return .queue
        case .value, .array: return .scalars
        case .semaphore, .boundedSemaphore: return .semaphore
        case .lock, .rlock: return .lock
        case .event: return .event
        case .condition: return .condition
        case .barrier: return .barrier
        case .server, .socket, .dgram: return .socket
        }
    }

    /// The metatables of this process's Lua state, by type.
    nonisolated(unsafe) static let metatables: UnsafeMutablePointer<UnsafeRawPointer?> = {
        let p = UnsafeMutablePointer<UnsafeRawPointer?>.allocate(capacity: TypeID.allCases.count)
        p.initialize(repeating: nil, count: TypeID.allCases.count)
        return p
    }()

    /// The type whose metatable is `mt`, if any.
    @inline(__always)
    static func of(metatable mt: UnsafeRawPointer?) -> TypeID? {
        guard let mt else { return nil }
        for i in 0..<allCases.count where metatables[i] == mt { return TypeID(rawValue: i) }
        return nil
    }
}

/// A Lua-visible type: one metatable (registered under `metatableName`) with `__index`,
/// `__gc` and `__tostring`, and a method table listed LuaSocket-style.
public final class LuaType: @unchecked Sendable {
    public let id: TypeID
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
    public init(_ id: TypeID, _ metatableName: String, label: String, methods: [(name: String, function: ipc_swift_function)]) {
        self.id = id
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
        TypeID.metatables[type.id.rawValue] = lua_topointer(L, mt)
        s.newTable(hash: Int32(type.methods.count + type.guardedCalls.count))
        let methods = s.top
        for (name, fn) in type.methods {
            // Upvalue 2 names the type, for the error when `self` is wrong.
            s.push(Int64(type.id.rawValue))
            s.push(function: fn, upvalues: 1)
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
        s.setTop(mt - 1)
    }
}

extension TypeID {
    /// The name in error messages and `tostring`.
    public var label: String {
        switch self {
        case .process: return "process"
        case .connection: return "connection"
        case .queue: return "queue"
        case .joinableQueue: return "joinable_queue"
        case .value: return "value"
        case .array: return "array"
        case .semaphore: return "semaphore"
        case .boundedSemaphore: return "bounded_semaphore"
        case .lock: return "lock"
        case .rlock: return "rlock"
        case .event: return "event"
        case .condition: return "condition"
        case .barrier: return "barrier"
        case .server: return "server"
        case .socket: return "socket"
        case .dgram: return "dgram"
        }
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

    /// The type of the ipc object at `i`, if it is one (a live or collected userdata).
    @inline(__always)
    public func ipcType(_ i: Int32) -> TypeID? {
        guard lua_type(L, i) == LUA_TUSERDATA, lua_getmetatable(L, i) != 0 else { return nil }
        let mt = lua_topointer(L, -1)
        pop()
        return TypeID.of(metatable: mt)
    }

    /// The Swift object of the userdata at `i` (nil once collected); the caller has checked
    /// its type.
    @inline(__always)
    func boxed<T: AnyObject>(_ i: Int32, as: T.Type) -> T? {
        guard let ud = lua_touserdata(L, i), let p = ud.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        return unsafeDowncast(Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue(), to: T.self)
    }

    /// The object at `i` when it is a live userdata of type `id`.
    @inline(__always)
    public func object<T: AnyObject>(_ i: Int32, _ id: TypeID, as: T.Type) -> T? {
        guard lua_type(L, i) == LUA_TUSERDATA, lua_getmetatable(L, i) != 0 else { return nil }
        let mt = lua_topointer(L, -1)
        pop()
        guard mt == TypeID.metatables[id.rawValue] else { return nil }
        return boxed(i, as: T.self)
    }

    /// The object at `i` when it is a live userdata of any type of `family`.
    @inline(__always)
    public func object<T: AnyObject>(_ i: Int32, family: TypeID.Family, as: T.Type) -> T? {
        guard let t = ipcType(i), t.family == family else { return nil }
        return boxed(i, as: T.self)
    }

    /// `self` of a method call, or the error that explains how to call it.
    @inline(__always)
    public func receiver<T: AnyObject>(_ id: TypeID, _ call: String, as: T.Type) throws(LuaRaise) -> T {
        if let o = object(1, id, as: T.self) { return o }
        throw wrongSelf(call)
    }

    /// `self` of a method shared by a family of types.
    @inline(__always)
    public func receiver<T: AnyObject>(family: TypeID.Family, _ call: String, as: T.Type) throws(LuaRaise) -> T {
        if let o = object(1, family: family, as: T.self) { return o }
        throw wrongSelf(call)
    }

    /// The error for a wrong `self`, named after the type the method was taken from.
    func wrongSelf(_ call: String) -> LuaRaise {
        let method = call.split(separator: ":").last.map(String.init) ?? call
        var label = call.split(separator: ":").first.map(String.init) ?? call
        if lua_type(L, ipc_lua_upvalueindex(2)) == LUA_TNUMBER, let id = TypeID(rawValue: Int(lua_tointegerx(L, ipc_lua_upvalueindex(2), nil))) {
            label = id.label
        }
        return LuaRaise("\(label):\(method): expected a \(label) as self, got \(typeName(1)) (call it with ':', as x:\(method)(...))")
    }

    /// "a queue", "an integer", "a string": what the value at `i` is, for messages.
    public func describe(_ i: Int32) -> String {
        let what = ipcLabel(i) ?? typeName(i)
        return ("aeiou".contains(what.first ?? "x") ? "an " : "a ") + what
    }

    /// The label of the ipc object at `i`, if it is one.
    public func ipcLabel(_ i: Int32) -> String? { ipcType(i)?.label }
}
