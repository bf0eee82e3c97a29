import CLua
import CLuaShim
import IPCCore
import IPCRuntime

/// One bindings file of the module: the types of its kinds (methods, fields, fast-path
/// layout) and its module functions (the constructors among them). With the kinds it
/// declares (`ObjectKind.declare`), that is the registry's whole record of a primitive.
protocol Primitive {
    static var types: [LuaType] { get }
    static var functions: [Function] { get }
}

/// The `ipc` module: its functions, its types, and their registration in a Lua state.
/// Adding a primitive is its core type (IPCCore), its layout (ipc_layouts.h), and its
/// bindings file (its kinds, its type's methods and its constructor, each declared once),
/// named once in `primitives`; docs/architecture.md walks through one.
public enum IPCModule {
    /// Every bindings file, in the order their kinds are numbered.
    static let primitives: [Primitive.Type] = [
        ProcessBindings.self, PipeBindings.self, QueueBindings.self, ValueBindings.self, SyncBindings.self,
        RWLockBindings.self, SocketBindings.self, WaitBindings.self,
    ]

    static let functions: [Function] = primitives.flatMap { $0.functions }

    static let types: [LuaType] = primitives.flatMap { $0.types }

    /// The calls that are fields, and the runtime's own: declared at module open, so
    /// that every call site has the same id in every process of every run (a fork
    /// server prepares the module once, before its runs).
    static let fieldSites: [CallSite] = [CallSite.processStart, CallSite.processEnd, CallSite.join]
        + types.flatMap { $0.fieldAccesses.map(\.site) }

    /// Registers the types and pushes the module table.
    public static func open(_ s: LuaState) throws(LuaRaise) {
        _ = fieldSites
        try Keys.intern(s)
        for type in types { try Bindings.register(type, in: s) }
        let unix = functions.filter { $0.table == .unix }
        try s.newTable(hash: Int32(functions.count - unix.count + 4))
        for f in functions where f.table == .ipc {
            let entry = f.erased()
            try Bindings.push(entry, s)
            try s.setField(-2, entry.name)
        }
        try s.push("ipcplay " + Version.string)
        try s.setField(-2, "_VERSION")
        try s.newTable(hash: Int32(unix.count))
        for f in unix {
            let entry = f.erased()
            try Bindings.push(entry, s)
            try s.setField(-2, entry.name)
        }
        try s.setField(-2, "unix")
        try TestHelpers.push(s)
        try s.setField(-2, "test")
        try Pool.push(s, module: s.top)
        try s.setField(-2, "pool")
    }

    /// Makes `require("ipc")` and the global `ipc` return the module.
    public static func install(_ s: LuaState) throws(LuaRaise) {
        try open(s)
        let module = s.top
        try s.pushLoadedTable()
        s.pushValue(module)
        try s.setField(-2, "ipc")
        s.pop()
        ipc_lua_pushglobaltable(s.L)
        s.pushValue(module)
        try s.setField(-2, "ipc")
        s.setTop(module - 1)
    }
}

public enum Version {
    public static let string = "0.2.0"
}
