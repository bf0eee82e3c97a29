import CLua
import CLuaShim
import Glibc
import IPCCore
import IPCRuntime

/// How much memory a process's Lua heap and its messages may take, so that a script that
/// uses up what it may gets Lua's "not enough memory" (an error it can catch) while the
/// host keeps room to work: to report it, to go on with the next call, to end the run.
///
/// - `--memory-limit MB`: each process's Lua heap may hold that many MiB, and one message
///   it sends or receives may take as much.
/// - RLIMIT_AS (`ulimit -v`) or RLIMIT_DATA (`ulimit -d`): the heap may grow while the
///   address space leaves the host an eighth of what was free when the process started
///   (at least `hostReserve`), and a message may take a quarter of it.
///
/// The allocator (CLuaShim's ipc_memory.c) enforces the heap's share; the call buffers
/// refuse messages past theirs (`CallBuffers.messageLimit`). A message buffer needs no
/// reserve of its own: when memory is short it fails to grow, which is an error, not a
/// crash. The reserve is for the host's small allocations, which would trap.
enum MemoryBudget {
    /// The least address space the heap leaves to the rest of the process.
    static let hostReserve = 16 << 20
    /// The smallest message limit, however little memory there is.
    static let smallestMessageLimit = 1 << 20

    /// Sets the limits of this process's Lua state (before it is made), from the run's
    /// options and the process's limits and size now.
    static func apply(_ options: RunOptions) {
        let space = softLimit(RLIMIT_AS)
        let data = softLimit(RLIMIT_DATA)
        var messageLimit = LuaCodec.maxMessage
        if let heap = options.memoryLimit { messageLimit = min(messageLimit, heap) }
        if space != nil || data != nil {
            let now = addressSpace()
            var free = Int.max
            if let space { free = min(free, max(space - now.size, 0)) }
            if let data { free = min(free, max(data - now.data, 0)) }
            messageLimit = min(messageLimit, max(free / 4, smallestMessageLimit))
            ipc_lua_setaddresslimits(space ?? 0, data ?? 0, max(free / 8, hostReserve))
        }
        ipc_lua_setmemorylimit(options.memoryLimit ?? 0)
        CallBuffers.messageLimit = messageLimit
        ipc_lua_setreleasehook { CallBuffers.releaseIdle() }
    }

    /// The message of an uncaught error: a memory error (which Lua raises without a
    /// position or a traceback) says how much the heap holds.
    static func explain(_ message: String, status: Int32) -> String {
        guard status == LUA_ERRMEM else { return message }
        return "\(message) (the Lua heap of this process holds \(describeSize(ipc_lua_memoryused())))"
    }

    /// A resource's soft limit in bytes, nil when there is none.
    static func softLimit(_ resource: __rlimit_resource) -> Int? {
        var r = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &r) == 0, r.rlim_cur < rlim_t(Int.max) else { return nil }
        return Int(r.rlim_cur)
    }

    /// This process's address space and private data, in bytes (0 if /proc says nothing).
    static func addressSpace() -> (size: Int, data: Int) {
        var size = 0, data = 0
        guard ipc_lua_addressspace(&size, &data) != 0 else { return (0, 0) }
        return (size, data)
    }
}
