import CLua
import CLuaShim
import IPCCore
import IPCRuntime

/// The metatables of this process's Lua state, by kind. An object's box holds its kind's
/// (its tag, written when it is made; forked children share it), and a userdata is
/// recognised by that tag, never by its metatable, which a script can change: a check
/// costs a length and a few pointer comparisons, no string lookup, no reference counting.
enum Metatables {
    /// (A plain array in C: a Swift global made by a closure costs a once-check per read.)
    static var pointers: UnsafeMutablePointer<UnsafeRawPointer?> { ipc_metatables_of_kinds() }

    /// The kind whose metatable is `mt`, if any.
    @inline(__always)
    static func kind(of mt: UnsafeRawPointer?) -> ObjectKind? {
        guard let mt else { return nil }
        var i = 0
        while let kind = ObjectKind(rawValue: i) {
            if pointers[i] == mt { return kind }
            i += 1
        }
        return nil
    }
}

/// Objects that describe themselves for `tostring`: "<kind name details>".
protocol LuaDescribable: AnyObject {
    var luaDescription: String { get }
}

/// A Lua-visible object: a Swift object the runtime's gate knows, that describes itself,
/// and that the C fast paths may use.
protocol LuaObject: GateObject, LuaDescribable {
    var fastAccess: FastAccess { get }
}

/// What the C fast paths use of an object, copied into its box (`ipc_box` in ipc_fast.c)
/// when it is pushed: its shared memory (nil: they never read it), and its descriptors: a
/// connection's read and write ends and their directions, a queue's eventfd as `fdOut`;
/// -1 for none.
struct FastAccess {
    var shared: UnsafeMutableRawPointer? = nil
    var fdIn: Int32 = -1, fdOut: Int32 = -1, directionIn: Int32 = -1, directionOut: Int32 = -1
}

/// The one class of every ipc object a script holds: its core object (IPCCore's
/// `SharedLock`, `MessageQueue`, ...), its ref, and what the bindings keep beside it in
/// this process (`Local`: a queue closed here, an event wait's start; `Void` for most
/// kinds). Each bindings file makes its kind's boxes with a convenience `init` that says
/// what the fast paths read and how the object describes itself.
/// (Its parameters carry no protocol requirement: the metadata of `Boxed<SharedLock, Void>`
/// is then made without a search of every loaded library's conformance records, which
/// would cost start-up time and pages.)
final class Boxed<Core: AnyObject, Local>: LuaObject {
    let core: Core
    /// Its ref for the gate (a process's changes with its name: its binding sets it).
    var ref: ObjectRef
    var local: Local
    let fastAccess: FastAccess
    /// `tostring`: "<kind name details>" (a function of the kind, not of the object).
    let describe: (Core, ObjectRef, Local) -> String

    init(_ core: Core, ref: ObjectRef, local: Local, fastAccess: FastAccess = FastAccess(),
         describe: @escaping (Core, ObjectRef, Local) -> String) {
        self.core = core
        self.ref = ref
        self.local = local
        self.fastAccess = fastAccess
        self.describe = describe
    }

    var luaDescription: String { describe(core, ref, local) }
}

/// Boxing of Swift objects in Lua full userdata: the userdata holds one retained
/// reference; `__gc` releases it (in each process, for its own copy).
enum LuaObjects {
    static let collect: ipc_swift_function = { L in
        // Only an ipc object's box holds an object (this metamethod may have been given
        // to another userdata with `debug.setmetatable`).
        guard ipc_lua_objecttag(L, 1) != nil, let ud = lua_touserdata(L, 1) else { return 0 }
        if let p = ud.load(as: UnsafeMutableRawPointer?.self) {
            ud.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
            Unmanaged<AnyObject>.fromOpaque(p).release()
        }
        return 0
    }

    static let toString: ipc_swift_function = { L in
        luaEntry(L) { s throws(LuaRaise) in
            guard ipc_lua_objecttag(s.L, 1) != nil else {
                try s.push("<not an ipc object>")
                return 1
            }
            guard let ud = lua_touserdata(s.L, 1), let p = ud.load(as: UnsafeMutableRawPointer?.self) else {
                try s.push("<ipc object (collected)>")
                return 1
            }
            let object = Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue()
            try s.push((object as? LuaDescribable)?.luaDescription ?? "<ipc object>")
            return 1
        }
    }
}

