import Foundation
import Testing

/// Where a port of Python's multiprocessing code expects Python's semantics (issue 29),
/// proved under the controlled scheduler: every schedule, not the lucky ones.
@Suite("Python's semantics under the controlled scheduler")
struct PythonSemanticsTests {
    /// Three processes wait on an event; the main process sets and at once clears it.
    /// Under virtual time the sleep ends only once every waiter is blocked in its wait, so
    /// each of them is waiting at the set(), and each must return true.
    static let setAndClear = """
        local ipc = require("ipc")
        local e = ipc.event()
        local woke = ipc.value("i", 0)
        local ps = {}
        for k = 1, 3 do ps[k] = ipc.spawn(function() if e:wait() then woke:add(1) end end) end
        ipc.sleep(1)
        e:set()
        e:clear()
        for _, p in ipairs(ps) do p:join() end
        assert(woke.value == 3, woke.value .. " of 3 waiters woke")
        assert(not e:is_set())
        """

    /// Explores `source` for `runs` schedules (seed 1): every one of them passes.
    func expectNoFailure(_ source: String, runs: Int, options: [String] = []) throws {
        let script = try Ipcplay.writeScript(source)
        defer { Ipcplay.removeScript(script) }
        let r = try Ipcplay.run(["explore"] + options + ["--seed", "1", "--runs", "\(runs)", script.path], limit: 300)
        #expect(r.status == 0, "\(r.combined)")
        let last = r.stdout.split(separator: "\n").last ?? ""
        #expect(last.hasPrefix("\(runs) schedules, ") && last.hasSuffix("no failure"), "\(r.stdout)")
    }

    @Test(arguments: ["pct", "random"])
    func anEventSetThenClearedWakesEveryWaiterInEverySchedule(strategy: String) throws {
        try expectNoFailure(Self.setAndClear, runs: 300, options: ["--strategy", strategy])
    }

    /// A barrier's action runs once per passage, before any party leaves, in every
    /// schedule (its own calls are steps like any other).
    static let barrierAction = """
        local ipc = require("ipc")
        local runs = ipc.value("i", 0)
        local early = ipc.value("i", 0)
        local b = ipc.barrier(3, {action = function() runs:add(1) end})
        local function party()
          for k = 1, 2 do
            assert(b:wait())
            if runs.value < k then early:add(1) end
          end
        end
        local ps = {}
        for k = 1, 2 do ps[k] = ipc.spawn(party) end
        party()
        for _, p in ipairs(ps) do p:join() end
        assert(runs.value == 2, "the action ran " .. runs.value .. " times in 2 passages")
        assert(early.value == 0, "a party left before the action ran")
        """

    @Test func aBarrierActionRunsOncePerPassageBeforeAnyPartyLeavesInEverySchedule() throws {
        try expectNoFailure(Self.barrierAction, runs: 200)
    }

    /// A pool maps, and a worker killed in the middle of a task fails that task (it does
    /// not hang the caller), in every schedule: the pool's calls are steps like any other.
    static let poolWithAKill = """
        local ipc = require("ipc")
        local pool = ipc.pool(2)
        local out = pool:map(function(x) return x * x end, {1, 2, 3})
        assert(out[1] == 1 and out[2] == 4 and out[3] == 9)
        local hold = ipc.event()
        local started = ipc.queue()
        local r = pool:apply_async(function() started:put(ipc.current().pid) hold:wait() end)
        local pid = started:get()
        for _, p in ipairs(ipc.active_children()) do if p.pid == pid then p:kill() end end
        local ok, err = pcall(r.get, r)
        assert(not ok and err:find("died"), tostring(err))
        pool:close()
        assert(pool:join())
        """

    @Test func aPoolSurvivesAKilledWorkerInEverySchedule() throws {
        try expectNoFailure(Self.poolWithAKill, runs: 100)
    }
}
