import Foundation
import Testing

/// Crash exploration (`--kill N`): the crash lessons in scripts/crashes/ (each bug found
/// with `explore --kill 1`, each fixed twin holding for 1000 schedules with kills), the
/// report's kill lines, replays of a kill, determinism, and shrinking that drops kills.
@Suite("Crash exploration (--kill)")
struct CrashExplorationTests {
    static let lessons = ["transfer", "joinable_queue", "worker_pool"]

    static let limit = Double(300 * Ipcplay.slowdown)

    func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init) }

    /// Pids differ from run to run; everything else must not.
    func maskingPids(_ s: String) -> String {
        var out = ""
        var digits = false
        let words = ["pid ", "process "]
        var i = s.startIndex
        while i < s.endIndex {
            if let w = words.first(where: { s[i...].hasPrefix($0) }) {
                out += w
                i = s.index(i, offsetBy: w.count)
                while i < s.endIndex, s[i].isNumber { i = s.index(after: i); digits = true }
                if digits { out += "#" }
                digits = false
                continue
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }

    /// Both files of every lesson are there, and nothing else.
    @Test func everyLessonHasItsTwin() throws {
        let dir = Ipcplay.packageRoot.appendingPathComponent("scripts/crashes")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".lua") }.sorted()
        #expect(names == Self.lessons.flatMap { ["\($0).lua", "\($0)_fixed.lua"] }.sorted())
    }

    /// Each bug is found with one kill; the report names the kill in the contract's form,
    /// before the schedule line; the replay line kills the same process at the same call
    /// and prints the same bytes (pids aside), twice.
    @Test(arguments: lessons)
    func theBugIsFoundByAKill(_ lesson: String) throws {
        let script = "scripts/crashes/\(lesson).lua"
        let r = try Ipcplay.run(["explore", "--kill", "1", "--seed", "1", script], limit: Self.limit)
        #expect(r.status == 1, "\(lesson): \(r.combined)")
        let out = lines(r.stdout)
        let kills = out.filter { $0.hasPrefix("kill: ") }
        #expect(kills.count == 1, "\(lesson): \(r.stdout)")
        // "kill: NAME before <call> at <file:line>"
        let kill = kills.first ?? ""
        #expect(kill.range(of: #"^kill: [A-Za-z0-9_-]+ before [a-z_.:]+[a-z_ ]* at scripts/crashes/[a-z_]+\.lua:[0-9]+$"#,
                            options: .regularExpression) != nil, "\(lesson): \(kill)")
        #expect(!kill.hasPrefix("kill: MainProcess"), "\(lesson): \(kill)")
        if let k = out.firstIndex(of: kill), let s = out.firstIndex(where: { $0.hasPrefix("schedule: ") }) {
            #expect(k + 1 == s, "the kill lines come just before the schedule line: \(r.stdout)")
        }
        #expect(out.contains { $0.contains("KILLED before ") }, "the kill is a row of the interleaving: \(r.stdout)")
        try replayTwice(lesson, script, found: r)
    }

    /// Replays the failure that `found` reports (its `replay:` line) twice: it fails both
    /// times with the same bytes (pids aside) and the failure's final message. The first
    /// replay, or nil (an issue recorded) when there is no replay line.
    @discardableResult
    func replayTwice(_ lesson: String, _ script: String, found r: Ipcplay.Result) throws -> Ipcplay.Result? {
        let out = lines(r.stdout)
        guard let replay = out.first(where: { $0.hasPrefix("replay: ipcplay replay ") }),
              case let words = replay.split(separator: " ").map(String.init), words.count == 5 else {
            Issue.record("\(lesson): no replay line: \(r.stdout)")
            return nil
        }
        let first = try Ipcplay.run(["replay", words[3], script], limit: Self.limit)
        let second = try Ipcplay.run(["replay", words[3], script], limit: Self.limit)
        #expect(first.status == 1, "\(lesson) replayed: \(first.combined)")
        #expect(second.status == 1)
        #expect(maskingPids(first.stdout + "\n--\n" + first.stderr) == maskingPids(second.stdout + "\n--\n" + second.stderr))
        // The replay is the failure found, killed where it said: the same final message.
        let failure = out.first { $0.hasPrefix("error in ") || $0.hasPrefix("deadlock: ") } ?? "?"
        let message = failure.hasPrefix("deadlock") ? "deadlock" : String(failure.split(separator: ":").last ?? "")
        #expect((first.stdout + first.stderr).contains(message), "\(lesson): \(failure) / \(first.combined)")
        return first
    }

    @Test(arguments: lessons)
    func theFixSurvivesAKillAnywhere(_ lesson: String) throws {
        let script = "scripts/crashes/\(lesson)_fixed.lua"
        let r = try Ipcplay.run(["explore", "--kill", "1", "--runs", "1000", "--seed", "1", script], limit: Self.limit)
        #expect(r.status == 0, "\(lesson)_fixed: \(r.combined)")
        #expect(lines(r.stdout).last?.hasPrefix("1000 schedules") == true, "\(r.stdout)")
        // Kills did happen: the twin was not held to nothing.
        let killed = lines(r.stdout).first { $0.hasPrefix("kills: ") } ?? ""
        let count = Int(killed.dropFirst("kills: ".count).prefix { $0.isNumber }) ?? 0
        #expect(count >= 100, "\(lesson)_fixed: \(killed)")
        let plain = try Ipcplay.run(["run", script], limit: Self.limit)
        #expect(plain.status == 0, "\(lesson)_fixed, plain run: \(plain.combined)")
    }

    /// One seed, twenty runs, the same bytes (pids aside), kills included; never the main
    /// process, and the killed one's exitcode is -9.
    @Test func aSeedGivesTheSameKills() throws {
        var outputs = Set<String>()
        var status: Int32 = -1
        for _ in 0..<20 {
            let r = try Ipcplay.run(["run", "--sched", "random", "--seed", "7", "--kill", "2", "--kill-rate", "0.2",
                                     "scripts/crashes/transfer.lua"], limit: Self.limit)
            outputs.insert(maskingPids(r.stdout + "\n--\n" + r.stderr))
            status = r.status
        }
        #expect(outputs.count == 1, "\(outputs.sorted().joined(separator: "\n=====\n"))")
        #expect(outputs.first?.contains("teller died (exitcode -9)") == true, "\(outputs.first ?? "")")
        #expect(status == 1)
        // Every step a kill point: every teller dies, the main process never does.
        let r = try Ipcplay.run(["run", "--sched", "pct", "--seed", "1", "--kill", "5", "--kill-rate", "1",
                                 "scripts/crashes/transfer_fixed.lua"], limit: Self.limit)
        #expect(r.stdout.contains("teller died (exitcode -9) at attempt 3"), "\(r.combined)")
        #expect(r.stderr.contains("three tellers died"), "\(r.combined)")
    }

    /// An exploration with kills is the same exploration every time.
    @Test func anExplorationWithKillsIsReproducible() throws {
        let script = "scripts/crashes/worker_pool.lua"
        let a = try Ipcplay.run(["explore", "--kill", "1", "--seed", "3", script], limit: Self.limit)
        let b = try Ipcplay.run(["explore", "--kill", "1", "--seed", "3", script], limit: Self.limit)
        #expect(a.status == 1, "\(a.combined)")
        #expect(maskingPids(a.stdout) == maskingPids(b.stdout))
    }

    /// A failure that needs no kill is reported without one: shrinking drops it first.
    @Test func shrinkingDropsAKillTheFailureDoesNotNeed() throws {
        let source = """
        local ipc = require("ipc")
        local v = ipc.value("i", 0)
        local p = ipc.spawn(function() v.value = 1; v.value = 2 end)
        p:join()
        error("always fails")
        """
        let file = try Ipcplay.writeScript(source)
        defer { Ipcplay.removeScript(file) }
        let r = try Ipcplay.run(["explore", "--kill", "1", "--kill-rate", "1", "--seed", "1", file.path], limit: Self.limit)
        #expect(r.status == 1, "\(r.combined)")
        #expect(r.stdout.contains("always fails"), "\(r.stdout)")
        #expect(!r.stdout.contains("kill: "), "\(r.stdout)")
        #expect(!r.stdout.contains("KILLED"), "\(r.stdout)")
    }

    /// The preemption bound each lesson's exhaustive search is held to (nil: none): the
    /// worker pool's unbounded search takes minutes, its bug needs no preemption.
    static let exhaustiveBound: [String: Int] = ["worker_pool": 0]

    func exhaustiveArguments(_ lesson: String) -> [String] {
        ["explore", "--exhaustive", "--kill", "1"] + (Self.exhaustiveBound[lesson].map { ["--preemptions", String($0)] } ?? [])
    }

    /// `--exhaustive --kill 1` finds each bug; the report has its kill line; the replay
    /// line reproduces the failure, the same bytes every time (pids aside).
    @Test(arguments: lessons)
    func theExhaustiveSearchFindsTheBug(_ lesson: String) throws {
        let script = "scripts/crashes/\(lesson).lua"
        let r = try Ipcplay.run(exhaustiveArguments(lesson) + [script], limit: Self.limit)
        #expect(r.status == 1, "\(lesson): \(r.combined)")
        let out = lines(r.stdout)
        #expect(out.first?.hasPrefix("ipcplay: schedule ") == true && out.first?.contains("(exhaustive, ") == true, "\(r.stdout)")
        let kills = out.filter { $0.hasPrefix("kill: ") }
        #expect(kills.count == 1, "\(lesson): \(r.stdout)")
        #expect(out.contains { $0.contains("KILLED before ") }, "\(r.stdout)")
        guard let first = try replayTwice(lesson, script, found: r) else { return }
        if lesson == "transfer" { #expect(first.stdout.contains("teller died (exitcode -9)"), "\(first.combined)") }
    }

    /// Each twin survives every kill point of every interleaving (within the bound).
    @Test(arguments: lessons)
    func theFixSurvivesEveryKillPoint(_ lesson: String) throws {
        let r = try Ipcplay.run(exhaustiveArguments(lesson) + ["scripts/crashes/\(lesson)_fixed.lua"], limit: Self.limit)
        #expect(r.status == 0, "\(lesson)_fixed: \(r.combined)")
        let out = lines(r.stdout)
        let complete = Self.exhaustiveBound[lesson].map { "complete: every interleaving with at most \($0) preemptions was checked" }
            ?? "complete: every interleaving was checked"
        #expect(out.last == complete, "\(r.stdout)")
        let counts = out.count >= 2 ? out[out.count - 2] : ""
        #expect(counts.range(of: #"^[0-9]+ schedules, [0-9]+ distinct interleavings, no failure$"#, options: .regularExpression) != nil, "\(r.stdout)")
        // Kills were tried: more interleavings than the twin has without them.
        let plain = try Ipcplay.run(Array(exhaustiveArguments(lesson).filter { $0 != "--kill" && $0 != "1" }) + ["scripts/crashes/\(lesson)_fixed.lua"],
                                    limit: Self.limit)
        let plainCounts = lines(plain.stdout).dropLast().last ?? ""
        func distinct(_ s: String) -> Int { Int(s.split(separator: " ").dropFirst(2).first ?? "") ?? 0 }
        #expect(distinct(counts) > distinct(plainCounts), "\(counts) / \(plainCounts)")
    }

    /// `test --explore exhaustive --kill 1`: a failing test's report names its kill, in
    /// the text, TAP and JUnit reports; the twin passes.
    @Test func theTestCommandExploresEveryKillPoint() throws {
        let bug = try Ipcplay.run(["test", "--explore", "exhaustive", "--kill", "1", "scripts/crashes/joinable_queue.lua"], limit: Self.limit)
        #expect(bug.status == 1, "\(bug.combined)")
        let kill = "kill: consumer before joinable_queue:task_done at scripts/crashes/joinable_queue.lua:21"
        #expect(bug.stdout.contains("      \(kill)\n      schedule: "), "\(bug.stdout)")
        let tap = try Ipcplay.run(["test", "--tap", "--explore", "exhaustive", "--kill", "1", "scripts/crashes/joinable_queue.lua"], limit: Self.limit)
        #expect(tap.stdout.contains("  kills:\n    - "), "\(tap.stdout)")
        #expect(tap.stdout.contains("consumer before joinable_queue:task_done"), "\(tap.stdout)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipcplay-junit-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let junit = dir.appendingPathComponent("report.xml").path
        _ = try Ipcplay.run(["test", "--junit", junit, "--explore", "exhaustive", "--kill", "1", "scripts/crashes/joinable_queue.lua"], limit: Self.limit)
        let xml = (try? String(contentsOfFile: junit, encoding: .utf8)) ?? ""
        #expect(xml.contains(kill + "\nschedule: "), "\(xml)")
        let fixed = try Ipcplay.run(["test", "--explore", "exhaustive", "--kill", "1", "scripts/crashes/joinable_queue_fixed.lua"], limit: Self.limit)
        #expect(fixed.status == 0, "\(fixed.combined)")
    }

    @Test func killOptionsAreChecked() throws {
        let noSched = try Ipcplay.run(["run", "--kill", "1", "scripts/crashes/transfer.lua"])
        #expect(noSched.status == 2 && noSched.stderr.contains("--kill needs --sched"), "\(noSched.combined)")
        let badRate = try Ipcplay.run(["explore", "--kill", "1", "--kill-rate", "2", "scripts/crashes/transfer.lua"])
        #expect(badRate.status == 2 && badRate.stderr.contains("--kill-rate"), "\(badRate.combined)")
        let rateAlone = try Ipcplay.run(["explore", "--kill-rate", "0.5", "scripts/crashes/transfer.lua"])
        #expect(rateAlone.status == 2, "\(rateAlone.combined)")
        // The exhaustive search tries every kill point, one kill per schedule.
        for args in [["--kill", "2"], ["--kill", "1", "--kill-rate", "0.5"]] {
            let r = try Ipcplay.run(["explore", "--exhaustive"] + args + ["scripts/crashes/transfer.lua"])
            #expect(r.status == 2 && r.stderr.contains("--kill"), "\(args): \(r.combined)")
            let t = try Ipcplay.run(["test", "--explore", "exhaustive"] + args + ["scripts/crashes/transfer.lua"])
            #expect(t.status == 2 && t.stderr.contains("--kill"), "test \(args): \(t.combined)")
        }
    }

    /// `test --explore N --kill 1` holds a scenario to crashes, as CI would.
    @Test func theTestCommandExploresWithKills() throws {
        let bug = try Ipcplay.run(["test", "--explore", "50", "--kill", "1", "--seed", "1", "scripts/crashes/transfer.lua"], limit: Self.limit)
        #expect(bug.status == 1, "\(bug.combined)")
        #expect(bug.stdout.contains("kill: teller before "), "\(bug.stdout)")
        let fixed = try Ipcplay.run(["test", "--explore", "50", "--kill", "1", "--seed", "1", "scripts/crashes/transfer_fixed.lua"], limit: Self.limit)
        #expect(fixed.status == 0, "\(fixed.combined)")
    }
}
