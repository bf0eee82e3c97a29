import IPCCore

/// The per-process buffers that every message is encoded into or received into, reused
/// so that the hot paths allocate nothing once they have grown.
enum Scratch {
    nonisolated(unsafe) static let encode: ByteBuffer = {
        let b = ByteBuffer(capacity: 1 << 12)
        b.limit = LuaCodec.maxMessage
        return b
    }()
    nonisolated(unsafe) static let receive = ByteBuffer(capacity: 1 << 12)
}

extension LuaState {
    /// Encodes the value at `i` into the encode scratch buffer, or raises `call: reason (at ...)`.
    @inline(__always)
    func encodeArgument(_ i: Int32, _ call: String) throws(LuaRaise) -> ByteBuffer {
        let buffer = Scratch.encode
        buffer.reset()
        do {
            try LuaCodec.encode(self, at: i, into: buffer)
        } catch {
            throw LuaRaise("\(call): \(error.message)")
        }
        return buffer
    }

    /// Pushes the value encoded in `buffer`, or raises `call: malformed message: ...`.
    @inline(__always)
    func pushDecoded(_ buffer: ByteBuffer, _ call: String) throws(LuaRaise) {
        if buffer.overflowed {
            buffer.reset()
            throw LuaRaise("\(call): not enough memory to receive the message (it is lost)")
        }
        do {
            try LuaCodec.decode(self, buffer.bytes)
        } catch {
            throw LuaRaise("\(call): malformed message: \(error)")
        }
    }
}
