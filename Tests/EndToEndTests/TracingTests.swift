import CRuntimeShim
import Foundation
import Testing

/// `--trace` (Chrome trace JSON, checked with Python's json) and `--timeline`.
@Suite("Tracing and timelines")
struct TracingTests {
    func python(_ code: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", code] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return out
    }

    func temp(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("ipcplay-\(UUID().uuidString.prefix(8))-\(name)")
    }

    static let check = """
        import json, sys
        ev = json.load(open(sys.argv[1]))
        names = sorted(e["args"]["name"] for e in ev if e.get("ph") == "M" and e.get("name") == "process_name")
        pids = {e["pid"] for e in ev if e.get("ph") == "M" and e.get("name") == "process_name"}
        starts = [e for e in ev if e["ph"] == "s"]
        ends = [e for e in ev if e["ph"] == "f"]
        ids_s = [e["id"] for e in starts]; ids_f = [e["id"] for e in ends]
        assert len(ids_s) == len(set(ids_s)), "a flow id used twice"
        assert all(e.get("bp") == "e" for e in ends)
        xs = [e for e in ev if e["ph"] == "X"]
        # every flow end sits inside a slice of its own process
        for f in ends:
            assert any(x["pid"] == f["pid"] and x["ts"] <= f["ts"] <= x["ts"] + x["dur"] for x in xs), f
        for s in starts:
            assert any(x["pid"] == s["pid"] and x["ts"] <= s["ts"] <= x["ts"] + x["dur"] for x in xs), s
        puts = [x for x in xs if x["name"] == "queue:put"]
        gets = [x for x in xs if x["name"] == "queue:get"]
        sleeps = [x for x in xs if x["name"] == "ipc.sleep"]
        counters = [e for e in ev if e["ph"] == "C"]
        print("names", ",".join(names))
        print("tracks", len(pids))
        print("flows", len(ids_s), len(ids_f), len(set(ids_s) & set(ids_f)))
        print("puts", len(puts), "gets", len(gets), "sleeps", len(sleeps), "counters", len(counters))
        print("objects", ",".join(sorted({x["args"]["object"] for x in puts})))
        print("values", ",".join(x["args"].get("value", "?") for x in gets))
        # the first get waited through the producer's first sleep: its slice covers the sleep's end
        s0 = min(sleeps, key=lambda s: s["ts"])
        g0 = min(gets, key=lambda g: g["ts"])
        print("covers", g0["ts"] <= s0["ts"] + s0["dur"] <= g0["ts"] + g0["dur"], g0["args"]["waited_us"] > 0)
        """

    @Test(.needsPython3) func traceOfAKnownScenario() throws {
        let trace = temp("t.json")
        defer { try? FileManager.default.removeItem(at: trace) }
        let r = try Ipcplay.runLua("""
            local q = ipc.queue(2, {name = "jobs"})
            local p = ipc.process{name = "producer", target = function()
              for i = 1, 5 do ipc.sleep(0.2) q:put("item " .. i) end
            end}
            p:start()
            for i = 1, 5 do q:get() end
            p:join()
            """, options: ["--trace", trace.path])
        #expect(r.status == 0, "\(r.combined)")
        let out = try python(Self.check, [trace.path])
        #expect(out.contains("names MainProcess,producer\n"), "\(out)")
        #expect(out.contains("tracks 2\n"))
        #expect(out.contains("flows 5 5 5\n"), "one flow per delivered message: \(out)")
        #expect(out.contains("puts 5 gets 5 sleeps 5"), "\(out)")
        #expect(out.contains("objects jobs\n"))
        #expect(out.contains("values \"item 1\",\"item 2\",\"item 3\",\"item 4\",\"item 5\"\n"), "\(out)")
        #expect(out.contains("covers True True"), "the blocked get covers the producer's sleep: \(out)")
    }

    @Test(.needsPython3) func producerConsumerTrace() throws {
        let trace = temp("pc.json")
        defer { try? FileManager.default.removeItem(at: trace) }
        let r = try Ipcplay.run(["run", "--trace", trace.path, "--time-scale", "0.02", "scripts/producer_consumer.lua"])
        #expect(r.status == 0, "\(r.combined)")
        let out = try python(Self.check, [trace.path])
        #expect(out.contains("names MainProcess,Process-1,Process-2,Process-3\n"), "\(out)")
        #expect(out.contains("flows 7 7 7\n"), "six items and the nil end marker: \(out)")
    }

