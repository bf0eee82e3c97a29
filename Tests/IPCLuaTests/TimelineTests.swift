import Foundation
import IPCCore
import IPCRuntime
import Testing

/// The swim-lane timeline drawn from a run's recorded events: causal order, blocking
/// bars, cost, and the records they travel in.
@Suite("Timeline")
struct TimelineTests {
    /// The timeline of `events`, read back from their records (as a run's file holds them).
    static func timeline(_ events: [TraceEvent]) -> Timeline {
        let buffer = ByteBuffer(capacity: 1 << 16)
        for e in events { e.record(into: buffer) }
        return Timeline(events: TraceEvent.decode(buffer.bytes))
    }

    static func process(_ pid: Int32, _ name: String, order: Int64) -> [TraceEvent] {
        var e = TraceEvent(kind: .lane, pid: pid, name: name)
        e.index = order
        return [e]
    }

    /// A call from `ts` for `dur` microseconds, parked `waited` of them; it received
    /// message `flowIn` or sent `flowOut`.
    static func call(_ pid: Int32, _ name: String, ts: Int64, dur: Int64, waited: Int64 = 0, object: String = "pipe#1",
                     flowIn: UInt64 = 0, flowOut: UInt64 = 0) -> TraceEvent {
        var e = TraceEvent(kind: .call, pid: pid, name: name)
        (e.object, e.start, e.end, e.waited, e.flowIn, e.flowOut) = (object, ts * 1000, (ts + dur) * 1000, waited * 1000, flowIn, flowOut)
        return e
    }

    /// The records of a file are read back as the events written, values and all; a
    /// record cut short (its writer killed in its write) is skipped, and the ones after it
    /// are read.
    @Test func recordsReadBackAsTheEventsWritten() throws {
        var send = Self.call(1, "queue:put", ts: 10, dur: 5, object: "queue#1", flowOut: 9)
        send.value = "\"héllo\""
        send.result = "true"
        send.step = 4
        var mark = TraceEvent(kind: .mark, pid: 2, name: "exit Process-1 (3)")
        mark.index = 3
        let events = Self.process(1, "MainProcess", order: 0) + [send, mark]
        let whole = ByteBuffer(capacity: 1024)
        for e in events { e.record(into: whole) }
        #expect(TraceEvent.decode(whole.bytes) == events)

        let cut = ByteBuffer(capacity: 1024)
        events[0].record(into: cut)
        let half = ByteBuffer(capacity: 1024)
        send.record(into: half)
        cut.append(UnsafeRawBufferPointer(rebasing: half.bytes[0..<half.count / 2]))
        mark.record(into: cut)
        #expect(TraceEvent.decode(cut.bytes) == [events[0], mark])
    }

    /// A receive that blocked for 0.3 ms, and one that did not block but began before its
    /// message was sent: each is drawn after the send it received (the first as a bar
    /// from where it began), never before.
    @Test func aReceiveIsNeverDrawnBeforeItsSend() throws {
        var events = Self.process(1, "Sender", order: 0) + Self.process(2, "Blocked", order: 1) + Self.process(3, "Quick", order: 2)
        events += [
            Self.call(2, "connection:recv", ts: 1000, dur: 500, waited: 300, flowIn: 7),  // blocked 0.3 ms
            Self.call(3, "connection:recv", ts: 1100, dur: 300, object: "pipe#2", flowIn: 8),  // no wait, began first
            Self.call(1, "connection:send", ts: 1200, dur: 50, flowOut: 7),
            Self.call(1, "connection:send", ts: 1260, dur: 20, object: "pipe#2", flowOut: 8),
        ]
        let rows = Self.timeline(events).render(columns: 100, colour: false).split(separator: "\n").map(String.init)
        func row(_ what: (String) -> Bool) -> Int? { rows.firstIndex(where: what) }
        let firstSend = try #require(row { $0.contains("send pipe#1") }, "\(rows.joined(separator: "\n"))")
        let secondSend = try #require(row { $0.contains("send pipe#2") })
        let blockedBegins = try #require(row { $0.contains("┬ recv pipe#1") }, "a receive that blocked is a bar:\n\(rows.joined(separator: "\n"))")
        let blockedReturns = try #require(row { $0.contains("┴ recv") })
        let quick = try #require(row { $0.contains("recv pipe#2") })
        #expect(blockedBegins < firstSend && firstSend < blockedReturns, "\(rows.joined(separator: "\n"))")
        #expect(secondSend < quick, "\(rows.joined(separator: "\n"))")
        #expect(rows[blockedReturns].contains("▶") || rows[blockedReturns].contains("◀"), "the message's arrow ends where the receive returned")
    }

    /// 200 processes, each sending to the next: drawing costs O(events × processes)
    /// (it was cubic in the processes: 25 s for 200, minutes for this trace).
    @Test func twoHundredProcessesDrawInLinearTimePerLane() throws {
        var events: [TraceEvent] = []
        let processes: Int32 = 200
        for p in 0..<processes {
            events += Self.process(p + 1, p == 0 ? "MainProcess" : "Process-\(p)", order: Int64(p))
        }
        var ts: Int64 = 1000
        for round in 0..<5 {
            for p in 0..<processes {
                let id = UInt64(round * 1000) + UInt64(p) + 1
                events.append(Self.call(p + 1, "connection:send", ts: ts, dur: 10, object: "pipe#\(p)", flowOut: id))
                events.append(Self.call((p + 1) % processes + 1, "connection:recv", ts: ts + 2, dur: 20, waited: Int64(round % 2 * 5),
                                        object: "pipe#\(p)", flowIn: id))
                ts += 30
            }
        }
        let clock = ContinuousClock()
        var text = "", svg = ""
        var picture: Timeline?
        let parse = clock.measure { picture = Self.timeline(events) }
        let draw = clock.measure { text = picture!.render(columns: 200, colour: true) }
        let drawSVG = clock.measure { svg = picture!.svg() }
        let elapsed = parse + draw + drawSVG
        #expect(text.split(separator: "\n").count > 2000 && svg.contains("Process-199"))
        // About a second in a debug build on a loaded machine, less in a release build;
        // minutes when each line cost its width squared (the bound leaves room for load).
        #expect(elapsed < .seconds(20), "drawing 200 processes took \(elapsed): reading \(parse), text \(draw), SVG \(drawSVG)")
    }
}
