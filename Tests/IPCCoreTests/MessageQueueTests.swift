import IPCCore
import Testing

/// The ring in one process (multi-process behaviour is tested end to end).
@Suite("Message queue ring, in one process")
struct MessageQueueTests {
    func put(_ q: MessageQueue, _ s: String, deadline: Deadline = .now) -> MessageQueue.PutOutcome {
        var s = s
        return s.withUTF8 { q.put(UnsafeRawBufferPointer($0), deadline: deadline) }
    }

    func get(_ q: MessageQueue, deadline: Deadline = .now) -> String? {
        let b = ByteBuffer()
        guard case .item = q.get(into: b, deadline: deadline) else { return nil }
        return String(decoding: b.bytes, as: UTF8.self)
    }

    @Test func fifoAndCounts() throws {
        let q = try MessageQueue(maxsize: 0, joinable: false, name: "t")
        #expect(q.isEmpty)
        for i in 0..<100 { #expect(put(q, "item \(i)") == .done) }
        #expect(q.count == 100)
        for i in 0..<100 { #expect(get(q) == "item \(i)") }
        #expect(q.isEmpty)
        #expect(get(q) == nil)
    }

    @Test func maxsizeBlocksUntilTimeout() throws {
        let q = try MessageQueue(maxsize: 2, joinable: false, name: "t")
        #expect(put(q, "a") == .done)
        #expect(put(q, "b") == .done)
        #expect(q.isFull)
        let start = MonotonicClock.seconds()
        #expect(put(q, "c", deadline: .after(seconds: 0.2)) == .timedOut)
        #expect(MonotonicClock.seconds() - start >= 0.19)
        #expect(get(q) == "a")
        #expect(put(q, "c") == .done)
    }

    @Test func getTimesOutOnEmpty() throws {
        let q = try MessageQueue(maxsize: 0, joinable: false, name: "t")
        let start = MonotonicClock.seconds()
        #expect(get(q, deadline: .after(seconds: 0.2)) == nil)
        #expect(MonotonicClock.seconds() - start >= 0.19)
    }

    @Test func wrapsAroundASmallRing() throws {
        // 4 KiB ring, 1000-byte items: the ring wraps many times; order and bytes hold.
        let q = try MessageQueue(maxsize: 0, capacity: 4096, joinable: false, name: "t")
        var next = 0
        var expected = 0
        for round in 0..<200 {
            while put(q, String(repeating: Character(UnicodeScalar(65 + next % 26)!), count: 900 + round % 50) + "#\(next)") == .done {
                next += 1
            }
            // Take a couple, leave the rest: head and tail chase each other.
            for _ in 0..<2 {
                let s = get(q)
                #expect(s?.hasSuffix("#\(expected)") == true)
                expected += 1
            }
        }
        while let s = get(q) {
            #expect(s.hasSuffix("#\(expected)"))
            expected += 1
        }
        #expect(expected == next)
    }

    @Test func joinableCounts() throws {
        let q = try MessageQueue(maxsize: 0, joinable: true, name: "t")
        #expect(q.join(deadline: .now))
        #expect(put(q, "x") == .done)
        #expect(put(q, "y") == .done)
        #expect(!q.join(deadline: .after(seconds: 0.05)))
        _ = get(q)
        #expect(q.taskDone())
        #expect(q.unfinishedTasks == 1)
        #expect(q.taskDone())
        #expect(!q.taskDone(), "task_done more often than items were put")
        #expect(q.join(deadline: .now))
    }

    @Test func emptyMessagesAndLargeOnes() throws {
        let q = try MessageQueue(maxsize: 0, joinable: false, name: "t")
        #expect(put(q, "") == .done)
        #expect(get(q) == "")
        let big = String(repeating: "z", count: 3 << 20)
        #expect(put(q, big) == .done)
        #expect(get(q) == big)
    }

    /// A message given as head and body goes in as one, streamed (beyond the hot zone
    /// too) or not, and comes out byte for byte.
    @Test func messagesInTwoParts() throws {
        let q = try MessageQueue(maxsize: 0, joinable: false, name: "t")
        for (headSize, bodySize) in [(3, 10), (0, 100), (5, (9 << 20) + 3), ((2 << 20) + 1, (5 << 20) + 5)] {
            let head = (0..<headSize).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
            let body = (0..<bodySize).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
            let outcome = head.withUnsafeBytes { h in
                body.withUnsafeBytes { b in q.put(MessageParts(head: h, body: b), deadline: .now) }
            }
            #expect(outcome == .done)
            let out = ByteBuffer()
            guard case .item = q.get(into: out, deadline: .now) else {
                Issue.record("no item for \(headSize)+\(bodySize)")
                continue
            }
            #expect(Array(out.bytes) == head + body, "\(headSize)+\(bodySize)")
        }
        #expect(q.isEmpty)
    }
}
