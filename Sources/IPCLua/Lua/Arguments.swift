import CLua
import IPCCore
import IPCRuntime

/// Argument checks that report misuse as `LuaRaise` with the call's name first.
extension LuaState {
    /// A timeout argument: nil/absent waits forever; a number of seconds (0 or negative:
    /// do not block; NaN is an error); `false` does not block and `true` blocks, as
    /// multiprocessing's `block` flag.
    /// (`call` is only read for an error: most calls pass it as a site's computed name.)
    public func deadline(_ i: Int32, _ call: @autoclosure () -> String) throws(LuaRaise) -> Deadline {
        switch type(i) {
        case LUA_TNONE, LUA_TNIL:
            return .never
        case LUA_TNUMBER:
            let v = number(i)!
            if v.isNaN { throw LuaRaise("\(call()): timeout must be a number of seconds, not NaN") }
            if v == .infinity { return .never }
            return .after(seconds: v)
        case LUA_TBOOLEAN:
            return boolean(i) ? .never : .now
        default:
            throw LuaRaise("\(call()): timeout must be a number of seconds, got \(typeName(i))")
        }
    }

    /// An integer argument (a float with an integral value is accepted).
    public func integerArgument(_ i: Int32, _ call: String, _ what: String) throws(LuaRaise) -> Int64 {
        if let v = integer(i) { return v }
        if let d = number(i) {
            if d.isFinite, d == d.rounded(), let v = Int64(exactly: d) { return v }
            throw LuaRaise("\(call): \(what) must be an integer, got \(d.isNaN ? "NaN" : String(d))")
        }
        throw LuaRaise("\(call): \(what) must be an integer, got \(typeName(i))")
    }

    public func optionalInteger(_ i: Int32, _ call: String, _ what: String, default value: Int64) throws(LuaRaise) -> Int64 {
        isNoneOrNil(i) ? value : try integerArgument(i, call, what)
    }

    public func numberArgument(_ i: Int32, _ call: String, _ what: String) throws(LuaRaise) -> Double {
        guard let v = number(i) else { throw LuaRaise("\(call): \(what) must be a number, got \(typeName(i))") }
        if v.isNaN { throw LuaRaise("\(call): \(what) must be a number, not NaN") }
        return v
    }

    public func stringArgument(_ i: Int32, _ call: String, _ what: String) throws(LuaRaise) -> UnsafeRawBufferPointer {
        guard let b = bytes(i) else { throw LuaRaise("\(call): \(what) must be a string, got \(typeName(i))") }
        return b
    }

    /// The optional options table at `i` (`{name = ...}`); returns the name given, if any.
    public func nameOption(_ i: Int32, _ call: String) throws(LuaRaise) -> String? {
        if isNoneOrNil(i) { return nil }
        guard type(i) == LUA_TTABLE else { throw LuaRaise("\(call): options must be a table, got \(typeName(i))") }
        defer { pop() }
        switch try rawField(i, "name") {
        case LUA_TNIL: return nil
        case LUA_TSTRING: return string(-1)
        default: throw LuaRaise("\(call): options.name must be a string, got \(typeName(-1))")
        }
    }
}

extension LuaState {
    /// Checks that the options table at `i` has only the keys `allowed`: an unknown key
    /// is an error naming the call and the key (a key that a port from Python would
    /// expect to work silently does something else, or nothing).
    func checkOptions(_ i: Int32, _ call: String, allowed: [String], parameters: [String]) throws(LuaRaise) {
        guard lua_checkstack(L, 3) != 0 else { throw LuaRaise("\(call): not enough memory") }
        let t = lua_absindex(L, i)
        lua_pushnil(L)
        while lua_next(L, t) != 0 {
            let key = type(-2) == LUA_TSTRING ? string(-2) : nil
            pop()
            guard let key else {
                let shown = type(-1) == LUA_TNUMBER ? "[\(shortText(-1) ?? "?")]" : "a \(typeName(-1)) key"
                pop()
                throw LuaRaise("\(call): options must have string keys, got \(shown) (it takes \(allowed.joined(separator: ", ")))")
            }
            if allowed.contains(key) { continue }
            pop()
            var message = "\(call): unknown option \(key) (it takes \(allowed.joined(separator: ", ")))"
            if let habit = OptionHabits.hint(call, key) {
                message += "; \(habit)"
            } else if let n = parameters.firstIndex(of: key) {
                message += "; \(key) is argument \(n + 1): \(call)(\(parameters.joined(separator: ", ")))"
            }
            throw LuaRaise(message)
        }
    }
}

/// How to write here what a Python habit puts in an options table.
enum OptionHabits {
    static func hint(_ call: String, _ key: String) -> String? {
        switch (call, key) {
        case ("ipc.value", "lock"), ("ipc.array", "lock"):
            return "Python's lock=False is how values work here (each read and write of x.value or x[i] is atomic by itself); "
                + "a compound update takes the object's own lock with x:lock() or x:with_lock(fn); a lock shared by several objects has no equivalent"
        case ("ipc.process", "kwargs"):
            return "Lua has no keyword arguments: pass a table in args"
        case (_, "ctx"), (_, "context"):
            return "there is one start method here (fork): no context is taken"
        case (_, "block"):
            return "there is no block flag: a timeout of 0 (or false) does not block"
        default:
            return nil
        }
    }
}

extension LuaState {
    /// A new object's identity: its name (the options table's `name` at `i`, or the next
    /// default name of its kind) and a fresh run-wide id.
    func newObject(_ kind: ObjectKind, nameOption i: Int32, _ call: String, key: UInt32? = nil) throws(LuaRaise) -> ObjectRef {
        newObject(kind, name: try nameOption(i, call), key: key)
    }

    /// A new object's identity, named `name` or by default.
    func newObject(_ kind: ObjectKind, name: String?, key: UInt32? = nil) -> ObjectRef {
        let name = name ?? RunBoard.current?.nextName(kind) ?? kind.namePrefix
        return ObjectRef(id: RunBoard.current?.nextObjectID() ?? 0, kind: kind, name: name, key: key)
    }
}
