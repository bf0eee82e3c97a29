import CLua
import CLuaShim
import IPCCore
import IPCLua
import Testing

/// Round trips through the codec on a real Lua state, and hostile bytes.
@Suite("Lua value codec")
struct CodecTests {
    final class State {
        let s: LuaState
        init() {
            s = LuaState(luaL_newstate()!)
            _ = ipc_lua_openlibs(s.L)
        }
        deinit { lua_close(s.L) }

        /// Evaluates `expr` (a Lua expression) and pushes its value.
        func push(_ expr: String) {
            let chunk = "return " + expr
            #expect(ipc_lua_loadbuffer(s.L, chunk, chunk.utf8.count, "=test") == LUA_OK)
            #expect(ipc_lua_pcall(s.L, 0, 1, 0) == LUA_OK)
        }

        /// Runs `check(v)` where v is the value at the top: returns its result.
        func check(_ predicate: String) -> Bool {
            let chunk = "local v = ...; return \(predicate)"
            #expect(ipc_lua_loadbuffer(s.L, chunk, chunk.utf8.count, "=check") == LUA_OK)
            lua_rotate(s.L, -2, 1)
            guard ipc_lua_pcall(s.L, 1, 1, 0) == LUA_OK else { return false }
            defer { s.pop() }
            return s.boolean(-1)
        }
    }

    func roundTrip(_ expr: String, _ predicate: String) throws {
        let st = State()
        st.push(expr)
        let b = ByteBuffer()
        try LuaCodec.encode(st.s, at: -1, into: b)
        st.s.pop()
        try LuaCodec.decode(st.s, b.bytes)
        #expect(st.check(predicate), "\(expr) -> \(predicate)")
    }

    @Test func scalarsKeepTheirSubtype() throws {
        try roundTrip("3", "math.type(v) == 'integer' and v == 3")
        try roundTrip("3.0", "math.type(v) == 'float' and v == 3.0")
        try roundTrip("math.mininteger", "v == math.mininteger")
        try roundTrip("-0.0", "1/v == -math.huge")
        try roundTrip("0/0", "v ~= v")
        try roundTrip("-math.huge", "v == -math.huge")
        try roundTrip("'a\\0b'", "v == 'a\\0b'")
        try roundTrip("nil", "v == nil")
        try roundTrip("false", "v == false")
    }

    @Test func tables() throws {
        try roundTrip("{1, 2, x = {y = 'z'}, [2.5] = true}", "v[1] == 1 and v[2] == 2 and v.x.y == 'z' and v[2.5] == true")
        try roundTrip("{1, nil, 3}", "v[1] == 1 and v[2] == nil and v[3] == 3")
        try roundTrip("(function() local t = {} for i = 1, 500 do t = {t} end return t end)()",
                      "(function() local n = 0 while v[1] do v = v[1] n = n + 1 end return n == 500 end)()")
    }

    @Test func encodeErrorsNameThePath() {
        let st = State()
        st.push("{a = {b = {print}}}")
        let b = ByteBuffer()
        #expect {
            try LuaCodec.encode(st.s, at: -1, into: b)
        } throws: { error in
            (error as? LuaCodec.EncodeError)?.message == "cannot send a function (at value.a.b[1])"
        }
    }

    @Test func malformedInputIsAnErrorNeverACrash() throws {
        let st = State()
        st.push("{1, 'two', {three = 3.0}, [true] = false, s = string.rep('x', 100)}")
        let b = ByteBuffer()
        try LuaCodec.encode(st.s, at: -1, into: b)
        st.s.pop()
        let valid = Array(b.bytes)
        let top = st.s.top
        // Every strict prefix is malformed.
        for n in 0..<valid.count {
            valid[0..<n].withUnsafeBytes { raw in
                #expect(throws: IPCError.self) { try LuaCodec.decode(st.s, raw) }
            }
            #expect(st.s.top == top)
        }
        // Random corruption: decode or fail, never crash, never leave the stack dirty.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            bytes.withUnsafeBytes { raw in
                if (try? LuaCodec.decode(st.s, raw)) != nil { st.s.pop() }
            }
            #expect(st.s.top == top)
        }
        // Hostile sizes: a table claiming 2^40 elements, a string claiming 2^60 bytes.
        for hostile: [UInt8] in [[0x06, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00], [0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]] {
            hostile.withUnsafeBytes { raw in
                #expect(throws: IPCError.self) { try LuaCodec.decode(st.s, raw) }
            }
        }
        // Nil and NaN keys are refused.
        for bad: [UInt8] in [[0x06, 0x00, 0x01, 0x00, 0x81], [0x06, 0x00, 0x01, 0x04, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 0x81]] {
            bad.withUnsafeBytes { raw in
                #expect(throws: IPCError.self) { try LuaCodec.decode(st.s, raw) }
            }
        }
        // Too deep.
        let deep = [UInt8](repeating: 0, count: 0) + Array(repeating: [0x06, 0x01, 0x00], count: 5000).flatMap { $0 } + [0x00]
        deep.withUnsafeBytes { raw in
            #expect(throws: IPCError.self) { try LuaCodec.decode(st.s, raw) }
        }
        #expect(st.s.top == top)
    }

    /// Nested tables each claiming as many elements as there are bytes left: the size
    /// hints given to lua_createtable must stay linear in the message's length, not grow
    /// with its depth (here the sum of the claims is 500 times the length).
    @Test func sizeHintsCannotMultiplyMemory() {
        let st = State()
        let total = 64 * 1024
        var bytes: [UInt8] = []
        func varint(_ v: Int) { var v = UInt64(v); while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }; bytes.append(UInt8(v)) }
        for _ in 0..<500 {
            bytes.append(WireTag.table)
            varint(total - bytes.count - 8)
            varint(0)
        }
        bytes += [UInt8](repeating: WireTag.nil, count: total - bytes.count)
        ipc_lua_fullgc(st.s.L)
        let before = ipc_lua_memory_bytes(st.s.L)
        bytes.withUnsafeBytes { raw in
            #expect(throws: IPCError.self) { try LuaCodec.decode(st.s, raw) }
        }
        let grown = ipc_lua_memory_bytes(st.s.L) - before
        #expect(grown < 64 * total, "decoding \(total) bytes allocated \(grown) bytes")
    }
}
