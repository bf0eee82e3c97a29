import CLua
import CLuaShim
import IPCCore

/// The buffers calls encode their messages into and receive them into. Each call owns
/// one, by its nesting level: a finalizer or a hook that calls into ipc in the middle of
/// a call (at any allocation of a decode, say) runs a level deeper and gets another, so
/// it never touches the bytes the outer call is still reading. They are kept and reused,
/// so that the hot paths allocate nothing once they have grown.
/// (Their state is the bindings' execution context's `buffers`: `CallBufferState`.)
enum CallBuffers {
    static var depth: Int {
        @inline(__always) get { LuaExecution.current.buffers.depth }
        @inline(__always) set { LuaExecution.current.buffers.depth = newValue }
    }
    static var first: ByteBuffer? {
        @inline(__always) get { LuaExecution.current.buffers.first }
        set { LuaExecution.current.buffers.first = newValue }
    }
    static var deeper: [ByteBuffer] {
        @inline(__always) get { LuaExecution.current.buffers.deeper ?? [] }
        set { LuaExecution.current.buffers.deeper = newValue }
    }
    static var held: UInt64 {
        @inline(__always) get { LuaExecution.current.buffers.held }
        @inline(__always) set { LuaExecution.current.buffers.held = newValue }
    }
    /// The largest message a buffer may hold (the buffers made already follow).
    static var messageLimit: Int {
        get { LuaExecution.current.buffers.messageLimit ?? LuaCodec.maxMessage }
        set {
            LuaExecution.current.buffers.messageLimit = newValue
            for b in [first].compactMap({ $0 }) + deeper { b.limit = newValue }
        }
    }

    /// A call begins: its level.
    @inline(__always)
    static func enter() -> Int {
        depth += 1
        return depth
    }

    /// The call at `level` ends: its buffer, if it took it, is emptied for the next call
    /// at that level (and shrunk once large messages stop coming: `ByteBuffer.recycle`).
    @inline(__always)
    static func leave(_ level: Int) {
        depth = level - 1
        if level < 64 {
            guard held & (1 << UInt64(level)) != 0 else { return }
            held &= ~(1 << UInt64(level))
        }
        let buffer = level == 1 ? first : level - 2 < deeper.count ? deeper[level - 2] : nil
        guard let buffer else { return }
        let grown = buffer.capacity > ByteBuffer.retainedCapacity
        buffer.recycle()
        // Large messages stopped coming: the blocks the allocator keeps for the next
        // large strings go too.
        if grown && buffer.capacity <= ByteBuffer.retainedCapacity { ipc_lua_dropkept() }
    }

    /// The buffer of the call at `level`.
    @inline(__always)
    static func buffer(_ level: Int) -> ByteBuffer {
        if level < 64 { held |= 1 << UInt64(level) }
        if level == 1, let b = first { return b }
        if level >= 2 && level - 2 < deeper.count { return deeper[level - 2] }
        return grow(to: level)
    }

    @inline(never)
    static func grow(to level: Int) -> ByteBuffer {
        if level == 1 {
            let b = make()
            first = b
            return b
        }
        while deeper.count < level - 1 { deeper.append(make()) }
        return deeper[level - 2]
    }

    /// Shrinks the buffers no call in progress holds (the allocator asks, before it
    /// refuses memory to Lua: a buffer kept grown for large messages must not cost the
    /// script its heap). The buffers of calls in progress stay as they are.
    static func releaseIdle() {
        if let b = first, held & (1 << 1) == 0 { b.shrink() }
        for (i, b) in deeper.enumerated() where i + 2 < 64 && held & (1 << UInt64(i + 2)) == 0 { b.shrink() }
    }

    static func make() -> ByteBuffer {
        let b = ByteBuffer(capacity: 1 << 12)
        b.limit = messageLimit
        return b
    }
}

extension LuaState {
    /// Encodes the value at `i` into the call's buffer, or raises `call: reason (at ...)`.
    @inline(__always)
    func encodeArgument(_ i: Int32, _ call: CallContext) throws(LuaRaise) -> ByteBuffer {
        let buffer = call.buffer
        do {
            try LuaCodec.encode(self, at: i, into: buffer)
        } catch {
            // Give the memory back before building the message.
            buffer.reset()
            buffer.shrink()
            throw LuaRaise("\(call.name): \(error.message)")
        }
        return buffer
    }

    /// Strings at least this long are sent as their encoded head (tag and length) and
    /// the Lua string's own bytes, not copied into the call's buffer first.
    static let directStringMin = 1 << 16

    /// The value at `i` as a message: encoded into the call's buffer, or for a long
    /// string, its head there and its bytes where Lua keeps them (the string stays on the
    /// stack, so they stay put for the call). Raises as `encodeArgument`.
    @inline(__always)
    func encodeMessage(_ i: Int32, _ call: CallContext) throws(LuaRaise) -> MessageParts {
        if lua_type(L, i) == LUA_TSTRING {
            var len = 0
            if let p = lua_tolstring(L, i, &len), len >= Self.directStringMin {
                let buffer = call.buffer
                // Within the limits the encoder applies; beyond them it gives the error.
                if len <= min(buffer.limit, LuaCodec.maxMessage) - 16 {
                    buffer.appendString(nil, count: len)
                    if !buffer.overflowed {
                        return MessageParts(head: buffer.bytes, body: UnsafeRawBufferPointer(start: p, count: len))
                    }
                    buffer.reset()
                }
            }
        }
        return MessageParts(try encodeArgument(i, call).bytes)
    }

    /// Pushes the value encoded in `buffer`, or raises `call: malformed message: ...`.
    @inline(__always)
    func pushDecoded(_ buffer: ByteBuffer, _ call: String) throws(LuaRaise) {
        if buffer.overflowed { throw received(tooLarge: buffer, call) }
        do {
            try LuaCodec.decode(self, buffer.bytes)
        } catch {
            throw decodeFailure(error, buffer, call)
        }
    }

    /// A message that did not fit in the call's buffer (it was taken all the same).
    @inline(never)
    func received(tooLarge buffer: ByteBuffer, _ call: String) -> LuaRaise {
        let size = buffer.requested
        let note = LuaCodec.limitNote(buffer)
        buffer.reset()  // the memory back before the message is built
        buffer.shrink()
        return LuaRaise("\(call): not enough memory for a \(describeSize(size)) message (it is lost)\(note)")
    }

    @inline(never)
    func decodeFailure(_ error: IPCError, _ buffer: ByteBuffer, _ call: String) -> LuaRaise {
        switch error {
        case .malformed(let why): return LuaRaise("\(call): malformed message: \(why)")
        case .resource: return LuaRaise("\(call): not enough memory to decode a \(describeSize(buffer.count)) message (it is lost)")
        default: return LuaRaise("\(call): \(error)")
        }
    }
}
