import Foundation
import Testing

/// Every call passes the gate: a script that makes every call of the module (Fixtures/
/// every_call.lua) leaves a trace slice for each, under the names of docs/api.md.
@Suite("The gate: every call is seen")
struct GateTests {
    /// Methods written as other calls: `v:with_lock(f)` is `value:lock`, `f`, `value:unlock`,
    /// and those are its slices.
    static let composed: Set<String> = ["with", "with_lock", "with_read", "with_write", "wait_for"]

    /// The calls that are neither methods nor module functions (the script lists those):
    /// fields and the runtime's own.
    static let others = [
        "value read", "value write", "array read", "array write",
        "process.exitcode", "barrier.n_waiting", "barrier.broken", "process start", "process end",
    ]

    @Test func everyCallHasATraceSlice() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ipcplay-gate-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.json")
        let script = Ipcplay.packageRoot.appendingPathComponent("Tests/EndToEndTests/Fixtures/every_call.lua")
        let r = try Ipcplay.run(["run", "--trace", trace.path, script.path, dir.path])
        #expect(r.status == 0, "\(r.combined)")

        // The script lists each type's methods (kind, then names) and the module's functions.
        var expected = Self.others
        var functions: [String] = []
        for line in r.stdout.split(separator: "\n") where line.hasPrefix("methods ") {
            let words = line.split(separator: " ").map(String.init)
            expected += words.dropFirst(2).filter { !Self.composed.contains($0) }.map { "\(words[1]):\($0)" }
        }
        for line in r.stdout.split(separator: "\n") where line.hasPrefix("functions ") {
            functions += line.split(separator: " ").dropFirst().map(String.init)
        }
        expected += functions
        #expect(expected.count > Self.others.count + 90, "the script printed its types' methods and the functions: \(r.stdout)")

        let events = try JSONSerialization.jsonObject(with: Data(contentsOf: trace)) as? [[String: Any]] ?? []
        let slices = Set(events.filter { $0["ph"] as? String == "X" }.compactMap { $0["name"] as? String })
        let missing = expected.filter { !slices.contains($0) }
        #expect(missing.isEmpty, "calls with no trace slice: \(missing)")

        // The names are those docs/api.md uses: a method as kind:method, the rest as listed.
        let api = try String(contentsOf: Ipcplay.packageRoot.appendingPathComponent("docs/api.md"), encoding: .utf8)
        let undocumented = (Self.others + functions).filter { !api.contains("`\($0)") }
        #expect(undocumented.isEmpty, "call names not in docs/api.md: \(undocumented)")
        // Each method under its type's heading, as `x:method` or `kind:method`.
        let methods = expected.filter { $0.contains(":") }.map { String($0.split(separator: ":")[1]) }
        let unmentioned = Set(methods).filter { !api.contains(":\($0)(") && !api.contains(":\($0)`") }
        #expect(unmentioned.isEmpty, "methods not in docs/api.md: \(unmentioned.sorted())")
    }

    /// The C fast paths (small queue items, small pipe messages, semaphores, locks, `v.value`,
    /// a joinable queue's task_done)
    /// stand in for the gate only while no hook watches it: with a trace, the same script
    /// passes with every one of those calls in Swift, each with its slice.
    @Test func fastPathsAgreeWithTheGate() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ipcplay-fast-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.json")
        // (Plain, it runs with the other scenarios. Here a shorter stream: its trace is read whole.)
        let traced = try Ipcplay.run(["run", "--trace", trace.path, "tests/fast_paths_test.lua", "7", "5000"], limit: 200)
        #expect(traced.status == 0 && traced.stdout.contains("fast paths test ok"), "\(traced.combined)")

        let events = try JSONSerialization.jsonObject(with: Data(contentsOf: trace)) as? [[String: Any]] ?? []
        var slices: [String: Int] = [:]
        for e in events where e["ph"] as? String == "X" {
            if let name = e["name"] as? String { slices[name, default: 0] += 1 }
        }
        // The stream alone puts 5,000 items; the ping-pong makes 5,000 turns.
        #expect(slices["queue:put", default: 0] > 5_000, "\(slices)")
        #expect(slices["queue:get", default: 0] > 5_000, "\(slices)")
        #expect(slices["semaphore:acquire", default: 0] >= 10_000, "\(slices)")
        #expect(slices["joinable_queue:task_done", default: 0] >= 5_000, "\(slices)")
        #expect(slices["connection:send", default: 0] > 100 && slices["connection:recv", default: 0] > 100, "\(slices)")
    }

    /// Direct puts (a small message put straight into the pipe's inbox, ipc_fast.c): with no
    /// hook, 100 small messages sent while the receiver is between two receives make no
    /// write(2) (the sender's /proc/self/io says so), and every message of the scenario
    /// arrives in order; with a trace every call goes through Swift and the pipe, and the
    /// same order holds.
    @Test(.enabled(if: FileManager.default.isReadableFile(atPath: "/proc/self/io"),
                   "/proc/self/io is not readable here: write calls cannot be counted"))
    func directPutsSkipTheKernelAndKeepTheOrder() throws {
        let plain = try Ipcplay.run(["run", "tests/pipe_direct_test.lua", "count-writes"], limit: 200)
        #expect(plain.status == 0, "\(plain.combined)")
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ipcplay-direct-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let traced = try Ipcplay.run(["run", "--trace", dir.appendingPathComponent("t.json").path, "tests/pipe_direct_test.lua"], limit: 200)
        #expect(traced.status == 0, "\(traced.combined)")
    }
}
