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
