import Foundation
import Testing

/// The race lessons in scripts/races/: each buggy scenario fails under `ipcplay explore`
/// (with an explanation and a replay line that fails again), and its fixed twin passes
/// 1000 schedules. The seeds are fixed, so the explorations are the same every time.
@Suite("Race lessons in scripts/races/")
struct RaceLessonsTests {
    static let lessons = ["lost_update", "check_then_act", "lock_order", "condition_if", "missed_wakeup",
                          "bounded_buffer", "readers_writers_if", "pipe_write_end", "barrier_party", "qsize_check"]

    static let limit = Double(300 * Ipcplay.slowdown)

    func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init) }

    /// Explores `scripts/races/NAME.lua` for 1000 schedules from seed 1 and expects it to
    /// end with `status`. Returns the script's path and the result.
    func explore(_ name: String, expecting status: Int32,
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> (String, Ipcplay.Result) {
        let script = "scripts/races/\(name).lua"
        let r = try Ipcplay.run(["explore", "--seed", "1", "--runs", "1000", script], limit: Self.limit)
        #expect(!r.hung, "\(name): \(r.combined)", sourceLocation: sourceLocation)
        #expect(r.status == status, "\(name): \(r.combined)", sourceLocation: sourceLocation)
        return (script, r)
    }

    /// Both files of every lesson are there, and nothing else.
    @Test func everyLessonHasItsTwin() throws {
        let dir = Ipcplay.packageRoot.appendingPathComponent("scripts/races")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".lua") }.sorted()
        let expected = Self.lessons.flatMap { ["\($0).lua", "\($0)_fixed.lua"] }.sorted()
        #expect(names == expected)
    }

    @Test(arguments: lessons)
    func theBugIsFound(_ lesson: String) throws {
        let (script, r) = try explore(lesson, expecting: 1)
        let out = lines(r.stdout)
        #expect(out.first?.hasPrefix("ipcplay: schedule ") == true, "\(lesson): \(r.stdout)")
        #expect(out.contains { $0.hasPrefix("schedule: ") && $0.contains(" steps, ") }, "\(lesson): \(r.stdout)")
        #expect(Ipcplay.explanationLine(in: r.stdout).map { $0 != "no explanation found" } == true, "\(lesson): \(r.stdout)")
        let replay = out.first { $0.hasPrefix("replay: ipcplay replay ") }
        #expect(replay != nil, "\(lesson): \(r.stdout)")

        // The replay line reproduces the failure.
        guard let words = replay?.split(separator: " ").map(String.init), words.count == 5, words[4] == script else {
            Issue.record("\(lesson): unexpected replay line \(replay ?? "none")")
            return
        }
        let again = try Ipcplay.run(["replay", words[3], script], limit: Self.limit)
        #expect(again.status == 1, "\(lesson) replayed: \(again.combined)")
    }

    /// The lost update's explanation is an atomicity violation: the read and the write, on
    /// their two lines, with the other worker's write between them.
    @Test func theLostUpdatesExplanationIsTheReadAndTheWrite() throws {
        let script = "scripts/races/lost_update.lua"
        let source = try String(contentsOf: Ipcplay.packageRoot.appendingPathComponent(script), encoding: .utf8)
        let sourceLines = source.split(separator: "\n", omittingEmptySubsequences: false)
        guard let read = sourceLines.firstIndex(where: { $0.contains("local x = counter.value") }),
              let write = sourceLines.firstIndex(where: { $0.contains("counter.value = x + 1") }) else {
            Issue.record("the read and the write are not in \(script)")
            return
        }
        let r = try Ipcplay.run(["explore", "--seed", "1", script], limit: Self.limit)
        #expect(r.status == 1, "\(r.combined)")
        let line = Ipcplay.explanationLine(in: r.stdout) ?? ""
        #expect(line == "atomicity: value read at \(script):\(read + 1) ... value write at \(script):\(write + 1)"
                + " interrupted by value write at \(script):\(write + 1)", "\(r.stdout)")
    }

    @Test(arguments: lessons)
    func theFixHolds(_ lesson: String) throws {
        let (script, r) = try explore("\(lesson)_fixed", expecting: 0)
        #expect(lines(r.stdout).last?.hasSuffix("no failure") == true, "\(lesson)_fixed: \(r.stdout)")
        #expect(r.stdout.hasPrefix("PCT: ") || r.stdout.contains("\nPCT: "), "\(lesson)_fixed: \(r.stdout)")

        // And it runs plainly, without a scheduler.
        let plain = try Ipcplay.run(["run", "--timeout", "\(60 * Ipcplay.slowdown)", script], limit: Self.limit)
        #expect(plain.status == 0, "\(lesson)_fixed, plain run: \(plain.combined)")
    }
}
