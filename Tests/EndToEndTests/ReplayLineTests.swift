import Foundation
import Testing

/// Issue 24: a replay line always replays, a bad token is one error line, shrinking is
/// bounded by --time-limit and its budget and finds the schedules without preemption.
@Suite("Replay lines that replay; shrinking bounded and minimal")
struct ReplayLineTests {
    /// The first line of `text` that starts with `prefix`.
    func line(_ text: String, _ prefix: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
    }

    /// "schedule: 53 steps, 0 preemptions" -> 0
    func preemptions(_ text: String) -> Int? {
        line(text, "schedule: ").flatMap { Int($0.split(separator: " ").dropFirst(3).first ?? "") }
    }

    @Test func aCraftedTokenIsOneErrorLine() throws {
        // Once a crash (an entry naming process 0 of an empty table).
        let crash = try Ipcplay.run(["replay", "s1.0.AAAAAQAAAA", "scripts/races/lost_update.lua"])
        #expect(crash.status == 2, "\(crash.combined)")
        #expect(crash.stderr.hasPrefix("ipcplay: not a replay token") && crash.stderr.split(separator: "\n").count == 1, "\(crash.combined)")
        // 92 bytes claiming 80 million decisions: once 5.6 GB and two minutes.
        let bomb = "s1.0.AAEBYQENcHJvY2VzcyBzdGFydAABAAAIAYCt4gQBgK3iBAGAreIEAYCt4gQBgK3iBAGAreIEAYCt4gQBgK3iBA"
        let big = try Ipcplay.run(["replay", bomb, "scripts/races/lost_update.lua"], limit: 60)
        #expect(big.status == 2 && !big.hung, "\(big.combined)")
        #expect(big.stderr.contains("more than a run of --max-steps 100000 can take"), "\(big.combined)")
        #expect(big.seconds < 10, "\(big.seconds) s")
        // A token file that is not there.
        let missing = try Ipcplay.run(["replay", "@/nonexistent/ipcplay.token", "scripts/races/lost_update.lua"])
        #expect(missing.status == 2 && missing.stderr.hasPrefix("ipcplay: cannot read the token file /nonexistent/ipcplay.token"), "\(missing.combined)")
    }

    /// A long failure whose shrinking the time limit cuts: the limit holds, the best
    /// schedule so far is reported as such, its token (thousands of decisions) goes to a
    /// file under $TMPDIR, and the line (with --max-steps) replays the same failure.
    @Test func aLongFailureReplaysFromItsLine() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-tokens")
        defer { try? FileManager.default.removeItem(at: dir) }
        let found = try Ipcplay.run(["explore", "--strategy", "random", "--seed", "3", "--time-limit", "2", "--max-steps", "50000", "--timeout", "45",
                                     "scripts/races/lost_update.lua", "3000"], limit: 300, environment: ["TMPDIR": dir.path])
        #expect(found.status == 1, "\(found.combined)")
        // Before: 2,000 shrink runs of 12,000 steps each, minutes.
        #expect(found.seconds < 30, "\(found.seconds) s")
        #expect(found.stdout.contains(" runs (time limit reached)"), "\(found.stdout)")
        let replay = try #require(line(found.stdout, "replay: "), "\(found.stdout)")
        #expect(replay.count < 300, "\(replay)")
        #expect(replay.contains(" --max-steps 50000 --timeout 45 @\(dir.path)/ipcplay-replay-"), "\(replay)")
        let error = try #require(line(found.stdout, "error in the main script: "), "\(found.stdout)")
        let args = Array(replay.split(separator: " ").map(String.init).dropFirst(2))
        let replayed = try Ipcplay.run(args, limit: 300)
        #expect(replayed.status == 1, "\(replayed.combined)")
        #expect(replayed.stderr.contains(error.dropFirst("error in the main script: ".count)), "\(replayed.combined)")
    }

    /// Scheduled processes that each write or read a few times; the bug (c sees nothing
    /// of a and b) has a schedule without preemption: c runs first, whole.
    static let cBeforeTheOthers = """
        local ipc = require("ipc")
        local x = ipc.value("i", 0, {name = "x"})
        local y = ipc.value("i", 0, {name = "y"})
        local a = ipc.spawn(function() for _ = 1, 6 do x.value = x.value + 1 end end)
        local b = ipc.spawn(function() for _ = 1, 6 do y.value = y.value + x.value end end)
        local c = ipc.spawn(function()
          for _ = 1, 6 do local _ = y.value end
          assert(x.value + y.value ~= 0, "c ran before a and b")
        end)
        a:join(); b:join(); c:join()
        """

    /// Before: 1 preemption for 6 of these 10 seeds (the greedy pass cannot remove it).
    @Test func aBugWithASchedulWithoutPreemptionShrinksToIt() throws {
        let script = try Ipcplay.writeScript(Self.cBeforeTheOthers)
        defer { Ipcplay.removeScript(script) }
        for seed in 1...10 {
            let r = try Ipcplay.run(["explore", "--strategy", "random", "--seed", String(seed), script.path])
            #expect(r.status == 1 && r.stdout.contains("c ran before a and b"), "\(r.combined)")
            #expect(preemptions(r.stdout) == 0, "seed \(seed): \(line(r.stdout, "schedule: ") ?? "")\n\(r.stdout)")
        }
    }

    /// The greedy pass alone stopped at 3 preemptions (each needed by the others); the
    /// schedules of 1, then 2 preemptions hold one of 2.
    @Test(arguments: ["1", "2", "3"])
    func aMissedWakeupShrinksToTwoPreemptions(seed: String) throws {
        let r = try Ipcplay.run(["explore", "--seed", seed, "scripts/races/missed_wakeup.lua"])
        #expect(r.status == 1, "\(r.combined)")
        #expect(preemptions(r.stdout) == 2, "\(line(r.stdout, "schedule: ") ?? "")\n\(r.stdout)")
    }

    @Test func shrinkingSaysWhenItsBudgetEndsIt() throws {
        let r = try Ipcplay.run(["explore", "--strategy", "random", "--seed", "1", "--shrink-runs", "3", "scripts/races/lost_update.lua", "20"])
        #expect(r.status == 1, "\(r.combined)")
        // Three runs shrinking, one to log the result, then the search for the pair.
        #expect(r.stdout.contains(" runs (budget reached)"), "\(r.stdout)")
        #expect(!r.stderr.contains("shrinking:"), "no progress line outside a terminal: \(r.stderr)")
        let unbounded = try Ipcplay.run(["explore", "--strategy", "random", "--seed", "1", "scripts/races/lost_update.lua", "20"])
        #expect(!unbounded.stdout.contains("reached)"), "\(unbounded.stdout)")
    }

    @Test(.needsPython3) func shrinkingShowsItsProgressOnATerminal() throws {
        let pty = "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)"
        let r = try Ipcplay.command("/usr/bin/env", ["python3", "-c", pty, Ipcplay.binary, "explore", "--strategy", "random",
                                                     "--seed", "1", "scripts/races/lost_update.lua", "20"])
        #expect(r.status == 1, "\(r.combined)")
        #expect(r.stdout.contains("\rshrinking: "), "\(r.combined)")
        #expect(r.stdout.contains(" runs, best so far "), "\(r.combined)")
    }
}
