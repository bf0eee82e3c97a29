import CSystemShim
import Foundation
import Glibc
@testable import IPCCore
import Testing

@Suite("Pipe connections, in one process", .serialized)  // some set Connection.slotWaitSeconds
struct ConnectionTests {
    func send(_ c: Connection, _ s: String, raw: Bool = false) -> Connection.SendOutcome {
        var s = s
        return s.withUTF8 { c.send(UnsafeRawBufferPointer($0), raw: raw) }
    }

    /// Swift's view of the shared layout is C's: the C fast paths and the Swift core
    /// read the same fields of one header.
    @Test func layoutAgreesWithC() {
        #expect(MemoryLayout<ipc_channel_header>.size == ipc_channel_header_size())
        #expect(MemoryLayout<ipc_channel_header>.offset(of: \.lane) == ipc_channel_lane_offset())
        #expect(MemoryLayout<ipc_channel_header>.offset(of: \.inbox) == ipc_channel_inbox_offset())
        #expect(MemoryLayout<ipc_channel_header>.offset(of: \.recv_lock) == ipc_channel_recv_lock_offset())
        #expect(MemoryLayout<ipc_channel_header>.offset(of: \.send_lock) == 64)
        #expect(MemoryLayout<ipc_line_lock>.stride == 64)
        #expect(MemoryLayout<ipc_channel_inbox>.size == ipc_inbox_size())
        #expect(MemoryLayout<ipc_channel_inbox>.offset(of: \.consumed) == ipc_inbox_consumed_offset())
        #expect(MemoryLayout<ipc_channel_inbox>.offset(of: \.sequence) == ipc_inbox_sequence_offset())
        #expect(MemoryLayout<ipc_channel_inbox>.offset(of: \.drained) == ipc_inbox_drained_offset())
        #expect(Connection.inboxBytesOffset == ipc_inbox_bytes_offset())
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

    /// A receiver killed between its read(2) and the store that records it: the frames
    /// it read lie past the inbox's end, in front of stale frames of earlier reads. The
    /// next receiver takes back the fresh ones, in order, and none of the stale ones.
    @Test func readAheadOfAKilledReceiverIsRecovered() throws {
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        let buf = ByteBuffer()
        func receiveAll() -> [String] {
            var got: [String] = []
            while r.receive(into: buf, deadline: .now) == .message(raw: false, id: 0) {
                got.append(String(decoding: buf.bytes, as: UTF8.self))
            }
            return got
        }
        // Stale frames in both halves of the inbox.
        for i in 1...700 { #expect(send(w, "old-\(i)") == .done) }
        #expect(receiveAll().count == 700)
        // Rounds alternate: the dead receiver's read follows a whole frame, or finishes
        // a frame that an earlier read cut.
        for round in 0..<6 {
            let fresh = (1...40).map { "new-\(round)-\($0)" }
            for m in fresh { #expect(send(w, m) == .done) }
            let box = r.inbox(r.readDirection)
            var st = ipc_inbox_load(box)
            if round % 2 == 1 {
                // An earlier, recorded read that ended inside the second frame's header.
                let cut = 24 + "new-0-1".utf8.count + 2 + 10
                #expect(ipc_read_nowait(r.readFD, ipc_inbox_half(box, st.active) + Int(st.end), cut) == cut)
                st.end += UInt64(cut)
                ipc_inbox_store(box, st)
            }
            // What the killed receiver did: read into the inbox, and died before the store.
            let n = ipc_read_nowait(r.readFD, ipc_inbox_half(box, st.active) + Int(st.end), Int(IPC_INBOX_HALF) - Int(st.end))
            #expect(n > 0)
            #expect(ipc_inbox_load(box).end == st.end)
            ipc_inbox_recover(r.header, Int32(r.readDirection))
            #expect(receiveAll() == fresh)
        }
        // With nothing read, recovery finds nothing: stale frames never come back.
        ipc_inbox_recover(r.header, Int32(r.readDirection))
        #expect(receiveAll().isEmpty)
    }

    /// The pipe is non-blocking: a sender that fills it parks in poll(2) and goes on as a
    /// receiver drains it, and the message arrives whole. (400 kB is six pipes' worth, and
    /// the receiver starts late, so the sender finds the pipe full.)
    @Test func aFullPipeParksTheSenderUntilThereIsRoom() throws {
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        #expect(fcntl(w.writeFD, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(r.readFD, F_GETFL) & O_NONBLOCK != 0)
        let msg = String((0..<400_000).map { Character(Unicode.Scalar(UInt8(65 + $0 % 26))) })
        final class Result: @unchecked Sendable {
            var text = ""
            var outcome: Connection.ReceiveOutcome = .timedOut
            let done = DispatchSemaphore(value: 0)
        }
        let result = Result()
        nonisolated(unsafe) let receiver = r
        Thread.detachNewThread {
            usleep(50_000)
            let buf = ByteBuffer()
            result.outcome = receiver.receive(into: buf, deadline: .after(seconds: 60))
            result.text = String(decoding: buf.bytes, as: UTF8.self)
            result.done.signal()
        }
        #expect(send(w, msg) == .done)
        result.done.wait()
        #expect(result.outcome == .message(raw: false, id: 0))
        #expect(result.text == msg)
    }

    // MARK: - The lane (messages larger than 256 KiB)

    func send(_ c: Connection, bytes n: Int, _ fill: UInt8) -> Connection.SendOutcome {
        [UInt8](repeating: fill, count: n).withUnsafeBytes { c.send($0, raw: true) }
    }

    final class Sent: @unchecked Sendable {
        var outcome: Connection.SendOutcome = .closed
        let done = DispatchSemaphore(value: 0)
    }

    /// Sends `n` bytes of `fill` on another thread (the lane makes a sender wait for a
    /// receiver once its four slots are full).
    func sendLater(_ c: Connection, bytes n: Int, _ fill: UInt8) -> Sent {
        let sent = Sent()
        nonisolated(unsafe) let sender = c
        Thread.detachNewThread {
            sent.outcome = self.send(sender, bytes: n, fill)
            sent.done.signal()
        }
        return sent
    }

    func receiveByte(_ r: Connection, _ buf: ByteBuffer, seconds: Double = 10) -> UInt8? {
        guard r.receive(into: buf, deadline: .after(seconds: seconds)) == .message(raw: true, id: 0), buf.count > 0 else { return nil }
        return buf.base.load(as: UInt8.self)
    }

    /// Parts of large messages go through the four slots; a sender waits for a slot until
    /// the frame that last named it is consumed, and every byte arrives.
    @Test func largeMessagesGoThroughTheLane() throws {
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        let sizes = [Connection.laneAt + 1, Connection.laneSlot, 3 * Connection.laneSlot + 5, 9 * Connection.laneSlot]
        let sent = Sent()
        nonisolated(unsafe) let sender = w
        Thread.detachNewThread {
            for (k, n) in sizes.enumerated() { sent.outcome = self.send(sender, bytes: n, UInt8(k + 1)) }
            sent.done.signal()
        }
        let buf = ByteBuffer()
        for (k, n) in sizes.enumerated() {
            #expect(receiveByte(r, buf) == UInt8(k + 1))
            #expect(buf.count == n && buf.bytes.allSatisfy { $0 == UInt8(k + 1) })
        }
        #expect(sent.done.wait(timeout: .now() + 30) == .success && sent.outcome == .done)
    }

    /// Frame numbers wrap: a pipe whose numbers passed 2^31 before its first large
    /// message still finds its slots free (they were named by frames long consumed).
    @Test func slotsStayFreeWhenNumbersWrap() throws {
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        let box = w.inbox(w.writeDirection)
        let lane = w.lane(w.writeDirection)
        let saved = Connection.slotWaitSeconds
        Connection.slotWaitSeconds = 120
        defer { Connection.slotWaitSeconds = saved }
        for start: UInt32 in [0x8000_0010, 0xFFFF_FFF0] {
            box.pointee.sequence = start
            ipc_store32(&box.pointee.consumed, start)
            let next = lane.pointee.next
            let sent = sendLater(w, bytes: 5 * Connection.laneSlot, 9)
            let buf = ByteBuffer()
            #expect(receiveByte(r, buf) == 9 && buf.count == 5 * Connection.laneSlot)
            #expect(sent.done.wait(timeout: .now() + 30) == .success && sent.outcome == .done)
            #expect(lane.pointee.next &- next == 5, "every part went through a slot")
        }
    }

    /// A receiver killed after it counted a lane frame consumed but before it took the
    /// frame out of the inbox: the sender may have reused the slot, so the next receiver
    /// drops that message (the dead one's) rather than deliver another's bytes in it.
    @Test func aLaneFrameCountedConsumedIsNotReadAgain() throws {
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        for k in 1...4 { #expect(send(w, bytes: 512 << 10, UInt8(k)) == .done) }  // slots 0 to 3
        let box = r.inbox(r.readDirection)
        // The dead receiver: it read ahead and counted the first frame consumed.
        #expect(r.fill(box, minimum: 32, deadline: .now, midMessage: false) == .ok)
        let front = UnsafeRawPointer(ipc_inbox_front(box, ipc_inbox_load(box))!)
        ipc_store32(&box.pointee.consumed, front.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        #expect(send(w, bytes: 512 << 10, 5) == .done)  // into slot 0 again, at once
        let buf = ByteBuffer()
        for k: UInt8 in 2...5 { #expect(receiveByte(r, buf) == k) }
    }

    /// A sender waiting for a slot is woken by the frame that frees it, even when frames
    /// before that one were consumed first (small messages, here). Its wait before it
    /// gives the part to the pipe is made long, so a lost wake-up would show as a receive
    /// timing out.
    @Test func aSenderWaitingForASlotIsWokenByItsFrame() throws {
        let saved = Connection.slotWaitSeconds
        Connection.slotWaitSeconds = 120
        defer { Connection.slotWaitSeconds = saved }
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        for _ in 0..<10 { #expect(send(w, bytes: 100, 0) == .done) }
        #expect(send(w, bytes: 4 * Connection.laneSlot, 1) == .done)  // every slot
        let sent = sendLater(w, bytes: Connection.laneSlot, 2)
        let lane = w.lane(w.writeDirection)
        for _ in 0..<10_000 where ipc_load32(&lane.pointee.waiting) == 0 { usleep(1000) }  // it sleeps now
        let buf = ByteBuffer()
        for _ in 0..<10 {
            #expect(receiveByte(r, buf) == 0)
            usleep(20_000)  // time for the sender to wake, find no slot, and sleep again
        }
        #expect(receiveByte(r, buf) == 1)
        #expect(receiveByte(r, buf) == 2)
        #expect(sent.done.wait(timeout: .now() + 30) == .success && sent.outcome == .done)
    }

    /// No receiver takes parts: after a moment each part goes through the pipe itself, so
    /// a sender waits for ever only on a full pipe (the deadlock report sees that wait),
    /// and a receiver that comes later still gets the whole message.
    @Test func partsGoThroughThePipeWhenNoSlotComesFree() throws {
        let (r, w) = try Connection.pair(duplex: false, name: "p")
        let lane = w.lane(w.writeDirection)
        #expect(send(w, bytes: 4 * Connection.laneSlot, 1) == .done)  // every slot, unread
        #expect(lane.pointee.next == 4)
        let box = w.inbox(w.writeDirection)
        let written = ipc_load32(&box.pointee.written)
        let sent = sendLater(w, bytes: 2 * Connection.laneSlot + 3, 2)
        // Frames of the second message reach the pipe though no slot is free.
        for _ in 0..<10_000 where ipc_load32(&box.pointee.written) &- written < 4 { usleep(1000) }
        #expect(ipc_load32(&box.pointee.written) &- written >= 4 && lane.pointee.next == 4)
        let buf = ByteBuffer()
        #expect(receiveByte(r, buf) == 1 && buf.count == 4 * Connection.laneSlot)
        #expect(receiveByte(r, buf) == 2 && buf.count == 2 * Connection.laneSlot + 3)
        #expect(buf.bytes.allSatisfy { $0 == 2 })
        #expect(sent.done.wait(timeout: .now() + 30) == .success && sent.outcome == .done)
    }

    /// The frames' checksum is CRC-32C at every length and alignment: three interleaved
    /// streams for the long ones, joined by shifts, one stream for the rest.
    @Test func crc32cMatchesTheBitwiseDefinition() {
        func bitwise(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                c ^= UInt32(b)
                for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            }
            return ~c
        }
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { ipc_crc32c(0, $0.baseAddress, $0.count) } == 0xE306_9283)
        var x: UInt32 = 12345
        let data = (0..<(5 * 1024 + 64)).map { _ -> UInt8 in
            x = x &* 1_103_515_245 &+ 12345
            return UInt8(truncatingIfNeeded: x >> 16)
        }
        data.withUnsafeBytes { all in
            for length in [0, 1, 7, 8, 255, 767, 768, 769, 1000, 3071, 3072, 3073, 3839, 3840, 4072, 4096, 5000] {
                for offset in [0, 1, 3, 8] {
                    let part = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    #expect(ipc_crc32c(0, part.baseAddress, length) == bitwise(part), "length \(length), offset \(offset)")
                }
            }
        }
    }
}
