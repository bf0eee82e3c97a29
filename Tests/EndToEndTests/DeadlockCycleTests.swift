import Foundation
import Testing

/// A deadlock's report ends with its wait-for cycle, from the holders the runtime knows:
/// a lock's owner, the child a join waits for, the processes that still hold the write
/// end of a pipe. Under `run` (its supervisor, and `--sched`), `explore` and `test`.
@Suite("Deadlocks name their wait-for cycle")
struct DeadlockCycleTests {
    static let limit = Double(300 * Ipcplay.slowdown)
    static let lockOrder = "scripts/races/lock_order.lua"
    static let pipeLesson = "scripts/races/pipe_write_end.lua"
    static let lockCycle = "cycle: Process-1 waits for B held by Process-2; Process-2 waits for A held by Process-1"
    static let pipeCycle = "cycle: MainProcess waits for squares held by Process-2; Process-2 waits for numbers held by MainProcess"

    func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init) }

    /// Two locks taken in opposite orders, in an order the events force: every run deadlocks.
    static let forcedLockOrder = """
        local a, b = ipc.lock({name = "a"}), ipc.lock({name = "b"})
        local took_a, took_b = ipc.event(), ipc.event()
        local p = ipc.spawn(function() a:acquire(); took_a:set(); took_b:wait(); b:acquire() end)
        took_a:wait()
        b:acquire()
        took_b:set()
        a:acquire()
        """

    /// Without a scheduler: the supervisor's report, holders read from the locks' owners.
    @Test func runsSupervisorNamesTheLockCycle() throws {
        let script = try Ipcplay.writeScript(Self.forcedLockOrder)
        defer { Ipcplay.removeScript(script) }
        let r = try Ipcplay.run(["run", script.path], limit: Self.limit)
        #expect(r.status == 124, "\(r.combined)")
        let err = lines(r.stderr)
        #expect(err.contains { $0.hasPrefix("  MainProcess (pid ") && $0.contains("blocked in lock:acquire on a") && $0.contains(", held by Process-1 (pid ") },
                "\(r.stderr)")
        #expect(err.last == "cycle: MainProcess waits for a held by Process-1; Process-1 waits for b held by MainProcess", "\(r.stderr)")
    }

    /// The pipe lesson deadlocks on every run: the cycle names the process that still
    /// holds the write end of the pipe the other reads.
    @Test func runsSupervisorNamesWhoHoldsTheWriteEnd() throws {
        let r = try Ipcplay.run(["run", Self.pipeLesson], limit: Self.limit)
        #expect(r.status == 124, "\(r.combined)")
        #expect(lines(r.stderr).last == Self.pipeCycle, "\(r.stderr)")
    }

    /// Under the controlled scheduler, the same lines, with no pids: the seed deadlocks.
    @Test(arguments: [(lockOrder, lockCycle), (pipeLesson, pipeCycle)])
    func runUnderTheSchedulerNamesTheCycle(_ script: String, _ cycle: String) throws {
        let r = try Ipcplay.run(["run", "--sched", "random", "--seed", "1", script], limit: Self.limit)
        #expect(r.status == 124, "\(r.combined)")
        let err = lines(r.stderr)
        #expect(err.first == "ipcplay: deadlock: every process is blocked, and none of them can wake another:", "\(r.stderr)")
        #expect(err.last == cycle, "\(r.stderr)")
    }

    /// `explore` explains the shrunk deadlock by its cycle, after the schedule line.
    @Test(arguments: [(lockOrder, lockCycle), (pipeLesson, pipeCycle)])
    func exploreExplainsTheDeadlockByItsCycle(_ script: String, _ cycle: String) throws {
        let r = try Ipcplay.run(["explore", "--seed", "1", script], limit: Self.limit)
        #expect(r.status == 1, "\(r.combined)")
        let out = lines(r.stdout)
        let schedule = try #require(out.firstIndex { $0.hasPrefix("schedule: ") }, "\(r.stdout)")
        #expect(out.dropFirst(schedule + 1).first == cycle, "\(r.stdout)")
        #expect(out.filter { $0.hasPrefix("cycle: ") }.count == 1, "once: \(r.stdout)")
    }

    /// `test` reads the blocked list field by field: an object whose name holds ", at " and
    /// " on " comes through whole in TAP (a line split again could not tell), and the
    /// cycle is in every form of the report.
    @Test func testsReportCarriesTheTypedBlockedListAndTheCycle() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-cycle")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("cycle_test.lua")
        try Self.forcedLockOrder.replacingOccurrences(of: "{name = \"a\"}", with: "{name = \"door on the left, at home\"}")
            .write(to: file, atomically: true, encoding: .utf8)
        let cycle = "cycle: MainProcess waits for door on the left, at home held by Process-1; Process-1 waits for b held by MainProcess"
        let junit = dir.appendingPathComponent("junit.xml")
        let text = try Ipcplay.run(["test", "--timeout", "20", "--junit", junit.path, file.path], limit: Self.limit)
        #expect(text.status == 1, "\(text.combined)")
        #expect(lines(text.stdout).contains("      " + cycle), "\(text.stdout)")
        #expect(try String(contentsOf: junit, encoding: .utf8).contains(cycle), "the JUnit report")
        let tap = try Ipcplay.run(["test", "--timeout", "20", "--tap", file.path], limit: Self.limit)
        #expect(tap.stdout.contains("""
                - process: "MainProcess"
            """), "\(tap.stdout)")
        #expect(tap.stdout.contains("      call: \"lock:acquire\"\n      object: \"door on the left, at home\"\n      at: \"\(file.path):7\"\n"),
                "\(tap.stdout)")
        #expect(tap.stdout.contains("      held_by: \"Process-1 (pid "), "\(tap.stdout)")
        #expect(tap.stdout.contains("  cycle: \"" + cycle.dropFirst("cycle: ".count) + "\"\n"), "\(tap.stdout)")
    }
}
