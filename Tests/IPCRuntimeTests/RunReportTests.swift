@testable import IPCRuntime
import Testing

@Suite("The run report's blocked list: typed fields, and the wait-for cycle")
struct RunReportTests {
    static func blocked(_ name: String, pid: Int32?, on object: String, heldBy holders: [(String, Int32?)]) -> BlockedProcess {
        BlockedProcess(name: name, pid: pid, state: .blocked, call: "lock:acquire", object: object, location: "t.lua:3",
                       holders: holders.map { BlockedProcess.Holder(name: $0.0, pid: $0.1) })
    }

    /// Every field comes back as it was, whatever the names hold (", at ", " on ", a
    /// newline): the fields travel one by one, not as a line to be split again.
    @Test func blockedEntriesSurviveTheReportFile() {
        var report = RunReport(.deadlock)
        report.blocked = [
            BlockedProcess(name: "worker: 1 (pid 9)", pid: 41, state: .blocked, call: "lock:acquire", object: "door on the left, at home",
                           location: "t.lua:5 (from t.lua:9)", waitedNanoseconds: 1_234_000_000,
                           holder: .init(name: "MainProcess", pid: 40), holders: [.init(name: "MainProcess", pid: 40)]),
            BlockedProcess(name: "MainProcess", state: .aboutToCall, call: "queue:get", object: "two\nlines"),
            BlockedProcess(name: "idle", pid: 42, state: .running),
            BlockedProcess(name: "reader", state: .blocked, call: "connection:recv", object: "pipe#1",
                           holders: [.init(name: "MainProcess", pid: nil), .init(name: "Process-2", pid: nil)]),
        ]
        report.cycle = "cycle: a waits for x held by b; b waits for y held by a"
        let back = RunReport.parse(report.text)
        #expect(back == report, "\(report.text)")
        #expect(back.blocked[0].line == "worker: 1 (pid 9) (pid 41): blocked in lock:acquire on door on the left, at home for 1.2 s, at t.lua:5 (from t.lua:9), held by MainProcess (pid 40)")
        #expect(back.blocked[2].line == "idle (pid 42): running (not blocked in an IPC call)")
    }

    /// The lines the C signal handlers write (a timeout, an interruption) read as entries.
    @Test func theSignalHandlersFieldsAreRead() {
        let text = """
            outcome: timeout
            blocked: MainProcess
            blocked-pid: 40
            blocked-state: blocked in
            blocked-call: lock:acquire
            blocked-object: b
            blocked-at: t.lua:6
            blocked-waited-ns: 2000000000
            blocked-holder: 41 Process-1
            blocked: Process-1
            blocked-pid: 41
            blocked-state: running

            """
        let r = RunReport.parse(text)
        #expect(r.outcome == .timeout)
        #expect(r.blocked.map(\.line) == ["MainProcess (pid 40): blocked in lock:acquire on b for 2.0 s, at t.lua:6, held by Process-1 (pid 41)",
                                          "Process-1 (pid 41): running (not blocked in an IPC call)"])
    }

    @Test func aLockOrderCycle() {
        let list = [Self.blocked("MainProcess", pid: 1, on: "Process-1", heldBy: [("Process-1", 2)]),
                    Self.blocked("Process-1", pid: 2, on: "B", heldBy: [("Process-2", 3)]),
                    Self.blocked("Process-2", pid: 3, on: "A", heldBy: [("Process-1", 2)])]
        #expect(WaitForGraph.cycleLine(list) == "cycle: Process-1 waits for B held by Process-2; Process-2 waits for A held by Process-1")
    }

    /// A pipe's "held by" names every process that still has its write end; the cycle
    /// goes on through one that waits.
    @Test func aPipeCycleNamesEveryHolderOfTheWriteEnd() {
        let list = [Self.blocked("MainProcess", pid: nil, on: "squares", heldBy: [("Process-2", nil)]),
                    Self.blocked("Process-2", pid: nil, on: "numbers", heldBy: [("MainProcess", nil), ("Process-3", nil)]),
                    Self.blocked("Process-3", pid: nil, on: "jobs", heldBy: [])]
        #expect(WaitForGraph.cycleLine(list)
                == "cycle: MainProcess waits for squares held by Process-2; Process-2 waits for numbers held by MainProcess and Process-3")
    }

    @Test func aProcessWaitingForItselfIsACycle() {
        let list = [Self.blocked("Process-1", pid: 5, on: "pipe#1", heldBy: [("Process-1", 5)])]
        #expect(WaitForGraph.cycleLine(list) == "cycle: Process-1 waits for pipe#1 held by Process-1")
    }

    /// No cycle when the holders are unknown, or when one of them is not blocked (it
    /// could still release).
    @Test func noCycleWithoutKnownBlockedHolders() {
        #expect(WaitForGraph.cycleLine([Self.blocked("A", pid: 1, on: "q", heldBy: []), Self.blocked("B", pid: 2, on: "r", heldBy: [])]) == nil)
        var running = Self.blocked("B", pid: 2, on: "y", heldBy: [("A", 1)])
        running.state = .running
        #expect(WaitForGraph.cycleLine([Self.blocked("A", pid: 1, on: "x", heldBy: [("B", 2)]), running]) == nil)
    }
}
