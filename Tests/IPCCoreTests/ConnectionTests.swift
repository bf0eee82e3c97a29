import Glibc
import IPCCore
import Testing

@Suite("Pipe connections, in one process")
struct ConnectionTests {
    func send(_ c: Connection, _ s: String, raw: Bool = false) -> Connection.SendOutcome {
        var s = s
        return s.withUTF8 { c.send(UnsafeRawBufferPointer($0), raw: raw) }
    }

    @Test func duplexBothWays() throws {
        let (a, b) = try Connection.pair(duplex: true, name: "p")
        #expect(send(a, "to b") == .done)
        #expect(send(b, "to a") == .done)
        let buf = ByteBuffer()
        #expect(b.receive(into: buf, deadline: .now) == .message(raw: false, id: 0))
        #expect(String(decoding: buf.bytes, as: UTF8.self) == "to b")
        #expect(a.receive(into: buf, deadline: .now) == .message(raw: false, id: 0))
        #expect(String(decoding: buf.bytes, as: UTF8.self) == "to a")
    }

    @Test func simplexEndsAndEndOfStream() throws {
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        #expect(r.canReceive && !r.canSend)
        #expect(w.canSend && !w.canReceive)
        #expect(send(w, "bytes", raw: true) == .done)
        let buf = ByteBuffer()
        #expect(r.poll(deadline: .now))
        #expect(r.receive(into: buf, deadline: .now) == .message(raw: true, id: 0))
        #expect(!r.poll(deadline: .now))
        #expect(r.receive(into: buf, deadline: .after(seconds: 0.05)) == .timedOut)
        w.close()
        #expect(r.receive(into: buf, deadline: .never) == .closed)
        r.close()
        #expect(send(w, "x") == .closed)
    }

    @Test func multiFrameMessages() throws {
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        let msg = String(repeating: "0123456789", count: 3000)  // 30 kB: 8 frames
        #expect(send(w, msg) == .done)
        let buf = ByteBuffer()
        #expect(r.receive(into: buf, deadline: .now) == .message(raw: false, id: 0))
        #expect(String(decoding: buf.bytes, as: UTF8.self) == msg)
    }

    @Test func writesToAClosedReaderAreClosedNotSIGPIPE() throws {
        signal(SIGPIPE, SIG_IGN)
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        r.close()
        #expect(send(w, "nobody listens") == .closed)
    }

    @Test func resynchronisesAfterGarbage() throws {
        // Bytes that are not a frame (what a receiver killed mid-frame leaves behind) are
        // skipped up to the next valid frame header.
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        let junk: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
        _ = junk.withUnsafeBytes { write(w.writeFD, $0.baseAddress, $0.count) }
        #expect(send(w, "after the junk") == .done)
        let buf = ByteBuffer()
        #expect(r.receive(into: buf, deadline: .after(seconds: 1)) == .message(raw: false, id: 0))
        #expect(String(decoding: buf.bytes, as: UTF8.self) == "after the junk")
    }
}
