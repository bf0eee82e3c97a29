import Foundation
import IPCRuntime
import Testing

/// The swim-lane timeline drawn from a trace: causal order, blocking bars, cost.
@Suite("Timeline")
struct TimelineTests {
    /// Writes trace lines (as `Trace` writes them) to a temporary file; returns its path.
    static func trace(_ lines: [String]) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("timeline-\(UUID().uuidString).json")
        try ("[\n" + lines.map { $0 + ",\n" }.joined() + "{\"ph\":\"M\",\"name\":\"trace_end\",\"pid\":0,\"tid\":0,\"args\":{}}\n]\n")
            .write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static func process(_ pid: Int, _ name: String, order: Int) -> [String] {
        ["{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":\(pid),\"tid\":\(pid),\"args\":{\"name\":\"\(name)\"}}",
         "{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":\(pid),\"tid\":\(pid),\"args\":{\"sort_index\":\(order)}}"]
    }

    static func call(_ pid: Int, _ name: String, ts: Double, dur: Double, waited: Int = 0, object: String = "pipe#1") -> String {
        "{\"ph\":\"X\",\"name\":\"\(name)\",\"ts\":\(ts),\"dur\":\(dur),\"pid\":\(pid),\"tid\":\(pid),\"args\":{\"object\":\"\(object)\",\"waited_us\":\(waited)}}"
    }

    static func flow(_ ph: String, _ pid: Int, id: Int, ts: Double) -> String {
        "{\"ph\":\"\(ph)\",\"name\":\"message\",\"cat\":\"message\",\"id\":\(id),\"ts\":\(ts),\"pid\":\(pid),\"tid\":\(pid)}"
    }

    /// A receive that blocked for 0.3 ms, and one that did not block but began before its
    /// message was sent: each is drawn after the send it received (the first as a bar
    /// from where it began), never before.
    @Test func aReceiveIsNeverDrawnBeforeItsSend() throws {
        var lines = Self.process(1, "Sender", order: 0) + Self.process(2, "Blocked", order: 1) + Self.process(3, "Quick", order: 2)
        lines += [
            Self.call(2, "connection:recv", ts: 1000, dur: 500, waited: 300),  // blocked 0.3 ms
            Self.flow("f", 2, id: 7, ts: 1250),
            Self.call(3, "connection:recv", ts: 1100, dur: 300, object: "pipe#2"),  // no wait, began first
            Self.flow("f", 3, id: 8, ts: 1250),
            Self.call(1, "connection:send", ts: 1200, dur: 50),
            Self.flow("s", 1, id: 7, ts: 1225),
            Self.call(1, "connection:send", ts: 1260, dur: 20, object: "pipe#2"),
            Self.flow("s", 1, id: 8, ts: 1270),
        ]
        let path = try Self.trace(lines)
        defer { unlink(path) }
        let rows = Timeline(tracePath: path).render(columns: 100, colour: false).split(separator: "\n").map(String.init)
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
        var lines: [String] = []
        let processes = 200
        for p in 0..<processes {
            lines += Self.process(p + 1, p == 0 ? "MainProcess" : "Process-\(p)", order: p)
        }
        var ts = 1000.0
        for round in 0..<5 {
            for p in 0..<processes {
                let id = round * 1000 + p + 1
                lines.append(Self.call(p + 1, "connection:send", ts: ts, dur: 10, object: "pipe#\(p)"))
                lines.append(Self.flow("s", p + 1, id: id, ts: ts + 5))
                lines.append(Self.call((p + 1) % processes + 1, "connection:recv", ts: ts + 2, dur: 20, waited: round % 2 * 5, object: "pipe#\(p)"))
                lines.append(Self.flow("f", (p + 1) % processes + 1, id: id, ts: ts + 12))
                ts += 30
            }
        }
        let path = try Self.trace(lines)
        defer { unlink(path) }
        let clock = ContinuousClock()
        var text = "", svg = ""
        var picture: Timeline?
        let parse = clock.measure { picture = Timeline(tracePath: path) }
        let draw = clock.measure { text = picture!.render(columns: 200, colour: true) }
        let drawSVG = clock.measure { svg = picture!.svg() }
        let elapsed = parse + draw + drawSVG
        #expect(text.split(separator: "\n").count > 2000 && svg.contains("Process-199"))
        // About a second in a debug build on a loaded machine, less in a release build;
        // minutes when each line cost its width squared (the bound leaves room for load).
        #expect(elapsed < .seconds(20), "drawing 200 processes took \(elapsed): reading \(parse), text \(draw), SVG \(drawSVG)")
    }
}
