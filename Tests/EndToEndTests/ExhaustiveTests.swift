import Foundation
import Testing

/// `explore --exhaustive`: every interleaving once, up to the order of independent steps.
/// The counts are exact (n writers to one value: n!; to their own values: 1), the race
/// lessons' bugs are found and their fixed twins proved, the reduction meets every
/// interleaving that running every schedule meets, and a search stopped by a budget
/// goes on where it stopped.
@Suite("Exhaustive exploration")
struct ExhaustiveTests {
    static let fixtures = "Tests/EndToEndTests/Fixtures/exhaustive"
    static let limit = Double(300 * Ipcplay.slowdown)
    static let lessons = ["lost_update", "check_then_act", "lock_order", "condition_if", "missed_wakeup"]

    func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init) }

    func exhaustive(_ args: [String], directory: URL? = nil, environment: [String: String] = [:]) throws -> Ipcplay.Result {
        try Ipcplay.run(["explore", "--exhaustive"] + args, directory: directory, limit: Self.limit, environment: environment)
    }

    /// The last two lines of a complete search with no failure.
    func expectComplete(_ r: Ipcplay.Result, schedules: Int? = nil, distinct: Int? = nil, bound: Int? = nil,
                        sourceLocation: SourceLocation = #_sourceLocation) {
        let out = lines(r.stdout)
        #expect(r.status == 0, "\(r.combined)", sourceLocation: sourceLocation)
        let last = bound.map { "complete: every interleaving with at most \($0) preemptions was checked" } ?? "complete: every interleaving was checked"
        #expect(out.last == last, "\(r.combined)", sourceLocation: sourceLocation)
        guard out.count >= 2 else { return }
        let counts = out[out.count - 2]
        #expect(counts.hasSuffix(" distinct interleavings, no failure"), "\(r.combined)", sourceLocation: sourceLocation)
        if let schedules, let distinct {
            #expect(counts == "\(schedules) schedules, \(distinct) distinct interleavings, no failure", "\(r.combined)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: [(3, 6), (4, 24)])
    func writersToOneValueMakeNFactorialInterleavings(_ n: Int, _ factorial: Int) throws {
        let r = try exhaustive(["\(Self.fixtures)/writers_one_value.lua", "\(n)"])
        expectComplete(r, schedules: factorial, distinct: factorial)
    }

    @Test(arguments: [3, 4])
    func writersToTheirOwnValuesMakeOne(_ n: Int) throws {
        let r = try exhaustive(["\(Self.fixtures)/writers_own_values.lua", "\(n)"])
        expectComplete(r, schedules: 1, distinct: 1)
    }

    /// Two reads of one value commute: one interleaving, for the search and for the
    /// distinct count of random exploration.
    @Test func readsCommute() throws {
        expectComplete(try exhaustive(["\(Self.fixtures)/readers.lua"]), schedules: 1, distinct: 1)
        let r = try Ipcplay.run(["explore", "--strategy", "random", "--seed", "1", "--runs", "20", "\(Self.fixtures)/readers.lua"])
        #expect(lines(r.stdout).last == "20 schedules, 1 distinct interleavings, no failure", "\(r.combined)")
    }

    @Test(arguments: lessons)
    func theBugIsFound(_ lesson: String) throws {
        let script = "scripts/races/\(lesson).lua"
        for bound in [nil, 2] as [Int?] {
            let r = try exhaustive((bound.map { ["--preemptions", "\($0)"] } ?? []) + [script])
            let out = lines(r.stdout)
            #expect(r.status == 1, "\(lesson): \(r.combined)")
            #expect(out.first?.hasPrefix("ipcplay: schedule ") == true && out.first?.contains("failed (exhaustive") == true, "\(lesson): \(r.combined)")
            #expect(Ipcplay.explanationLine(in: r.stdout).map { $0 != "no explanation found" } == true, "\(lesson): \(r.combined)")
            #expect(out.contains { $0.hasPrefix("replay: ipcplay replay ") }, "\(lesson): \(r.combined)")
        }
    }

    /// Each fixed twin is proved, unbounded and within 2 preemptions, with the same counts
    /// on every run.
    @Test(arguments: lessons)
    func theFixedTwinIsProved(_ lesson: String) throws {
        let script = "scripts/races/\(lesson)_fixed.lua"
        for bound in [nil, 2] as [Int?] {
            let args = (bound.map { ["--preemptions", "\($0)"] } ?? []) + [script]
            let first = try exhaustive(args)
            expectComplete(first, bound: bound)
            let second = try exhaustive(args)
            #expect(second.stdout == first.stdout, "\(lesson): \(first.stdout) then \(second.stdout)")
        }
    }

    /// The reduction misses nothing: every interleaving met by running every schedule (within
    /// the bound) is met by the search.
    @Test(arguments: ["lock_then_read", "queue_gets", "condition_wait", "event_semaphore", "semaphore_turns", "condition_if_fixed"])
    func theSearchMeetsEveryInterleavingOfEverySchedule(_ name: String) throws {
        let bounds: [Int?] = name == "condition_wait" || name == "event_semaphore" ? [nil, 1, 2] : name == "condition_if_fixed" ? [1] : [1, 2]
        let script = name == "condition_if_fixed" ? "scripts/races/\(name).lua" : "\(Self.fixtures)/\(name).lua"
        for bound in bounds {
            let r = try exhaustive(["--check-naive"] + (bound.map { ["--preemptions", "\($0)"] } ?? []) + [script])
            #expect(r.status == 0, "\(name) \(bound.map(String.init) ?? "unbounded"): \(r.combined)")
            #expect(lines(r.stdout).last?.hasSuffix(", 0 missed by the search") == true, "\(name): \(r.combined)")
        }
    }

    /// With one kill (`--kill 1`), counted by hand: a process that writes once has three
    /// kill points (before its start, its write, its end), so 1 + 3 interleavings; two
    /// that write their own values, 1 + 2 * 3, each kill point once whatever the other
    /// process did by then (its steps do not touch what the death changes).
    @Test(arguments: [("kill_one_process", 4), ("kill_own_values", 7)])
    func oneKillAddsEachKillPointOnce(_ name: String, _ expected: Int) throws {
        let r = try exhaustive(["--kill", "1", "\(Self.fixtures)/\(name).lua"])
        expectComplete(r, schedules: expected, distinct: expected)
        let none = try exhaustive(["\(Self.fixtures)/\(name).lua"])
        expectComplete(none, schedules: 1, distinct: 1)
    }

    /// With kills, the reduction still misses nothing that running every schedule with
    /// every kill point meets: a killed lock holder (its death is a step on the lock), a
    /// killed pipe writer (its death can close the last sending end), a condition.
    @Test(arguments: ["kill_lock_holder", "kill_pipe_writer", "condition_wait", "kill_own_values"])
    func theSearchMeetsEveryKillPoint(_ name: String) throws {
        for bound in [nil, 1] as [Int?] {
            let r = try exhaustive(["--kill", "1", "--check-naive"] + (bound.map { ["--preemptions", "\($0)"] } ?? []) + ["\(Self.fixtures)/\(name).lua"])
            #expect(r.status == 0, "\(name) \(bound.map(String.init) ?? "unbounded"): \(r.combined)")
            #expect(lines(r.stdout).last?.hasSuffix(", 0 missed by the search") == true, "\(name): \(r.combined)")
        }
    }

    /// A kill the relation does not model (a process whose child still runs: the child
    /// would die with it) is refused, not counted as checked.
    @Test func aKillOfAParentIsRefused() throws {
        let source = """
        local ipc = require("ipc")
        local p = ipc.spawn(function()
          local c = ipc.spawn(function() end)
          ipc.value("i", 0)  -- a kill point of this process while its child runs
          c:join()
        end)
        p:join()
        """
        let file = try Ipcplay.writeScript(source)
        defer { Ipcplay.removeScript(file) }
        let r = try exhaustive(["--kill", "1", file.path])
        #expect(r.status == 2, "\(r.combined)")
        #expect(r.stderr.contains("--exhaustive --kill: a kill of Process-1 at step "), "\(r.combined)")
        #expect(!r.stdout.contains("complete"), "\(r.combined)")
    }

    /// A search stopped by --runs exits 3 and says so; resumed from the file it names, it
    /// ends with the totals of a search that was never stopped.
    @Test func aStoppedSearchResumesToTheSameTotals() throws {
        let script = Ipcplay.packageRoot.appendingPathComponent("scripts/races/condition_if_fixed.lua").path
        let whole = try exhaustive([script])
        expectComplete(whole)
        try Ipcplay.withTmpDirectory("ipcplay-exhaustive") { dir in
            let stopped = try exhaustive(["--runs", "40", script], directory: dir)
            #expect(stopped.status == 3, "\(stopped.combined)")
            let out = lines(stopped.stdout)
            #expect(out.last == "incomplete: stopped after 40 schedules", "\(stopped.combined)")
            guard let saved = out.first(where: { $0.hasPrefix("search saved to ") }), let path = saved.split(separator: " ").last.map(String.init) else {
                Issue.record("no saved search: \(stopped.combined)")
                return
            }
            // Twice more: once stopped again, then to the end.
            let again = try exhaustive(["--runs", "40", "--resume", path, script], directory: dir)
            #expect(again.status == 3, "\(again.combined)")
            #expect(lines(again.stdout).last == "incomplete: stopped after 80 schedules", "\(again.combined)")
            let rest = try exhaustive(["--resume", path, script], directory: dir)
            #expect(rest.stdout == whole.stdout, "resumed: \(rest.combined)\nwhole: \(whole.combined)")
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent(path).path), "the finished search's file is removed")
        }
    }

    /// A time limit stops the search too (here before its first schedule), and the search
    /// resumed goes all the way.
    @Test func aTimeLimitStopsTheSearch() throws {
        let script = Ipcplay.packageRoot.appendingPathComponent("scripts/races/lock_order_fixed.lua").path
        try Ipcplay.withTmpDirectory("ipcplay-exhaustive") { dir in
            let r = try exhaustive(["--time-limit", "0.000001", "--resume", "saved", script], directory: dir)
            #expect(r.status == 3, "\(r.combined)")
            #expect(lines(r.stdout).last?.hasPrefix("incomplete: stopped after ") == true, "\(r.combined)")
            let rest = try exhaustive(["--resume", "saved", script], directory: dir)
            let whole = try exhaustive([script])
            expectComplete(rest)
            #expect(rest.stdout == whole.stdout, "resumed: \(rest.combined)\nwhole: \(whole.combined)")
        }
    }

    /// A script whose runs differ under the same decisions cannot be searched: the search
    /// says so and stops, never claiming it is complete.
    @Test func aScriptThatIsNotDeterministicStopsTheSearch() throws {
        let script = Ipcplay.packageRoot.appendingPathComponent("\(Self.fixtures)/not_deterministic.lua").path
        try Ipcplay.withTmpDirectory("ipcplay-exhaustive") { dir in
            let r = try exhaustive([script, dir.appendingPathComponent("marker").path], directory: dir)
            #expect(r.status == 3, "\(r.combined)")
            #expect(r.stdout.contains("ipcplay: the search cannot go on: the run did not follow its decisions"), "\(r.combined)")
            #expect(lines(r.stdout).last?.hasPrefix("incomplete: stopped after ") == true, "\(r.combined)")
            #expect(!r.stdout.contains("complete: every"), "\(r.combined)")
        }
    }

    @Test func aResumeFileOfAnotherSearchIsRefused() throws {
        let script = Ipcplay.packageRoot.appendingPathComponent("scripts/races/condition_if_fixed.lua").path
        try Ipcplay.withTmpDirectory("ipcplay-exhaustive") { dir in
            let stopped = try exhaustive(["--runs", "3", "--resume", "saved", script], directory: dir)
            #expect(stopped.status == 3, "\(stopped.combined)")
            let other = try exhaustive(["--preemptions", "1", "--resume", "saved", script], directory: dir)
            #expect(other.status == 2, "\(other.combined)")
            #expect(other.stderr.contains("is not a saved search of this script"), "\(other.combined)")
        }
    }

    /// util-linux's `script`, which gives a command a terminal.
    static let hasScript = OutsideTools.works("script --version")

    /// On a terminal, standard error shows the progress (schedules, depth, rate) and clears
    /// it at the end; elsewhere nothing is written there.
    @Test(.enabled(if: hasScript, "script (util-linux) is not installed"))
    func progressOnATerminalOnly() throws {
        let script = "scripts/races/lost_update_fixed.lua"
        let plain = try exhaustive([script])
        #expect(plain.stderr.isEmpty, "\(plain.combined)")
        let command = "\(Ipcplay.binary) explore --exhaustive \(script)"
        let r = try Ipcplay.command("/usr/bin/env", ["script", "-qec", command, "/dev/null"], limit: Self.limit)
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout.contains("\r\u{1b}[Kexhaustive: 1 schedules, depth "), "\(r.combined)")
        #expect(r.stdout.contains(" schedules/s"), "\(r.combined)")
        #expect(r.stdout.contains("\r\u{1b}[K23 schedules, 20 distinct interleavings, no failure"), "\(r.combined)")
    }

    /// The output without what differs between two runs of one search: seconds, pids.
    static func normalized(_ out: String) -> String {
        out.replacingOccurrences(of: #"\d+(\.\d+)? ?s\b"#, with: "N s", options: .regularExpression)
            .replacingOccurrences(of: #"pid \d+"#, with: "pid N", options: .regularExpression)
    }

    /// `--jobs J` runs ahead the runs the search will ask for; the search is the one of
    /// `--jobs 1` all the same: the same output (counts, the failure's schedule number, its
    /// shrunk schedule and replay line) and the same interleavings, each at the same
    /// schedule number (`--hashes`). Bugs and their fixed twins, a bounded search, kills.
    @Test(arguments: [
        ["scripts/races/lost_update.lua"], ["scripts/races/lost_update_fixed.lua"], ["scripts/races/condition_if.lua"],
        ["scripts/races/condition_if_fixed.lua"], ["scripts/races/missed_wakeup_fixed.lua"],
        ["--preemptions", "1", "scripts/races/condition_if_fixed.lua"], ["--preemptions", "2", "scripts/races/check_then_act.lua"],
        ["--kill", "1", "\(fixtures)/kill_lock_holder.lua"], ["--kill", "1", "scripts/crashes/transfer.lua"],
        ["--kill", "1", "scripts/crashes/transfer_fixed.lua"],
    ])
    func theSameSearchWhateverJobs(_ args: [String]) throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-exhaustive-jobs")
        defer { try? FileManager.default.removeItem(at: dir) }
        var outputs: [String] = []
        var hashes: [[String]] = []
        for jobs in [1, 2, 3] {
            let file = dir.appendingPathComponent("jobs\(jobs).txt").path
            let r = try exhaustive(["--jobs", "\(jobs)", "--hashes", file] + args)
            #expect(r.status == 0 || r.status == 1, "\(args) jobs \(jobs): \(r.combined)")
            outputs.append(Self.normalized(r.stdout))
            hashes.append(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init))
        }
        #expect(outputs[0] == outputs[1] && outputs[1] == outputs[2], "\(args):\n\(outputs.joined(separator: "\n======\n"))")
        #expect(!hashes[0].isEmpty && hashes[0] == hashes[1] && hashes[1] == hashes[2], "\(args): \(hashes.map(\.count))")
        if outputs[0].contains("no failure") {
            // Every interleaving counted has its line.
            let distinct = outputs[0].split(separator: "\n").first { $0.hasSuffix(" distinct interleavings, no failure") }
            #expect(distinct.map { $0.contains(" \(Set(hashes[0].map { $0.split(separator: " ").last! }).count) distinct") } == true,
                    "\(args): \(outputs[0])")
        }
    }

    /// What running ahead bought, from IPCPLAY_SCHED_STATS's line: with two jobs the search
    /// took runs made ahead (the parallel path did not fall back to one run at a time); with
    /// one, none is made.
    @Test func runsMadeAheadAreUsed() throws {
        let script = "scripts/races/condition_if_fixed.lua"
        func stats(_ jobs: Int) throws -> (made: Int, used: Int, output: String) {
            let r = try exhaustive(["--jobs", "\(jobs)", script], environment: ["IPCPLAY_SCHED_STATS": "1"])
            expectComplete(r, schedules: 273, distinct: 252)
            let line = try #require(lines(r.stderr).first { $0.hasPrefix("ipcplay: exhaustive: 273 schedules, jobs \(jobs), ") }, "\(r.combined)")
            let words = line.split(separator: " ")
            let made = try #require(words.firstIndex(of: "made").flatMap { Int(words[$0 - 2]) }, "\(line)")
            let used = try #require(words.firstIndex(of: "used,").flatMap { Int(words[$0 - 3]) }, "\(line)")
            return (made, used, r.stdout)
        }
        let one = try stats(1)
        #expect(one.made == 0 && one.used == 0)
        let two = try stats(2)
        #expect(two.used > 0 && two.used <= two.made, "\(two)")
        #expect(two.output == one.output)
    }

    /// An interrupted search (here in its first run, which never ends) stops with no
    /// verdict: no failure is claimed for the run the signal ended; it is saved as a
    /// search stopped by a budget is, every process of its runs ends, and the exit status
    /// is 128 + the signal.
    @Test func anInterruptedSearchIsSavedWithoutAVerdict() throws {
        let (status, text) = try CancellationTests.interruptNeverEndingRun(with: SIGINT) { dir in
            "cd '\(dir.path)' && exec '\(Ipcplay.binary)' explore --exhaustive --jobs 2 --timeout 500 --resume saved s.lua"
        }
        #expect(status == 130)
        #expect(lines(text).first == "ipcplay: interrupted by SIGINT", "\(text)")
        #expect(text.contains("search saved to saved: go on with --resume saved"), "\(text)")
        #expect(lines(text).last == "incomplete: stopped after 0 schedules", "\(text)")
        #expect(!text.contains("failed"), "\(text)")
    }

    @Test func usageErrors() throws {
        for args in [["--preemptions", "1"], ["--resume", "x"], ["--exhaustive", "--preemptions", "-1"]] {
            let r = try Ipcplay.run(["explore"] + args + ["\(Self.fixtures)/readers.lua"])
            #expect(r.status == 2, "\(args): \(r.combined)")
        }
    }

    /// `test --explore exhaustive` runs each test exhaustively; with --preemptions 0 the
    /// lost update (which needs a preemption) is out of reach.
    @Test func testExploreExhaustive() throws {
        let dir = "\(Self.fixtures)/tests"
        let r = try Ipcplay.run(["test", "--explore", "exhaustive", dir], limit: Self.limit)
        #expect(r.status == 1, "\(r.combined)")
        #expect(lines(r.stdout).last == "1 passed, 1 failed", "\(r.combined)")
        #expect(r.stdout.contains("FAIL  \(dir)/lost_update_test.lua"), "\(r.combined)")
        #expect(Ipcplay.explanationLine(in: r.stdout) != nil, "\(r.combined)")
        let bounded = try Ipcplay.run(["test", "--explore", "exhaustive", "--preemptions", "0", dir], limit: Self.limit)
        #expect(bounded.status == 0, "\(bounded.combined)")
        #expect(lines(bounded.stdout).first?.hasPrefix("each test under every interleaving with at most 0 preemptions") == true, "\(bounded.combined)")
        let bad = try Ipcplay.run(["test", "--explore", "every", dir])
        #expect(bad.status == 2, "\(bad.combined)")
    }
}
