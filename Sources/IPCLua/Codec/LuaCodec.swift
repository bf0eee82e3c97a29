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

        /// "cannot send a function (at value.handler)"
        public var message: String {
            "\(reason) (at value\(path.reversed().joined()))"
        }
    }

    // MARK: - Encoding

    /// Appends the value at `index` to `out`.
    public static func encode(_ s: LuaState, at index: Int32, into out: ByteBuffer) throws(EncodeError) {
        var encoder = Encoder(s: s, out: out)
        try encoder.encode(s.absolute(index), depth: 0)
        if out.overflowed { throw EncodeError(reason: outOfMemory) }
    }

    /// What an encode that ran out of memory (or past `maxMessage`) says.
    static let outOfMemory = "cannot send a value this large: encoded, it needs more memory than this process can have"

    /// The largest encoded message.
    public static let maxMessage = 1 << 32

    struct Encoder {
        let s: LuaState
        let out: ByteBuffer
        /// Tables on the path from the root to the current value (cycle detection).
        var open: [UnsafeRawPointer] = []

        mutating func encode(_ i: Int32, depth: Int) throws(EncodeError) {
            let L = s.L
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
                if out.overflowed { throw EncodeError(reason: LuaCodec.outOfMemory) }
            case LUA_TTABLE:
                try encodeTable(i, depth: depth)
                if out.overflowed { throw EncodeError(reason: LuaCodec.outOfMemory) }
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
            guard out.reserve(5) else { throw EncodeError(reason: LuaCodec.outOfMemory) }
            out.count += 5
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
    public static func decode(_ s: LuaState, _ bytes: UnsafeRawBufferPointer) throws(IPCError) {
        let top = s.top
        var reader = WireReader(bytes)
        var preallocation = bytes.count
        do throws(IPCError) {
            try decodeValue(s, &reader, &preallocation, depth: 0)
            if !reader.isAtEnd { throw IPCError.malformed("\(reader.remaining) bytes after the value") }
        } catch {
            s.setTop(top)
            throw error
        }
    }

    /// `preallocation` is what is left of the table slots the whole message may ask
    /// lua_createtable for in advance.
    static func decodeValue(_ s: LuaState, _ r: inout WireReader, _ preallocation: inout Int, depth: Int) throws(IPCError) {
        let L = s.L
        let tag = try r.byte()
        switch tag {
        case WireTag.nil: s.pushNil()
        case WireTag.false: s.push(false)
        case WireTag.true: s.push(true)
        case WireTag.integer: lua_pushinteger(L, zigzagDecode(try r.varint()))
        case WireTag.float: lua_pushnumber(L, Double(bitPattern: try r.littleEndian64()))
        case WireTag.string:
            let n = try r.count(minimumBytesEach: 1)
            let p = try r.bytes(n)
            s.push(bytes: p, count: n)
        case WireTag.table:
            try decodeTable(s, &r, &preallocation, depth: depth)
        case WireTag.fixIntBase...(WireTag.fixIntBase + UInt8(WireTag.fixIntMax)):
            lua_pushinteger(L, Int64(tag - WireTag.fixIntBase))
        case WireTag.fixStringBase...(WireTag.fixStringBase + UInt8(WireTag.fixStringMax)):
            let n = Int(tag - WireTag.fixStringBase)
            let p = try r.bytes(n)
            s.push(bytes: p, count: n)
        default:
            throw IPCError.malformed("unknown tag 0x\(String(tag, radix: 16))")
        }
    }

    static func decodeTable(_ s: LuaState, _ r: inout WireReader, _ preallocation: inout Int, depth: Int) throws(IPCError) {
        let L = s.L
        if depth >= maxDepth { throw IPCError.malformed("tables nested deeper than \(maxDepth)") }
        guard s.ensureStack(4) else { throw IPCError.malformed("Lua stack exhausted") }
        // Each element takes at least one byte (a pair two), so a table's sizes are bounded
        // by the bytes left. A nested table's bytes are its parent's too, so the slots
        // preallocated are also bounded for the whole message: memory stays linear in its
        // length, however deep the nesting (tables grow past their hints as usual).
        let n = try r.count(minimumBytesEach: 1)
        let m = try r.count(minimumBytesEach: 2)
        guard n + 2 * m <= r.remaining else { throw IPCError.malformed("table sizes exceed the bytes left") }
        let arrayHint = min(n, preallocation)
        preallocation -= arrayHint
        let hashHint = min(m, preallocation)
        preallocation -= hashHint
        lua_createtable(L, Int32(clamping: arrayHint), Int32(clamping: hashHint))
        let t = s.top
        for k in 0..<n {
            try decodeValue(s, &r, &preallocation, depth: depth + 1)
            if lua_type(L, -1) == LUA_TNIL { s.pop() } else { lua_rawseti(L, t, Int64(k + 1)) }
        }
        for _ in 0..<m {
            try decodeValue(s, &r, &preallocation, depth: depth + 1)
            let kt = lua_type(L, -1)
            if kt == LUA_TNIL { throw IPCError.malformed("a table key is nil") }
            if kt == LUA_TNUMBER, lua_isinteger(L, -1) == 0, lua_tonumberx(L, -1, nil).isNaN {
                throw IPCError.malformed("a table key is NaN")
            }
            try decodeValue(s, &r, &preallocation, depth: depth + 1)
            if lua_type(L, -1) == LUA_TNIL { s.pop(2) } else { lua_rawset(L, t) }
        }
    }
}

extension LuaCodec.EncodeError {
    func within(_ step: String) -> LuaCodec.EncodeError {
        var e = self
        e.path.append(step)
        return e
    }
}
