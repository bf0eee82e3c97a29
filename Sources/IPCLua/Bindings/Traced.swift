import CLua
import IPCCore
import IPCRuntime

extension LuaState {
    /// A short text of the value at `i`, for traces and timelines (the JSON trace escapes
    /// it): strings are quoted (and cut at 40 bytes), tables summarised.
    func writePreview(_ i: Int32, into b: ByteBuffer) {
        switch type(i) {
        case LUA_TNIL, LUA_TNONE: b.appendASCII("nil")
        case LUA_TBOOLEAN: b.appendASCII(boolean(i) ? "true" : "false")
        case LUA_TNUMBER:
            if let v = integer(i) { b.appendDecimal(v) } else {
                var text = String(number(i)!)
                text.withUTF8 { b.append(UnsafeRawBufferPointer($0)) }
            }
        case LUA_TSTRING:
            let s = bytes(i)!
            var n = min(s.count, 40)
            // Not a character cut in two.
            if n < s.count { while n > 0 && s[n] & 0xC0 == 0x80 { n -= 1 } }
            b.append(UInt8(ascii: "\""))
            b.append(UnsafeRawBufferPointer(rebasing: s[0..<n]))
            if n < s.count { b.appendASCII("...") }
            b.append(UInt8(ascii: "\""))
        case LUA_TTABLE:
            let n = rawLength(i)
            if n > 0 {
                b.appendASCII("{")
                b.appendDecimal(Int64(n))
                b.appendASCII(" items}")
            } else {
                b.appendASCII("{...}")
            }
        default:
            var label = ipcLabel(i) ?? typeName(i)
            label.withUTF8 { b.append(UnsafeRawBufferPointer($0)) }
        }
    }
}
