import CLua
import CLuaShim
import IPCCore
import IPCRuntime

/// The `ipc` module: its functions, its types, and their registration in a Lua state.
public enum IPCModule {
    static let functions: [(name: String, function: ipc_swift_function)] = [
        ("spawn", { luaEntry($0, ProcessBindings.spawn) }),
        ("process", { luaEntry($0, ProcessBindings.process) }),
        ("current", { luaEntry($0, ProcessBindings.current) }),
        ("sleep", { luaEntry($0, ProcessBindings.sleep) }),
        ("now", { luaEntry($0, ProcessBindings.now) }),
        ("pipe", { luaEntry($0, PipeBindings.pipe) }),
        ("queue", { luaEntry($0, QueueBindings.queue) }),
        ("joinable_queue", { luaEntry($0, QueueBindings.joinableQueue) }),
        ("value", { luaEntry($0, ValueBindings.value) }),
        ("array", { luaEntry($0, ValueBindings.array) }),
        ("semaphore", { luaEntry($0, SyncBindings.semaphore) }),
        ("bounded_semaphore", { luaEntry($0, SyncBindings.boundedSemaphore) }),
        ("lock", { luaEntry($0, SyncBindings.lock) }),
        ("rlock", { luaEntry($0, SyncBindings.rlock) }),
        ("event", { luaEntry($0, SyncBindings.event) }),
        ("condition", { luaEntry($0, SyncBindings.condition) }),
        ("barrier", { luaEntry($0, SyncBindings.barrier) }),
        ("wait", { luaEntry($0, WaitBindings.wait) }),
    ]

    static let types: [LuaType] = [
        ProcessBindings.type, PipeBindings.type, QueueBindings.queueType, QueueBindings.joinableType,
    ] + ValueBindings.types + SyncBindings.types + SocketBindings.types

    /// Registers the types and pushes the module table.
    public static func open(_ s: LuaState) {
        Keys.intern(s)
        for type in types { LuaObjects.register(type, in: s) }
        s.newTable(hash: Int32(functions.count + 4))
        for (name, fn) in functions {
            s.push(function: fn)
            s.setField(-2, name)
        }
        s.push("ipcplay " + Version.string)
        s.setField(-2, "_VERSION")
        s.newTable(hash: Int32(SocketBindings.functions.count))
        for (name, fn) in SocketBindings.functions {
            s.push(function: fn)
            s.setField(-2, name)
        }
        s.setField(-2, "unix")
        TestHelpers.push(s)
        s.setField(-2, "test")
    }

    /// Makes `require("ipc")` and the global `ipc` return the module.
    public static func install(_ s: LuaState) {
        open(s)
        let module = s.top
        s.pushLoadedTable()
        s.pushValue(module)
        s.setField(-2, "ipc")
        s.pop()
        ipc_lua_pushglobaltable(s.L)
        s.pushValue(module)
        s.setField(-2, "ipc")
        s.setTop(module - 1)
    }
}

public enum Version {
    public static let string = "0.1.0"
}
