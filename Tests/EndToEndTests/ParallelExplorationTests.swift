import Foundation
import Testing

/// `--jobs` and `--shard`: the same seed gives the same failure and the same coverage
/// whatever the number of runs at once and however the search is split.
@Suite("Parallel and sharded exploration")
struct ParallelExplorationTests {
    /// Three processes on a queue and a counter, with no bug: every schedule passes (the
    /// scenario of the `schedules` benchmark).
    static let passing = Ipcplay.packageRoot.appendingPathComponent("scripts/bench/schedule_3x100.lua").path

    /// A reader that sees x = 1 only between the writer's two writes: a few schedules in a
    /// hundred show it (PCT's seed 2 at schedule 41, random's at 23).
    static let rare = """
        local x = ipc.value("i", 0)
        local y = ipc.value("i", 0)
        local z = ipc.value("i", 0)
        local a = ipc.spawn(function()
          for i = 1, 12 do z.value = i end
          x.value = 1
          y.value = 1
        end)
        local b = ipc.spawn(function()
          for _ = 1, 12 do local _ = z.value end
          local seen = x.value
          if seen == 1 then assert(y.value == 1, "saw x = 1 but y = 0") end
        end)
        a:join(); b:join()
        """

    /// The (schedule, hash) lines `--hashes` wrote.
    static func hashes(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// The result lines, without the seconds shrinking took.
    static func report(_ r: Ipcplay.Result) -> String {
        r.stdout.replacingOccurrences(of: #"\d+(\.\d+)? ?s\b"#, with: "N s", options: .regularExpression)
            .replacingOccurrences(of: #"pid \d+"#, with: "pid N", options: .regularExpression)
    }

    @Test(arguments: ["pct", "random"])
    func theSameFailureWhateverJobs(_ strategy: String) throws {
        let script = try Ipcplay.writeScript(Self.rare)
        defer { Ipcplay.removeScript(script) }
        var reports: [String] = []
        for jobs in [1, 2, 3] {
            let r = try Ipcplay.run(["explore", "--strategy", strategy, "--seed", "2", "--runs", "400", "--jobs", "\(jobs)", script.path],
                                    limit: 300)
            #expect(r.status == 1 && r.stdout.contains("saw x = 1 but y = 0"), "jobs \(jobs): \(r.combined)")
            reports.append(Self.report(r))
        }
        #expect(reports[0] == reports[1] && reports[1] == reports[2], "\(reports.joined(separator: "\n======\n"))")
        // The failure is not the first schedule's: runs at once had to be merged in order.
        #expect(!reports[0].contains("schedule 1 of"), "\(reports[0])")
    }

    @Test(arguments: ["pct", "random"])
    func theSameCoverageWhateverJobs(_ strategy: String) throws {
        try Ipcplay.withTmpDirectory("ipcplay-jobs") { dir in
            var outputs: [String] = []
            var lists: [[String]] = []
            for jobs in [1, 2, 4] {
                let file = dir.appendingPathComponent("jobs\(jobs).txt").path
                let r = try Ipcplay.run(["explore", "--strategy", strategy, "--seed", "9", "--runs", "60", "--jobs", "\(jobs)",
                                         "--hashes", file, Self.passing], limit: 300)
                #expect(r.status == 0, "\(r.combined)")
                outputs.append(r.stdout)
                lists.append(try Self.hashes(file))
            }
            #expect(lists[0].count == 60)
            #expect(lists[0] == lists[1] && lists[1] == lists[2])
            #expect(outputs[0] == outputs[1] && outputs[1] == outputs[2], "\(outputs.joined(separator: "\n======\n"))")
        }
    }

    /// The shards of one seed cover exactly the schedules of one run: the same (schedule,
    /// interleaving hash) pairs, each in one shard.
    @Test(arguments: ["pct", "random"])
    func shardsCoverExactlyWhatOneRunCovers(_ strategy: String) throws {
        try Ipcplay.withTmpDirectory("ipcplay-shards") { dir in
            let whole = dir.appendingPathComponent("whole.txt").path
            let one = try Ipcplay.run(["explore", "--strategy", strategy, "--seed", "12", "--runs", "50", "--hashes", whole, Self.passing],
                                      limit: 300)
            #expect(one.status == 0, "\(one.combined)")
            let all = try Self.hashes(whole)
            #expect(all.count == 50)
            var union: [String] = []
            for i in 1...3 {
                let file = dir.appendingPathComponent("shard\(i).txt").path
                let r = try Ipcplay.run(["explore", "--strategy", strategy, "--seed", "12", "--runs", "50", "--shard", "\(i)/3",
                                         "--jobs", "2", "--hashes", file, Self.passing], limit: 300)
                #expect(r.status == 0, "\(r.combined)")
                let mine = try Self.hashes(file)
                #expect(r.stdout.contains("shard \(i)/3: \(mine.count) of the 50 schedules"), "\(r.combined)")
                #expect(r.stdout.contains("\(mine.count) schedules,"), "\(r.combined)")
                union += mine
            }
            #expect(union.count == all.count, "\(union.count) against \(all.count)")
            #expect(Set(union) == Set(all))
        }
    }

    /// A failure found by a shard is reported under its number in the whole search.
    @Test func aShardReportsTheFailureUnderItsNumber() throws {
        let script = try Ipcplay.writeScript(Self.rare)
        defer { Ipcplay.removeScript(script) }
        let whole = try Ipcplay.run(["explore", "--strategy", "random", "--seed", "2", "--runs", "400", "--jobs", "1", script.path], limit: 300)
        let headline = try #require(whole.stdout.split(separator: "\n").first { $0.contains(" failed (") }, "\(whole.combined)")
        let number = try #require(headline.split(separator: " ").firstIndex(of: "schedule").map { Int(headline.split(separator: " ")[$0 + 1]) ?? 0 })
        let shard = "\((number - 1) % 2 + 1)/2"
        let r = try Ipcplay.run(["explore", "--strategy", "random", "--seed", "2", "--runs", "400", "--shard", shard, script.path], limit: 300)
        #expect(r.status == 1 && r.stdout.contains(String(headline.prefix(while: { $0 != ";" }))), "\(headline)\n\(r.combined)")
    }

    @Test func usageErrors() throws {
        for bad in [["--shard", "0/3"], ["--shard", "4/3"], ["--shard", "x"], ["--jobs", "0"], ["--exhaustive", "--shard", "1/2"]] {
            let r = try Ipcplay.run(["explore"] + bad + [Self.passing], limit: 60)
            #expect(r.status == 2, "\(bad): \(r.combined)")
            #expect(r.stderr.contains(bad.contains("--jobs") ? "--jobs" : "--shard"), "\(bad): \(r.combined)")
        }
    }
}
