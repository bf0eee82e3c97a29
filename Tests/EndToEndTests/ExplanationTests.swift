import Foundation
import Testing

extension Ipcplay {
    /// The forms of an explanation's line (contract v3, "Explanations").
    static let explanationForms = ["critical pair", "atomicity", "cycle", "not a race", "no explanation found"]

    /// The explanation's line of a report, if any (without the indent of `test`'s report).
    static func explanationLine(in text: String) -> String? {
        text.split(separator: "\n").map { String($0.drop { $0 == " " }) }.first { line in
            line == "no explanation found" || explanationForms.contains { line.hasPrefix($0 + ": ") }
        }
    }

    /// The form of an explanation's line and the lines of `script` it names (the line a call
    /// is made at, not the lines it was called from).
    static func explanation(_ line: String, script: String) -> (form: String, lines: Set<Int>) {
        let form = explanationForms.first { line.hasPrefix($0 + ": ") || line == $0 } ?? ""
        var lines = Set<Int>()
        // "value read at f.lua:25 (from f.lua:33)": the first location of each call.
        var rest = Substring(line)
        while let at = rest.range(of: " at \(script):") {
            let digits = rest[at.upperBound...].prefix { $0.isNumber }
            if let n = Int(digits) { lines.insert(n) }
            rest = rest[at.upperBound...]
            if let from = rest.range(of: ")"), rest[..<from.lowerBound].contains("(from ") { rest = rest[from.upperBound...] }
        }
        return (form, lines)
    }
}

/// Issue 26: every failing report explains its failure, in one of the contract's forms; the
/// race lessons' headers say which (`-- explanation: FORM LINE ...`), and every seed gets it.
@Suite("Explanations of failing schedules")
struct ExplanationTests {
    static let limit = Double(600 * Ipcplay.slowdown)

    /// A lesson: its script (and arguments), and what its header promises.
    struct Lesson: CustomTestStringConvertible, Sendable {
        var script: String
        var arguments: [String] = []
        var form: String
        var lines: Set<Int>
        var testDescription: String { ([script] + arguments).joined(separator: " ") }
    }

