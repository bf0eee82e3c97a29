import CLua
import IPCCore
import IPCRuntime

extension LuaState {
    /// A short JSON rendering of the value at `i`, for traces and timelines: strings are
    /// quoted (and cut at 40 bytes), tables summarised.
    func writePreview(_ i: Int32, into b: ByteBuffer) {
        switch type(i) {
        case LUA_TNIL, LUA_TNONE: b.appendASCII("\"nil\"")
        case LUA_TBOOLEAN: b.appendASCII(boolean(i) ? "\"true\"" : "\"false\"")
        case LUA_TNUMBER:
            b.append(UInt8(ascii: "\""))
            if let v = integer(i) { b.appendDecimal(v) } else {
                var text = String(number(i)!)
                text.withUTF8 { b.append(UnsafeRawBufferPointer($0)) }
            }
            b.append(UInt8(ascii: "\""))
        case LUA_TSTRING:
            b.appendJSONString(bytes(i)!, limit: 40, quoted: true)
        case LUA_TTABLE:
            let n = rawLength(i)
            if n > 0 {
                b.appendASCII("\"{")
                b.appendDecimal(Int64(n))
                b.appendASCII(" items}\"")
            } else {
                b.appendASCII("\"{...}\"")
            }
        default:
            b.appendJSONString(ipcLabel(i) ?? typeName(i))
        }
    }
}
