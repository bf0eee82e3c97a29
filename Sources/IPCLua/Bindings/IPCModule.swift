import CLua
import CLuaShim
import IPCCore
import IPCRuntime

/// The `ipc` module: its functions, its types, and their registration in a Lua state.
/// Adding a primitive touches three places: the core (IPCCore), its bindings file (its
/// type's methods and its constructor, each declared once), and the two lists below.
public enum IPCModule {
    static let functions: [Function] = ProcessBindings.functions + PipeBindings.functions + QueueBindings.functions
        + ValueBindings.functions + SyncBindings.functions + WaitBindings.functions

    static let types: [LuaType] = [ProcessBindings.type, PipeBindings.type, QueueBindings.type]
        + ValueBindings.types + SyncBindings.types + SocketBindings.types

    /// The calls that are fields, and the runtime's own: declared here, at module open,
    /// so that every call site has the same id in every process of every run (a fork
    /// server prepares the module once, before its runs).
    static let fieldSites: [CallSite] = [
        CallSite.processStart, CallSite.processEnd, CallSite.join,
        ValueBindings.valueRead.site, ValueBindings.valueWrite.site, ValueBindings.arrayRead.site, ValueBindings.arrayWrite.site,
        ProcessBindings.exitcodeRead.site, SyncBindings.barrierNWaiting.site, SyncBindings.barrierBroken.site,
    ]

    /// Registers the types and pushes the module table.
    public static func open(_ s: LuaState) throws(LuaRaise) {
        _ = fieldSites
        try Keys.intern(s)
        for type in types { try Bindings.register(type, in: s) }
        try s.newTable(hash: Int32(functions.count + 4))
        for f in functions {
            let entry = f.erased()
            try Bindings.push(entry, s)
            try s.setField(-2, entry.name)
        }
        try s.push("ipcplay " + Version.string)
        try s.setField(-2, "_VERSION")
        try s.newTable(hash: Int32(SocketBindings.functions.count))
        for f in SocketBindings.functions {
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