    /// Every lesson of scripts/races/ (not a fixed twin), found by its file name, with its
    /// header's promise; and the lost update with 20 increments per worker.
    static let lessons: [Lesson] = {
        let dir = Ipcplay.packageRoot.appendingPathComponent("scripts/races")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".lua") && !$0.hasSuffix("_fixed.lua") }.sorted()
        var lessons = names.map { name -> Lesson in
            let script = "scripts/races/\(name)"
            let text = (try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? ""
            let promise = text.split(separator: "\n").first { $0.hasPrefix("-- explanation: ") }.map { String($0.dropFirst(16)) } ?? ""
            let form = Ipcplay.explanationForms.first { promise.hasPrefix($0) } ?? "(no explanation line in the header)"
            let lines = Set(promise.dropFirst(form.count).split(separator: " ").compactMap { Int($0) })
            return Lesson(script: script, form: form, lines: lines)
        }
        if var twenty = lessons.first(where: { $0.script.hasSuffix("/lost_update.lua") }) {
            twenty.arguments = ["20"]
            lessons.append(twenty)
        }
        return lessons
    }()

    /// What the concurrent explores found, under a lock.
    final class Collected: @unchecked Sendable {
        let lock = NSLock()
        var results: [(String, Ipcplay.Result)] = []
        var failure: Error?

        func add(_ run: String, _ r: Result<Ipcplay.Result, Error>) {
            lock.lock()
            defer { lock.unlock() }
            switch r {
            case .success(let result): results.append((run, result))
            case .failure(let error): failure = error
            }
        }
    }

    /// Explores `lesson` with `strategy` and each seed, two at a time (each explore is a fork
    /// server running one schedule at a time); returns each run's description and result.
    static func explore(_ lesson: Lesson, strategy: String, seeds: ClosedRange<Int>) throws -> [(String, Ipcplay.Result)] {
        let collected = Collected()
        let seeds = Array(seeds)
        DispatchQueue.concurrentPerform(iterations: 2) { lane in
            for seed in seeds where seed % 2 == lane {
                let args = ["explore", "--strategy", strategy, "--seed", String(seed), lesson.script] + lesson.arguments
                collected.add("\(strategy) seed \(seed)", Result { try Ipcplay.run(args, limit: limit) })
            }
        }
        if let failure = collected.failure { throw failure }
        return collected.results.sorted { $0.0 < $1.0 }
    }

    @Test func everyLessonPromisesAnExplanation() {
        #expect(Self.lessons.count >= 6)
        for lesson in Self.lessons {
            #expect(["critical pair", "atomicity", "cycle", "not a race"].contains(lesson.form), "\(lesson.script): \(lesson.form)")
            #expect(["cycle", "not a race"].contains(lesson.form) || !lesson.lines.isEmpty, "\(lesson.script) names no line")
        }
    }

    /// Under PCT and random, seeds 1-10: the failing report ends with its `schedule:` line,
    /// then the explanation the header promises (its form, the lines as a set), then `replay:`.
    @Test(arguments: lessons, ["pct", "random"])
    func everySeedGetsTheExplanationTheHeaderPromises(_ lesson: Lesson, strategy: String) throws {
        for (run, r) in try Self.explore(lesson, strategy: strategy, seeds: 1...10) {
            let what = "\(lesson.testDescription), \(run)"
            #expect(r.status == 1, "\(what): \(r.combined)")
            let out = r.stdout.split(separator: "\n").map(String.init)
            guard let line = Ipcplay.explanationLine(in: r.stdout), let at = out.firstIndex(of: line) else {
                Issue.record("\(what): no explanation\n\(r.stdout)")
                continue
            }
            #expect(at > 0 && out[at - 1].hasPrefix("schedule: "), "\(what): \(r.stdout)")
            #expect(at + 1 < out.count && out[at + 1].hasPrefix("replay: "), "\(what): \(r.stdout)")
            let (form, lines) = Ipcplay.explanation(line, script: lesson.script)
            #expect(form == lesson.form, "\(what): \(line)")
            if lesson.form != "cycle" || !lesson.lines.isEmpty {
                #expect(lines == lesson.lines, "\(what): \(line)")
            }
        }
    }

    /// The rows of an interleaving: (step number, marked), and the elision markers' places.
    static func rows(_ text: String) -> (rows: [(step: Int, marked: Bool)], elisions: Int) {
        var rows: [(Int, Bool)] = []
        var elisions = 0
        for line in text.split(separator: "\n") {
            if line.contains("⋮ ") && line.contains(" step") { elisions += 1; continue }
            let marked = line.hasPrefix("▶")
            let rest = line.drop { $0 == "▶" || $0 == " " }
            guard line.hasPrefix("▶") || line.hasPrefix(" "), let n = Int(rest.prefix { $0.isNumber }), n > 0 else { continue }
            rows.append((n, marked))
        }
        return (rows, elisions)
    }

    /// Without --full, a long schedule is elided, but never a step the explanation names nor
    /// the steps on either side of it; each gap is marked. With --full every step is shown.
    @Test func elisionKeepsTheNamedStepsAndFullShowsEveryStep() throws {
        let args = ["explore", "--seed", "1", "scripts/races/lost_update.lua", "20"]
        let r = try Ipcplay.run(args, limit: Self.limit)
        #expect(r.status == 1, "\(r.combined)")
        let (rows, elisions) = Self.rows(r.stdout)
        let steps = rows.map(\.step)
        let marked = rows.filter(\.marked).map(\.step)
        #expect(elisions > 0, "a long schedule is elided: \(r.stdout)")
        #expect(marked.count == 3, "the atomicity's three steps are marked: \(r.stdout)")
        for m in marked {
            #expect(steps.contains(m - 1) || m == 1, "the step before \(m) is shown: \(r.stdout)")
            #expect(steps.contains(m + 1), "the step after \(m) is shown: \(r.stdout)")
        }
        var gaps = 0
        for (a, b) in zip(steps, steps.dropFirst()) where b != a + 1 { gaps += 1 }
        #expect(gaps == elisions, "each gap has its ⋮ marker: \(r.stdout)")

        let full = try Ipcplay.run(["explore", "--full"] + args.dropFirst(), limit: Self.limit)
        #expect(full.status == 1, "\(full.combined)")
        let shown = Self.rows(full.stdout)
        #expect(shown.elisions == 0, "\(full.stdout)")
        let schedule = full.stdout.split(separator: "\n").first { $0.hasPrefix("schedule: ") } ?? ""
        let count = Int(schedule.split(separator: " ").dropFirst().first ?? "") ?? -1
        #expect(shown.rows.map(\.step) == Array(1...max(count, 1)), "every step of \(schedule): \(full.stdout)")
        #expect(Ipcplay.explanationLine(in: full.stdout) == Ipcplay.explanationLine(in: r.stdout))
    }

    /// `test --explore` prints explore's report once, whole: one `schedule:`, one
    /// explanation and one `replay:` line, and the table's gaps marked.
    @Test func testExplorePrintsTheReportOnce() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-explain")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Ipcplay.lostUpdates(rounds: 20).write(to: dir.appendingPathComponent("race_test.lua"), atomically: true, encoding: .utf8)
        let r = try Ipcplay.run(["test", "--explore", "200", "--seed", "3", dir.path], limit: Self.limit)
        #expect(r.status == 1, "\(r.combined)")
        let out = r.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(out.filter { $0.hasPrefix("schedule: ") }.count == 1, "\(r.stdout)")
        #expect(out.filter { $0.hasPrefix("replay: ") }.count == 1, "\(r.stdout)")
        #expect(out.filter { $0.hasPrefix("atomicity: value read at ") }.count == 1, "\(r.stdout)")
        let (rows, elisions) = Self.rows(r.stdout.split(separator: "\n").map { $0.hasPrefix("      ") ? String($0.dropFirst(6)) : String($0) }
            .joined(separator: "\n"))
        let steps = rows.map(\.step)
        var gaps = 0
        for (a, b) in zip(steps, steps.dropFirst()) where b != a + 1 { gaps += 1 }
        #expect(!rows.isEmpty && gaps == elisions, "\(r.stdout)")
        #expect(r.stdout.hasSuffix("0 passed, 1 failed\n"), "\(r.stdout)")
    }

    /// A failing replay prints its interleaving, `schedule:` and the same explanation as the
    /// explore that found it.
    @Test func replayExplainsTheSchedule() throws {
        let script = "scripts/races/check_then_act.lua"
        let r = try Ipcplay.run(["explore", "--seed", "2", script], limit: Self.limit)
        #expect(r.status == 1, "\(r.combined)")
        let replay = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("replay: ipcplay replay ") })
        let again = try Ipcplay.run(replay.split(separator: " ").map(String.init).dropFirst(2).map { $0 }, limit: Self.limit)
        #expect(again.status == 1, "\(again.combined)")
        let line = try #require(Ipcplay.explanationLine(in: again.stdout), "\(again.combined)")
        #expect(line == Ipcplay.explanationLine(in: r.stdout), "\(again.stdout)")
        let out = again.stdout.split(separator: "\n").map(String.init)
        #expect(out.firstIndex(of: line).map { out[$0 - 1].hasPrefix("schedule: ") } == true, "\(again.stdout)")
        #expect(again.stdout.contains("step    MainProcess"), "\(again.stdout)")
    }

    /// A failure with no preemption is not a race, in explore and in step.
    @Test func aFailureWithNoPreemptionIsNotARace() throws {
        let script = try Ipcplay.writeScript("""
            local v = ipc.value("i", 0)
            local p = ipc.spawn(function() v.value = 1 end)
            p:join()
            assert(v.value == 2, "v is " .. v.value)
            """)
        defer { Ipcplay.removeScript(script) }
        let r = try Ipcplay.run(["explore", "--seed", "1", script.path], limit: Self.limit)
        #expect(r.status == 1, "\(r.combined)")
        #expect(r.stdout.contains("schedule: ") && r.stdout.contains(" 0 preemptions\nnot a race: the schedule fails with no preemption\n"),
                "\(r.stdout)")
        let step = try Ipcplay.run(["step", script.path], stdin: "", limit: Self.limit)
        #expect(step.status == 1, "\(step.combined)")
        #expect(step.stdout.contains("not a race: the schedule fails with no preemption\nreplay: "), "\(step.stdout)")
    }

    /// Shrinking finishes on the condition lesson: its two preemptions, well within the
    /// budget (a search by preemptions that expanded equivalent runs again took over 700).
    @Test func shrinkingFinishesOnTheConditionLesson() throws {
        for strategy in ["pct", "random"] {
            let r = try Ipcplay.run(["explore", "--strategy", strategy, "--seed", "1", "scripts/races/condition_if.lua"], limit: Self.limit)
            #expect(r.status == 1, "\(r.combined)")
            let headline = r.stdout.split(separator: "\n").first ?? ""
            let runs = headline.split(separator: " ").reversed().dropFirst().first.flatMap { Int($0) } ?? Int.max
            #expect(headline.hasSuffix(" runs") && runs <= 400, "\(headline)")
            let schedule = r.stdout.split(separator: "\n").first { $0.hasPrefix("schedule: ") } ?? ""
            #expect(schedule.hasSuffix(", 2 preemptions"), "\(r.stdout)")
        }
    }

    /// A kill between a debit and its credit (`--kill`): the contract's atomicity form, the
    /// killed call second, and the step of another process that saw the half-done transfer.
    @Test func aKillBetweenTwoStepsIsAnAtomicityViolation() throws {
        let script = try Ipcplay.writeScript("""
            local a = ipc.value("i", 100)
            local b = ipc.value("i", 0)
            local p = ipc.spawn(function()
              a.value = a.value - 10
              b.value = b.value + 10
            end)
            p:join()
            assert(a.value + b.value == 100, "money lost")
            """)
        defer { Ipcplay.removeScript(script) }
        let r = try Ipcplay.run(["explore", "--kill", "1", "--seed", "1", script.path], limit: Self.limit)
        #expect(r.status == 1, "\(r.combined)")
        let line = try #require(Ipcplay.explanationLine(in: r.stdout), "\(r.stdout)")
        let (form, lines) = Ipcplay.explanation(line, script: script.path)
        #expect(form == "atomicity" && lines == [4, 5, 8], "\(line)")
        #expect(line.hasPrefix("atomicity: value write at \(script.path):4 ... value write at \(script.path):5 interrupted by "), "\(line)")
    }
}

