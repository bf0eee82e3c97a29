import Foundation
import Testing

@Suite("Output: whole lines from every process, once")
struct OutputTests {
    func check(_ stdout: String, workers: Int, lines: Int) {
        var seen: [String: Int] = [:]
        var bad = 0
        for line in stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.contains("worker ") else { continue }
            let body = line[line.range(of: "worker ")!.lowerBound...]
            let f = body.split(separator: " ")
            if f.count != 6 || f.last != "end" { bad += 1; continue }
            seen["\(f[1]) \(f[3])", default: 0] += 1
        }
        #expect(bad == 0, "spliced lines")
        #expect(seen.count == workers * lines)
        #expect(seen.values.allSatisfy { $0 == 1 }, "a line was printed twice")
        #expect(stdout.components(separatedBy: "partial line before fork, completed\n").count == 2)
        #expect(stdout.components(separatedBy: "pending ").count == 2, "a pending partial line was printed twice")
        #expect(stdout.hasSuffix("all done\n"))
    }

    @Test func toAFile() throws {
        let r = try Ipcplay.run(["run", "tests/output_test.lua", "6", "150"])
        #expect(r.status == 0, "\(r.stderr)")
        check(r.stdout, workers: 6, lines: 150)
    }

    @Test func throughAPipeInRealTime() throws {
        // A pipe to a reader that timestamps each line as it arrives: lines written by a
        // child before it sleeps must arrive before the sleep ends (no block buffering).
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipcplay-out-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("rt.lua")
        try """
            local p = ipc.spawn(function() print("first") ipc.sleep(1.5) print("second") end)
            io.write("main line\\n")
            p:join()
            """.write(to: script, atomically: true, encoding: .utf8)
        let reader = dir.appendingPathComponent("reader.py")
        try """
            import sys, time
            t0 = time.monotonic()
            for line in sys.stdin:
                print("%.2f %s" % (time.monotonic() - t0, line.strip()), flush=True)
            """.write(to: reader, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "'\(Ipcplay.binary)' '\(script.path)' | python3 -u '\(reader.path)'"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        let times = Dictionary(uniqueKeysWithValues: lines.map { l -> (String, Double) in
            let parts = l.split(separator: " ", maxSplits: 1)
            return (String(parts[1]), Double(parts[0]) ?? -1)
        })
        #expect(times.count == 3, "\(lines)")
        if let first = times["first"], let second = times["second"] {
            #expect(second - first >= 1.0, "'first' arrived only with 'second': \(lines)")
        }
        let r = try Ipcplay.run(["run", "tests/output_test.lua", "4", "100"])
        check(r.stdout, workers: 4, lines: 100)
    }
}