    @Test(.needsPython3) func aTraceCutOffByTimeoutStillParses() throws {
        let trace = temp("cut.json")
        defer { try? FileManager.default.removeItem(at: trace) }
        let r = try Ipcplay.runLua("""
            local q = ipc.queue()
            local p = ipc.spawn(function() for i = 1, 3 do q:put(i) end ipc.sleep(60) end)
            for i = 1, 3 do q:get() end
            q:get()
            """, options: ["--trace", trace.path, "--timeout", "1.5"])
        #expect(r.status == 124, "\(r.combined)")
        let out = try python("import json,sys; ev = json.load(open(sys.argv[1])); print(len([e for e in ev if e['ph'] == 'f']))", [trace.path])
        #expect(out == "3\n", "\(out)")
    }

    /// Processes SIGKILLed while they write their batches of events: the kernel stops a
    /// write into a file at a page boundary when a fatal signal is pending, and the next
    /// batch goes on from the middle of the cut line. The host's end cuts those fragments
    /// out, so the trace still parses. (Without the repair, 300 rounds left at least one
    /// fragment in every run tried.)
    @Test func processesKilledMidWriteLeaveAParsableTrace() throws {
        let trace = temp("killed.json")
        defer { try? FileManager.default.removeItem(at: trace) }
        let r = try Ipcplay.runLua("""
            local v = ipc.value("i", 0)
            for _ = 1, 300 do
              local writers = {}
              local start = v.value
              for _ = 1, 2 do
                writers[#writers + 1] = ipc.spawn(function() while true do v:add(1) end end)
              end
              -- Enough adds each round, however loaded the machine: a killed writer loses
              -- at most its unflushed batch, so the trace keeps thousands of them.
              while v.value < start + 3000 do ipc.sleep(0.001) end
              ipc.sleep(math.random() * 0.01)
              for _, p in ipairs(writers) do p:kill() end
              for _, p in ipairs(writers) do p:join() end
            end
            print("adds", v.value)
            """, options: ["--trace", trace.path], limit: 200)
        #expect(r.status == 0, "\(r.combined)")
        let events = try JSONSerialization.jsonObject(with: Data(contentsOf: trace)) as? [[String: Any]] ?? []
        let adds = events.filter { $0["name"] as? String == "value:add" }.count
        #expect(adds > 1000, "\(events.count) events")
        #expect(events.filter { $0["name"] as? String == "process:kill" }.count == 600)
    }

    /// The repair itself, on a file made by hand: fragments in the middle, across the
    /// 64 KiB read chunks, one right after another, and one at the end of the file.
    @Test func fragmentsAreCutAndWholeEventsKept() throws {
        func event(_ i: Int) -> String {
            "{\"ph\":\"X\",\"name\":\"value:add\",\"ts\":\(i),\"args\":{\"object\":\"v{\\\"ph\\\"\",\"n\":\(i)}},\n"
        }
        func fragment(_ i: Int) -> String { String(event(i).prefix(10 + i % 60)) }
        var file = "[\n", whole = "[\n"
        var cuts = 0
        for i in 0..<3000 {
            let e = event(i)
            if i % 97 == 5 {
                file += fragment(i)
                cuts += 1
            }
            if i % 401 == 6 {  // two in a row
                file += fragment(i) + fragment(i + 1)
                cuts += 2
            }
            file += e
            whole += e
        }
        file += fragment(7)
        cuts += 1
        #expect(file.utf8.count > 3 * 65536)
        let path = temp("fragments.json")
        defer { try? FileManager.default.removeItem(at: path) }
        try file.write(to: path, atomically: true, encoding: .utf8)
        let fd = open(path.path, O_RDWR)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(ipc_trace_cut_fragments(fd) == Int32(cuts))
        #expect(try String(contentsOf: path, encoding: .utf8) == whole)
        // A whole file is left as it is.
        #expect(ipc_trace_cut_fragments(fd) == 0)
        #expect(try String(contentsOf: path, encoding: .utf8) == whole)
    }

