import CLua
import CLuaShim
import Glibc
import IPCCore
import IPCLua

/// libFuzzer's entry: any bytes go to the decoder, which must either push one value or
/// throw, and never crash, hang, leave the stack unbalanced, or make Lua allocate more
/// than `bytesPerInputByte` per byte of input (plus a constant). What decodes is encoded
/// again, and must decode again to an encoding of the same length (a round trip).

// MARK: - An allocator that keeps the peak

nonisolated(unsafe) var allocated = 0
nonisolated(unsafe) var peak = 0
let bytesPerInputByte = 64
let allowance = 256 * 1024

/// lua_Alloc over realloc/free that counts live bytes (osize is a type tag when ptr is nil).
let countingAllocator: lua_Alloc = { _, ptr, osize, nsize in
    let old = ptr == nil ? 0 : osize
    if nsize == 0 {
        free(ptr)
        allocated -= old
        return nil
    }
    guard let p = realloc(ptr, nsize) else { return nil }
    allocated += nsize - old
    if allocated > peak { peak = allocated }
    return p
}

nonisolated(unsafe) let state = LuaState(lua_newstate(countingAllocator, nil)!)
nonisolated(unsafe) let buffer = ByteBuffer()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let s = state
    let top = s.top
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    ipc_lua_fullgc(s.L)
    let baseline = allocated
    peak = allocated
    let decoded = (try? LuaCodec.decode(s, bytes)) != nil
    precondition(peak - baseline <= bytesPerInputByte * size + allowance,
                 "decoding \(size) bytes allocated \(peak - baseline) bytes")
    guard decoded else {
        precondition(s.top == top, "a failed decode left values on the stack")
        return 0
    }
    precondition(s.top == top + 1, "a decode pushed \(s.top - top) values")
    buffer.reset()
    do {
        try LuaCodec.encode(s, at: -1, into: buffer)
    } catch {
        // Decoded values are always sendable (no functions, no cycles can be decoded).
        preconditionFailure("a decoded value could not be encoded again: \(error.message)")
    }
    s.pop()
    let first = Array(buffer.bytes)
    first.withUnsafeBytes { raw in
        guard (try? LuaCodec.decode(s, raw)) != nil else { preconditionFailure("a re-encoded value did not decode") }
    }
    buffer.reset()
    try? LuaCodec.encode(s, at: -1, into: buffer)
    precondition(buffer.count == first.count, "the round trip changed the encoding's length")
    s.pop()
    precondition(s.top == top)
    return 0
}
