import IPCCore
import Testing

@Suite("Wire format primitives")
struct WireFormatTests {
    @Test(arguments: [UInt64(0), 1, 127, 128, 300, 1 << 35, UInt64.max - 1, UInt64.max])
    func varintRoundTrip(_ v: UInt64) throws {
        let b = ByteBuffer()
        b.appendVarint(v)
        var r = WireReader(b.bytes)
        #expect(try r.varint() == v)
        #expect(r.isAtEnd)
    }

    @Test(arguments: [Int64(0), -1, 1, 63, 64, -64, Int64.max, Int64.min])
    func zigzag(_ v: Int64) {
        #expect(zigzagDecode(zigzagEncode(v)) == v)
    }

    @Test func varintRejectsOverflowAndTruncation() {
        let tooLong: [UInt8] = Array(repeating: 0xff, count: 10) + [0x01]
        tooLong.withUnsafeBytes { raw in
            var r = WireReader(raw)
            #expect(throws: IPCError.self) { _ = try r.varint() }
        }
        let overflow: [UInt8] = Array(repeating: 0xff, count: 9) + [0x02]
        overflow.withUnsafeBytes { raw in
            var r = WireReader(raw)
            #expect(throws: IPCError.self) { _ = try r.varint() }
        }
        let truncated: [UInt8] = [0x80, 0x80]
        truncated.withUnsafeBytes { raw in
            var r = WireReader(raw)
            #expect(throws: IPCError.self) { _ = try r.varint() }
        }
    }

    @Test func countsAreBoundedByTheBytesLeft() {
        let claimsMillion: [UInt8] = [0xc0, 0x84, 0x3d, 1, 2, 3]  // 1_000_000 then 3 bytes
        claimsMillion.withUnsafeBytes { raw in
            var r = WireReader(raw)
            #expect(throws: IPCError.self) { _ = try r.count(minimumBytesEach: 1) }
        }
        let bytes: [UInt8] = [1, 2, 3]
        bytes.withUnsafeBytes { raw in
            var r = WireReader(raw)
            #expect(throws: IPCError.self) { _ = try r.bytes(4) }
            #expect(throws: IPCError.self) { _ = try r.bytes(-1) }
            #expect((try? r.bytes(3)) != nil)
        }
    }

    @Test func byteBufferGrowsAndShrinks() {
        let b = ByteBuffer(capacity: 64)
        let big = [UInt8](repeating: 7, count: ByteBuffer.retainedCapacity * 3)
        big.withUnsafeBytes { b.append($0) }
        #expect(b.count == big.count)
        #expect(b.capacity >= big.count)
        b.reset()
        #expect(b.count == 0)
        #expect(b.capacity >= big.count, "reset keeps the memory")
        b.shrink()
        #expect(b.capacity <= ByteBuffer.retainedCapacity)
    }

    @Test func messagePartsCopyAcrossTheSeam() {
        let head: [UInt8] = [1, 2, 3]
        let body: [UInt8] = [4, 5, 6, 7]
        head.withUnsafeBytes { h in
            body.withUnsafeBytes { b in
                let m = MessageParts(head: h, body: b)
                #expect(m.count == 7)
                for from in 0...7 {
                    for n in 0...(7 - from) {
                        var out = [UInt8](repeating: 0, count: n)
                        out.withUnsafeMutableBytes { m.copy(from: from, count: n, to: $0.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 8)!) }
                        #expect(out == Array((head + body)[from..<(from + n)]))
                    }
                }
            }
        }
    }

    @Test func byteBufferStaysGrownWhileLargeMessagesCome() {
        let b = ByteBuffer(capacity: 64)
        let big = [UInt8](repeating: 7, count: ByteBuffer.retainedCapacity * 3)
        for _ in 0..<3 * ByteBuffer.idleLimit {
            big.withUnsafeBytes { b.append($0) }
            b.recycle()
            #expect(b.count == 0 && b.capacity >= big.count)
        }
        // Small messages: it shrinks after idleLimit of them in a row.
        for i in 1...ByteBuffer.idleLimit {
            b.append(1)
            b.recycle()
            #expect((b.capacity > ByteBuffer.retainedCapacity) == (i < ByteBuffer.idleLimit))
        }
    }
}