    /// The lanes of a timeline and the calls in each, read back from its text.
    func shape(_ text: String) -> [String: [String]] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let header = lines.firstIndex(where: { $0.hasPrefix("time ") }) else { return [:] }
        let names = lines[header].split(separator: " ").dropFirst().map(String.init)
        let starts = names.map { name in lines[header].distance(from: lines[header].startIndex, to: lines[header].range(of: name)!.lowerBound) }
        var lanes: [String: [String]] = [:]
        for line in lines[(header + 2)...] where !line.isEmpty {
            let chars = Array(line)
            for (i, start) in starts.enumerated() where start < chars.count {
                let end = i + 1 < starts.count ? min(starts[i + 1], chars.count) : chars.count
                let cell = String(chars[start..<end]).trimmingCharacters(in: CharacterSet(charactersIn: " │┼─▶◀"))
                if cell.isEmpty { continue }
                let word = cell.split(separator: " ").first.map(String.init) ?? ""
                lanes[names[i], default: []].append(word == "┬" || word == "┴" || word == "•" ? cell.split(separator: " ").dropFirst().first.map(String.init) ?? "" : word)
            }
        }
        return lanes
    }

    @Test func timelineShape() throws {
        let script = """
            local q = ipc.queue(0, {name = "jobs"})
            local p = ipc.process{name = "maker", target = function() for i = 1, 3 do q:put(i) end end}
            p:start()
            p:join()
            for i = 1, 3 do q:get() end
            """
        let r = try Ipcplay.runLua(script, options: ["--timeline"])
        #expect(r.status == 0, "\(r.combined)")
        let lanes = shape(r.stdout)
        #expect(lanes.keys.sorted() == ["MainProcess", "maker"], "\(r.stdout)")
        #expect(lanes["maker"]?.filter { $0 == "put" }.count == 3, "\(r.stdout)")
        #expect(lanes["MainProcess"]?.filter { $0 == "get" }.count == 3, "\(r.stdout)")
        #expect(lanes["MainProcess"]?.contains("join") == true)
        #expect(!r.stdout.contains("\u{1B}["), "no colours when stdout is not a terminal")
        // Fits 80 columns for up to four processes.
        let pc = try Ipcplay.run(["run", "--timeline", "--time-scale", "0.02", "scripts/producer_consumer.lua"])
        let picture = pc.stdout.split(separator: "\n").drop { !$0.hasPrefix("time ") }
        #expect(picture.count > 20)
        #expect(picture.allSatisfy { $0.count <= 80 }, "\(picture.filter { $0.count > 80 })")
        #expect(picture.contains { $0.contains("▶") }, "messages are drawn as arrows")
    }

    /// Under virtual time (--sched) every row would say 0.000s: the rows carry step numbers,
    /// in order, each call's row the step it was made at.
    @Test func timelineUnderVirtualTimeNumbersSteps() throws {
        let r = try Ipcplay.runLua("""
            local q = ipc.queue()
            local p = ipc.spawn(function() for i = 1, 3 do q:put(i) end end)
            for _ = 1, 3 do q:get() end
            p:join()
            """, options: ["--sched", "random", "--seed", "2", "--timeline"])
        #expect(r.status == 0, "\(r.combined)")
        let rows = r.stdout.split(separator: "\n").drop { !$0.hasPrefix("step ") }.dropFirst(2)
        #expect(rows.count > 10, "\(r.stdout)")
        #expect(!r.stdout.contains("0.000s"), "\(r.stdout)")
        let steps = rows.compactMap { Int($0.prefix(8).trimmingCharacters(in: .whitespaces)) }
        #expect(steps.count == rows.count && steps == steps.sorted() && (steps.last ?? 0) >= 10, "\(r.stdout)")
        #expect(rows.contains { $0.contains("get queue#1 1") }, "\(r.stdout)")
    }

    @Test(.needsPython3) func timelineSVG() throws {
        let svg = temp("run.svg")
        defer { try? FileManager.default.removeItem(at: svg) }
        let r = try Ipcplay.run(["run", "--timeline=\(svg.path)", "--time-scale", "0.02", "scripts/producer_consumer.lua"])
        #expect(r.status == 0, "\(r.combined)")
        let out = try python("""
            import sys, xml.etree.ElementTree as ET
            root = ET.parse(sys.argv[1]).getroot()
            ns = "{http://www.w3.org/2000/svg}"
            print(root.tag == ns + "svg", len(root.findall(ns + "rect")) > 10, len(root.findall(ns + "line")) > 5)
            """, [svg.path])
        #expect(out == "True True True\n", "\(out)")
    }
}