extension LuaState {
    /// Pushes `object` as a userdata of `kind`.
    func push<Object: LuaObject>(object: Object, kind: ObjectKind) throws(LuaRaise) {
        // The box (ipc_box in ipc_fast.c): the Swift object, then what the C fast paths use.
        var block: UnsafeMutableRawPointer?
        try check(ipc_lua_p_newuserdata(L, ipc_lua_box_size(), &block))
        let f = object.fastAccess
        ipc_lua_box_init(block, f.shared, Metatables.pointers[kind.rawValue], f.fdIn, f.fdOut, f.directionIn, f.directionOut)
        do { try check(ipc_lua_p_getmetatable(L, kind.typeName)) } catch { pop(); throw error }
        if kind.hasOwnMetatable {
            do { try check(ipc_lua_p_setownmetatable(L)) } catch { pop(); throw error }
        } else {
            lua_setmetatable(L, -2)
        }
        // Retained only once nothing can fail: the userdata's __gc releases it.
        block!.storeBytes(of: Unmanaged.passRetained(object).toOpaque(), as: UnsafeMutableRawPointer?.self)
    }

    /// The kind of the ipc object at `i`, if it is one (a live or collected userdata): its
    /// box's tag (ipc_lua_objecttag), which a script cannot forge as it can a metatable.
    @inline(__always)
    public func kind(_ i: Int32) -> ObjectKind? { Metatables.kind(of: ipc_lua_objecttag(L, i)) }

    /// True when the value at `i` is a userdata of `kind`.
    @inline(__always)
    func isObject(_ i: Int32, of kind: ObjectKind) -> Bool {
        guard let tag = ipc_lua_objecttag(L, i) else { return false }
        return tag == Metatables.pointers[kind.rawValue]
    }

    /// The Swift object of the userdata at `i` (nil once collected); the caller has checked
    /// its kind.
    @inline(__always)
    func boxed<T: AnyObject>(_ i: Int32, as: T.Type) -> T? {
        guard let ud = lua_touserdata(L, i), let p = ud.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        return unsafeDowncast(Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue(), to: T.self)
    }

    /// The object at `i` when it is a live userdata of `kind`.
    @inline(__always)
    public func object<T: AnyObject>(_ i: Int32, _ kind: ObjectKind, as: T.Type) -> T? {
        guard isObject(i, of: kind) else { return nil }
        return boxed(i, as: T.self)
    }

    /// The object at `i` when it is a live userdata of any kind of `family`.
    @inline(__always)
    public func object<T: AnyObject>(_ i: Int32, family: ObjectKind, as: T.Type) -> T? {
        guard let k = kind(i), k.family == family else { return nil }
        return boxed(i, as: T.self)
    }

    /// "a queue", "an integer", "a string": what the value at `i` is, for messages.
    public func describe(_ i: Int32) -> String {
        let what = kind(i)?.label ?? typeName(i)
        return ("aeiou".contains(what.first ?? "x") ? "an " : "a ") + what
    }

    /// The label of the ipc object at `i`, if it is one.
    public func ipcLabel(_ i: Int32) -> String? { kind(i)?.label }

    /// The error for a wrong `self`.
    func wrongSelf(_ label: String, _ method: String) -> LuaRaise {
        LuaRaise("\(label):\(method): expected a \(label) as self, got \(describeBare(1)) (call it with ':', as x:\(method)(...))")
    }

    func describeBare(_ i: Int32) -> String { kind(i)?.label ?? typeName(i) }

    /// The error for a field read or written on what is not a `label` (`v.value` on a
    /// userdata given a value's metatable, say).
    func wrongFieldSelf(_ call: String, _ label: String) -> LuaRaise {
        let article = "aeiou".contains(label.first ?? "x") ? "an" : "a"
        return LuaRaise("\(call): expected \(article) \(label), got \(describeBare(1))")
    }
}

extension ObjectKind {
    /// Kinds whose every object has its own metatable (ipc_lua_p_setownmetatable): a
    /// value's methods then resolve from a table, while `v.value` is served in C.
    var hasOwnMetatable: Bool { self == .value }
}
