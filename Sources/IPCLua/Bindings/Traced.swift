import CLua
import IPCCore
import IPCRuntime

/// The bindings' side of `--trace`: each IPC call ends with a complete event that names
/// its object, previews the value moved, its size, and the time spent waiting.
enum Traced {
    /// Records the call that `Calls.enter` began. `value` previews the Lua value at that
    /// stack index; `result` describes the outcome ("true", "timeout", ...).
    static func call(_ s: LuaState, _ name: String, _ object: String, value: Int32? = nil, bytes: Int? = nil,
                     result: String? = nil, flowOut: UInt64 = 0, flowIn: UInt64 = 0) {
        if let value {
            Trace.complete(name, object: object, bytes: bytes ?? -1, resultText: result, flowOut: flowOut, flowIn: flowIn) {
                s.writePreview(value, into: $0)
            }
        } else {
            Trace.complete(name, object: object, bytes: bytes ?? -1, resultText: result, flowOut: flowOut, flowIn: flowIn)
        }
    }
}

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
