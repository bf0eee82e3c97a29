import CLua
import CLuaShim
import IPCCore

/// Encodes the Lua value at a stack index into the wire format (see `WireFormat`), and
/// decodes wire bytes back onto the stack.
///
/// Integers and floats keep their subtype (and NaN payloads, infinities, -0.0); strings
/// are bytes; tables are copied (a shared sub-table arrives twice); a table that contains
/// itself, a function, a coroutine or a userdata is an error that names where it sits:
/// `cannot send a function (at value.handler)`.
public enum LuaCodec {
    /// Deeper tables than this are refused on both sides (recursion is on the C stack).
    public static let maxDepth = 1000

    public struct EncodeError: Error {
        public var reason: String
        /// Path components from the failing value up to the root, innermost first.
        public var path: [String] = []
        /// False for the errors of the whole value (its size), which have no place.
        public var located = true

        /// "cannot send a function (at value.handler)"
        public var message: String {
            located ? "\(reason) (at value\(path.reversed().joined()))" : reason
        }
    }

    // MARK: - Encoding

    /// Appends the value at `index` to `out`. When `out` refuses memory (its limit, or
    /// malloc), the encoder goes on counting the bytes the message would take, up to four
    /// times what it held, so that the error can say how large it was.
    public static func encode(_ s: LuaState, at index: Int32, into out: ByteBuffer) throws(EncodeError) {
        var encoder = Encoder(s: s, out: out)
        try encoder.encode(s.absolute(index), depth: 0)
        if out.overflowed { throw EncodeError(reason: tooLarge(out), located: false) }
    }

    /// The largest encoded message.
    public static let maxMessage = 1 << 32

    /// Past this many bytes asked of an overflowed buffer, the encoder stops counting: a
    /// table that holds the same sub-table twice at each of 40 levels would take a long
    /// time to count.
    static func countingLimit(_ out: ByteBuffer) -> Int {
        min(maxMessage, 4 * max(out.count, 1 << 20))
    }

    /// Why a value did not fit in `out`.
    static func tooLarge(_ out: ByteBuffer) -> String {
        if out.requested > maxMessage {
            return "cannot send a value this large: encoded, it takes more than \(describeSize(maxMessage))"
        }
        let size = out.requested > countingLimit(out) ? "message of more than \(describeSize(out.requested))" : "\(describeSize(out.requested)) message"
        return "not enough memory for a \(size)" + limitNote(out)
    }

    /// Names the limit a message passed, if that is why it was refused.
    public static func limitNote(_ out: ByteBuffer) -> String {
        out.requested > out.limit ? " (a message may take up to \(describeSize(out.limit)) in this process)" : ""
    }

    struct Encoder {
        let s: LuaState
        let out: ByteBuffer
        /// Tables on the path from the root to the current value (cycle detection).
        var open: [UnsafeRawPointer] = []

        mutating func encode(_ i: Int32, depth: Int) throws(EncodeError) {
            let L = s.L
            if out.overflowed && out.requested > LuaCodec.countingLimit(out) {
                throw EncodeError(reason: LuaCodec.tooLarge(out), located: false)
            }
            switch lua_type(L, i) {
            case LUA_TNIL, LUA_TNONE:
                out.append(WireTag.nil)
            case LUA_TBOOLEAN:
                out.append(lua_toboolean(L, i) != 0 ? WireTag.true : WireTag.false)
            case LUA_TNUMBER:
                if lua_isinteger(L, i) != 0 {
                    out.appendInteger(lua_tointegerx(L, i, nil))
                } else {
                    out.appendFloat(lua_tonumberx(L, i, nil))
                }
            case LUA_TSTRING:
                var len = 0
                let p = lua_tolstring(L, i, &len)
                out.appendString(p.map { UnsafeRawPointer($0) }, count: len)
            case LUA_TTABLE:
                try encodeTable(i, depth: depth)
            default:
                throw EncodeError(reason: "cannot send \(describeUnsendable(i))")
            }
        }

        func describeUnsendable(_ i: Int32) -> String {
            switch lua_type(s.L, i) {
            case LUA_TFUNCTION: return "a function"
            case LUA_TTHREAD: return "a coroutine"
            case LUA_TLIGHTUSERDATA: return "a light userdata"
            default:
                if let label = s.ipcLabel(i) {
                    return "a \(label) (ipc objects are shared by inheritance: create it before starting the processes that use it)"
                }
                return "a userdata"
            }
        }

