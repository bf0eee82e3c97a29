import IPCCore

/// The bindings' part of this process's execution context (IPCRuntime's `Execution` holds
/// the rest): what the `ipc` module keeps for the process's Lua state. It is apart from
/// `Execution` because its types are Lua's (the trampolines' table takes a `LuaState`),
/// which the runtime, below the bindings, cannot name. Made with the process, inherited
/// by its forks, reached in one place: `LuaExecution.current`. Its fields start as nil,
/// zero or false, so that reaching it costs no once-check (see `Execution`).
struct LuaExecution {
    /// The interned field names (`Keys`).
    var keys = InternedKeys()
    /// The calls' message buffers (`CallBuffers`).
    var buffers = CallBufferState()
    /// The Lua thread of the call in progress (`Bindings.current`).
    var thread: OpaquePointer?
    /// The `invoke` of every entry registered in this process's Lua state (`Bindings.invokers`).
    var invokers: UnsafeMutablePointer<Bindings.Invoke>?
    var registered = 0
    /// Set by `ipc.test.skip(reason)`: the main script's error is a skip, not a failure.
    var skipReason: String?

    /// The one static of the bindings (see `Execution.current` for the runtime's). It
    /// cannot live in the runtime's context: its types are Lua's, which the runtime, below
    /// the bindings, cannot name.
    nonisolated(unsafe) static var current = LuaExecution()
}

/// Field names compared by identity (see `Keys`).
struct InternedKeys {
    var value, name, typecode, pid, daemon, exitcode, parties, nWaiting, broken: UnsafeRawPointer?
}

/// The buffers of the calls in progress (see `CallBuffers`).
struct CallBufferState {
    /// The nesting level of the innermost call in progress (0: none).
    var depth = 0
    /// The buffer of the calls at level 1 (nearly all of them), made at the first call
    /// that needs one.
    var first: ByteBuffer?
    /// `deeper[level - 2]` belongs to the call in progress at `level` (2 and more).
    var deeper: [ByteBuffer]?
    /// Bit `level` is set while the call at `level` (below 64) holds its buffer: only
    /// those are emptied when their call ends.
    var held: UInt64 = 0
    /// The largest message a buffer may hold (nil: `LuaCodec.maxMessage`).
    var messageLimit: Int?
}
