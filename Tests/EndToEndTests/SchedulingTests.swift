import Foundation
import Testing

/// Controlled scheduling: `run --sched`, virtual time, `explore`, `replay`.
@Suite("Controlled scheduling: --sched, explore, replay")
struct SchedulingTests {
    /// Three processes that print and share a queue and a value.
    static let chatty = """
        local q = ipc.queue(2)
        local v = ipc.value("i", 0)
        local ps = {}
        for p = 1, 2 do
          ps[p] = ipc.spawn(function()
            for i = 1, 5 do
              q:put(p * 10 + i)
              v.value = v.value + 1
              print(ipc.current().name .. " put " .. (p * 10 + i) .. " " .. math.random(1000))
            end
          end)
        end
        for _ = 1, 10 do print("got " .. q:get()) end
        for _, p in ipairs(ps) do p:join() end
        print("value " .. v.value .. " random " .. math.random(1000))
        """

    /// Output without what the scheduler does not control (pids).
    func masked(_ r: Ipcplay.Result) -> String {
        (r.stdout + r.stderr).replacingOccurrences(of: #"pid \d+"#, with: "pid", options: .regularExpression)
    }

    @Test(arguments: ["random", "pct"])
    func theSameSeedGivesTheSameRun(strategy: String) throws {
        let runs = try (0..<3).map { _ in try Ipcplay.runLua(Self.chatty, options: ["--sched", strategy, "--seed", "42"]) }
        for r in runs { #expect(r.status == 0, "\(r.combined)") }
        #expect(Set(runs.map(masked)).count == 1, "three runs with one seed differ:\n\(runs.map(masked).joined(separator: "\n----\n"))")
        // Another seed schedules differently (the output order, or math.random's numbers).
        let other = try Ipcplay.runLua(Self.chatty, options: ["--sched", strategy, "--seed", "43"])
        #expect(masked(other) != masked(runs[0]))
    }

    @Test func virtualTimeJumpsToTheEarliestDeadline() throws {
        // 100 virtual seconds: a run on the real clock would outlive the test's limit.
        let r = try Ipcplay.runLua("""
            local t0 = ipc.now()
            local e = ipc.event()
            local p = ipc.spawn(function() ipc.sleep(60) e:set() end)
            assert(e:wait(30) == false, "the event is not set after 30 s")
            assert(ipc.now() - t0 == 30, "the clock jumped to the wait's deadline: " .. (ipc.now() - t0))
            assert(e:wait() == true)
            assert(ipc.now() - t0 == 60, "then to the sleep's end: " .. (ipc.now() - t0))
            local q = ipc.queue()
            local v, err = q:get(40)
            assert(v == nil and err == "timeout")
            p:join()
            print(string.format("%.1f virtual seconds", ipc.now() - t0))
            """, options: ["--sched", "random", "--seed", "1"], limit: 60)
        #expect(!r.hung && r.status == 0, "\(r.combined)")
        #expect(r.stdout == "100.0 virtual seconds\n", "\(r.combined)")
    }

    @Test func everyProcessWaitingForEverIsADeadlock() throws {
        let r = try Ipcplay.runLua("""
            local q = ipc.queue()
            local p = ipc.spawn(function() q:get() end)
            q:get()
            """, options: ["--sched", "pct", "--seed", "1"])
        #expect(r.status == 124, "\(r.combined)")
        #expect(r.stderr.contains("deadlock: every process is blocked"), "\(r.combined)")
        #expect(r.stderr.contains("MainProcess: blocked in queue:get on queue#1"), "\(r.combined)")
        #expect(r.stderr.contains("Process-1: blocked in queue:get on queue#1"), "\(r.combined)")
    }

    @Test func aRunPastMaxStepsIsALivelock() throws {
        let r = try Ipcplay.runLua("""
            local v = ipc.value("i", 0)
            while true do v.value = v.value + 1 end
            """, options: ["--sched", "random", "--seed", "1", "--max-steps", "500"])
        #expect(r.status == 124, "\(r.combined)")
        #expect(r.stderr.contains("livelock"), "\(r.combined)")
    }

    @Test func jitterAndSchedDoNotGoTogether() throws {
        let r = try Ipcplay.runLua("print(1)", options: ["--sched", "pct", "--jitter", "1"])
        #expect(r.status == 2, "\(r.combined)")
    }

    // MARK: - explore

    /// Whatever schedule the search stumbles on first, the shrunk one has at most two
    /// preemptions (random's first failures have up to five; seed 4 ended at four with the
    /// greedy pass alone).
    @Test(arguments: ["1", "4", "5", "9"])
    func aRandomFailureShrinksToFewPreemptions(seed: String) throws {
        let r = try Ipcplay.run(["explore", "--strategy", "random", "--seed", seed, "scripts/races/lost_update.lua", "20"])
        #expect(r.status == 1, "\(r.combined)")
        let schedule = r.stdout.split(separator: "\n").first { $0.hasPrefix("schedule: ") } ?? ""
        let preemptions = Int(schedule.split(separator: " ").dropFirst(3).first ?? "") ?? 99
        #expect(preemptions <= 2, "shrunk to at most 2 preemptions: \(schedule)\n\(r.combined)")
    }

    @Test func exploreFindsTheLostUpdateAndShrinksIt() throws {
        let r = try Ipcplay.run(["explore", "--seed", "1", "--runs", "300", "scripts/lost_update.lua", "2", "20", "unlocked"])
        #expect(r.status == 1, "\(r.combined)")
        let schedule = r.stdout.split(separator: "\n").first { $0.hasPrefix("schedule: ") } ?? ""
        let preemptions = Int(schedule.split(separator: " ").dropFirst(3).first ?? "") ?? 99
        #expect(preemptions <= 2, "shrunk to at most 2 preemptions: \(schedule)\n\(r.combined)")
        #expect(r.stdout.contains("atomicity: value read at scripts/lost_update.lua:24 ... value write at scripts/lost_update.lua:24"
                                  + " interrupted by value write at scripts/lost_update.lua:24"), "\(r.stdout)")
        // The interleaving: one column per process, the explanation's steps marked.
        #expect(r.stdout.contains("step    MainProcess"), "\(r.stdout)")
        #expect(r.stdout.contains("▶"), "\(r.stdout)")
        // The replay line replays the same bytes, twice.
        let replay = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("replay: ipcplay replay ") })
        let words = replay.split(separator: " ").map(String.init)
        let args = Array(words.dropFirst(2))
        let first = try Ipcplay.run(args)
        let second = try Ipcplay.run(args)
        #expect(first.status == 1 && second.status == 1, "\(first.combined)")
        #expect(masked(first) == masked(second))
        #expect(first.stderr.contains("updates lost"), "\(first.combined)")
    }

    @Test func exploreFindsTheDeadlockOfTwoLocksInOppositeOrders() throws {
        let script = try Ipcplay.writeScript(Ipcplay.locksInOppositeOrders)
        defer { Ipcplay.removeScript(script) }
        let r = try Ipcplay.run(["explore", "--seed", "1", "--runs", "300", script.path])
        #expect(r.status == 1, "\(r.combined)")
        #expect(r.stdout.contains("deadlock: every process is blocked"), "\(r.stdout)")
        #expect(r.stdout.contains("blocked in lock:acquire on b"), "\(r.stdout)")
        #expect(r.stdout.contains("blocked in lock:acquire on a"), "\(r.stdout)")
        // Explained by its wait-for cycle, from the locks' owners.
        #expect(r.stdout.contains("\ncycle: MainProcess waits for b held by Process-1; Process-1 waits for a held by MainProcess\n"), "\(r.stdout)")
    }

    @Test(arguments: [["scripts/lost_update.lua", "2", "20", "locked"], ["scripts/producer_consumer.lua"],
                      ["scripts/bounded_buffer.lua"], ["scripts/joinable_queue.lua"]])
    func correctScenariosPassAThousandSchedules(_ script: [String]) throws {
        let r = try Ipcplay.run(["explore", "--seed", "7", "--runs", "1000"] + script, limit: 600)
        #expect(r.status == 0, "\(r.combined)")
        let last = r.stdout.split(separator: "\n").last ?? ""
        #expect(last.hasPrefix("1000 schedules, ") && last.hasSuffix(" distinct interleavings, no failure"), "\(r.stdout)")
        #expect(r.stdout.contains("PCT: a depth-3 bug is found with probability ≥"), "\(r.stdout)")
    }

    @Test func aReplayThatNoLongerFitsSaysWhereAndWhat() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipcplay-replay-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("race.lua")
        let original = """
            local v = ipc.value("i", 0)
            local p = ipc.spawn(function() local x = v.value; v.value = x + 1 end)
            local x = v.value
            v.value = x + 1
            p:join()
            assert(v.value == 2, "lost")
            """
        try original.write(to: file, atomically: true, encoding: .utf8)
        let found = try Ipcplay.run(["explore", "--seed", "1", file.path])
        #expect(found.status == 1, "\(found.combined)")
        let replay = try #require(found.stdout.split(separator: "\n").first { $0.hasPrefix("replay: ipcplay replay ") })
        let args = Array(replay.split(separator: " ").map(String.init).dropFirst(2))
        // A small edit (a comment, another line number): the replay still fits, with a warning.
        try ("-- a comment\n" + original).write(to: file, atomically: true, encoding: .utf8)
        let edited = try Ipcplay.run(args)
        #expect(edited.status == 1 && edited.stderr.contains("changed since this token was made"), "\(edited.combined)")
        #expect(edited.stderr.contains("lost"), "\(edited.combined)")
        // A real change (the child reads through an array now): it says at which step, and
        // what it expected and found.
        try original.replacingOccurrences(of: "local x = v.value; v.value = x + 1", with: "local a = ipc.array('i', 1); a[1] = 1")
            .write(to: file, atomically: true, encoding: .utf8)
        let changed = try Ipcplay.run(args)
        #expect(changed.status == 1, "\(changed.combined)")
        #expect(changed.stderr.contains("replay diverged at step"), "\(changed.combined)")
        #expect(changed.stderr.contains("expected") && changed.stderr.contains("found"), "\(changed.combined)")
    }

    @Test func aBadTokenIsAUsageError() throws {
        let r = try Ipcplay.run(["replay", "nonsense", "scripts/pipe.lua"])
        #expect(r.status == 2 && r.stderr.hasPrefix("ipcplay: not a replay token"), "\(r.combined)")
    }
}