        mutating func encodeTable(_ t: Int32, depth: Int) throws(EncodeError) {
            let L = s.L
            let id = lua_topointer(L, t)!
            if open.contains(id) { throw EncodeError(reason: "cannot send a table that contains itself") }
            if depth >= LuaCodec.maxDepth {
                throw EncodeError(reason: "cannot send tables nested deeper than \(LuaCodec.maxDepth)")
            }
            guard s.ensureStack(4) else { throw EncodeError(reason: "cannot send: Lua stack exhausted") }
            open.append(id)
            defer { open.removeLast() }
            let n = Int(lua_rawlen(L, t))
            out.append(WireTag.table)
            out.appendVarint(UInt64(n))
            // The hash count is patched in afterwards: five varint bytes, padded.
            let countAt = out.count
            if out.reserve(5) { out.count += 5 }
            for k in 0..<n {
                _ = lua_rawgeti(L, t, Int64(k + 1))
                do { try encode(s.top, depth: depth + 1) } catch {
                    s.pop()
                    throw error.within("[\(k + 1)]")
                }
                s.pop()
            }
            var pairs: UInt64 = 0
            s.pushNil()
            while lua_next(L, t) != 0 {
                // key at -2, value at -1
                if lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2) != 0 {
                    let k = lua_tointegerx(L, -2, nil)
                    if k >= 1 && k <= Int64(n) { s.pop(); continue }
                }
                let keyIndex = s.top - 1
                do {
                    try encode(keyIndex, depth: depth + 1)
                } catch {
                    s.pop(2)
                    throw EncodeError(reason: error.reason + " as a table key", path: error.path)
                }
                do { try encode(s.top, depth: depth + 1) } catch {
                    let step = pathStep(keyIndex)
                    s.pop(2)
                    throw error.within(step)
                }
                pairs += 1
                s.pop()
            }
            // Patch the count as a 5-byte varint (the decoder accepts padded varints).
            guard pairs < (1 << 35) else { throw EncodeError(reason: "cannot send a table with \(pairs) keys") }
            if out.overflowed { return }  // only counting: nothing to patch
            let p = (out.base + countAt).assumingMemoryBound(to: UInt8.self)
            var v = pairs
            for b in 0..<5 {
                p[b] = UInt8(v & 0x7f) | (b < 4 ? 0x80 : 0)
                v >>= 7
            }
        }

        /// `.name`, `[3]`, `["two words"]` for the key at `i`.
        func pathStep(_ i: Int32) -> String {
            switch lua_type(s.L, i) {
            case LUA_TSTRING:
                let key = s.string(i) ?? ""
                if isIdentifier(key) { return "." + key }
                let shown = key.count > 40 ? String(key.prefix(40)) + "..." : key
                var quoted = ""
                for ch in shown { quoted += ch == "\"" ? "\\\"" : String(ch) }
                return "[\"" + quoted + "\"]"
            case LUA_TNUMBER:
                if let k = s.integer(i) { return "[\(k)]" }
                return "[\(s.number(i)!)]"
            case LUA_TBOOLEAN:
                return s.boolean(i) ? "[true]" : "[false]"
            default:
                return "[\(s.typeName(i))]"
            }
        }

        func isIdentifier(_ k: String) -> Bool {
            guard let f = k.utf8.first, f == 95 || (f | 0x20 >= 97 && f | 0x20 <= 122) else { return false }
            return k.utf8.allSatisfy { $0 == 95 || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || ($0 >= 48 && $0 <= 57) }
        }
    }

    // MARK: - Decoding

    /// Pushes the value encoded in `bytes`. On error nothing is left on the stack.
    ///
    /// The decoder is C (CLuaShim's ipc_decode.c), run in one protected call: building the
    /// value allocates, and an allocation can raise a memory error and run finalizers,
    /// neither of which may cross a Swift frame. Throws `.malformed` for bytes that are
    /// not a message, `.resource` when Lua runs out of memory building the value.
    public static func decode(_ s: LuaState, _ bytes: UnsafeRawBufferPointer) throws(IPCError) {
        if ipc_lua_decodesimple(s.L, bytes.baseAddress, bytes.count) != 0 { return }
        let (status, message) = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { text in
            let status = ipc_lua_decode(s.L, bytes.baseAddress, bytes.count, text.baseAddress!, text.count)
            return (status, status == IPC_DECODE_OK || status == IPC_DECODE_MEMORY ? "" : String(cString: text.baseAddress!))
        }
        if status == IPC_DECODE_OK { return }
        if status == IPC_DECODE_MEMORY { throw IPCError.resource("not enough memory") }
        if status == IPC_DECODE_MALFORMED { throw IPCError.malformed(message) }
        throw IPCError.system(message)
    }
}

extension LuaCodec.EncodeError {
    func within(_ step: String) -> LuaCodec.EncodeError {
        var e = self
        e.path.append(step)
        return e
    }
}
