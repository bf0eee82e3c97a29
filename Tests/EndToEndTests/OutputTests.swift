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

    @Test(.needsPython3) func throughAPipeInRealTime() throws {
        // A pipe to a reader that answers each line: the child writes "first" and then
        // waits (up to 60 s) for the reader to say it has read it. Were output held back
        // until the child exits (block buffering), the reader would see nothing while the
        // child waits. No timing is measured: the child's wait just ends, or times out.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipcplay-out-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let seen = dir.appendingPathComponent("seen")
        let script = dir.appendingPathComponent("rt.lua")
        try """
            local p = ipc.spawn(function()
              print("first")
              local t0 = ipc.now()
              while not io.open("\(seen.path)") and ipc.now() - t0 < 60 do ipc.sleep(0.01) end
              print(io.open("\(seen.path)") and "second: the reader had the first line" or "second: timed out")
            end)
            io.write("main line\\n")
            p:join()
            """.write(to: script, atomically: true, encoding: .utf8)
        let reader = dir.appendingPathComponent("reader.py")
        try """
            import sys
            for line in sys.stdin:
                print(line.strip(), flush=True)
                if line.strip() == "first":
                    open(sys.argv[1], "w").close()
            """.write(to: reader, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "'\(Ipcplay.binary)' '\(script.path)' | python3 -u '\(reader.path)' '\(seen.path)'"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = Set(String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init))
        #expect(lines == ["main line", "first", "second: the reader had the first line"], "\(lines)")
        let r = try Ipcplay.run(["run", "tests/output_test.lua", "4", "100"])
        check(r.stdout, workers: 4, lines: 100)
    }
}
