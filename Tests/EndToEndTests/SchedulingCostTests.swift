import Foundation
import Testing

/// What a controlled run costs per step: probes evaluated by the deciding process (no
/// visits), and the same runs as when every recheck was a visit.
@Suite("Scheduling cost")
struct SchedulingCostTests {
    static let probes = Ipcplay.packageRoot.appendingPathComponent("Tests/EndToEndTests/Fixtures/probes")
    static let determinism = Ipcplay.packageRoot.appendingPathComponent("Tests/EndToEndTests/Fixtures/determinism")

    /// The counters IPCPLAY_SCHED_STATS prints at the run's last step.
    static func statistics(_ r: Ipcplay.Result) -> (steps: Int, handoffs: Int, visits: Int)? {
        guard let line = r.stderr.split(separator: "\n").first(where: { $0.hasPrefix("ipcplay: sched: ") }) else { return nil }
        let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        guard numbers.count == 3 else { return nil }
        return (numbers[0], numbers[1], numbers[2])
    }

    /// `run --sched STRATEGY --seed SEED` of a probe scenario with the counters printed
    /// (IPCPLAY_SCHED_STATS; `environment` adds to it).
    static func runCounted(_ scenario: String, _ strategy: String = "pct", seed: Int = 1, directory: URL = SchedulingCostTests.probes,
                           environment: [String: String] = [:]) throws -> Ipcplay.Result {
        try Ipcplay.run(["run", "--sched", strategy, "--seed", "\(seed)", scenario], directory: directory, limit: 60,
                        environment: environment.merging(["IPCPLAY_SCHED_STATS": "1"]) { mine, _ in mine })
    }

    /// Every wait on shared memory (queue, joinable queue, semaphore, lock, value lock,
    /// event, barrier, condition, join, sleep) is decided where the state is: no visit.
    @Test(arguments: ["pct", "random"])
    func sharedMemoryWaitsNeedNoVisit(_ strategy: String) throws {
        for seed in 1...6 {
            let r = try Self.runCounted("shared_memory_waits.lua", strategy, seed: seed)
            #expect(r.status == 0 && r.stdout.contains("value\t40"), "\(r.combined)")
            let stats = try #require(Self.statistics(r), "\(r.combined)")
            #expect(stats.visits == 0, "seed \(seed): \(stats)")
            #expect(stats.steps > 250, "seed \(seed): \(stats)")
        }
    }

    /// A pipe's receive is still asked of the receiver (its buffered input is its own):
    /// the one kind of wait the documentation lists as visited, and the counter counts.
    @Test func aPipeReceiveIsVisited() throws {
        let r = try Self.runCounted("pipe_receive.lua")
        #expect(r.status == 0 && r.stdout.contains("sum\t15"), "\(r.combined)")
        let stats = try #require(Self.statistics(r), "\(r.combined)")
        #expect(stats.visits > 0, "\(stats)")
    }

    /// When the same process goes on, a step is decided where it is made: no handoff, and
    /// (with strace there to count) no syscall but the run's own set-up and output.
    @Test func aProcessThatGoesOnMakesNoHandoffAndNoSyscall() throws {
        let r = try Self.runCounted("one_process.lua")
        #expect(r.status == 0 && r.stdout.contains("2001000"), "\(r.combined)")
        let stats = try #require(Self.statistics(r), "\(r.combined)")
        #expect(stats.steps > 6000 && stats.handoffs == 0 && stats.visits == 0, "\(stats)")
        guard (try? Ipcplay.shell("strace -V >/dev/null 2>&1").status) == 0 else { return }
        let counts = try Ipcplay.shell("strace -f -c -o /dev/stdout \(Ipcplay.binary) run --sched pct --seed 1 \(Self.probes.path)/one_process.lua >/dev/null 2>/dev/null; true")
        let total = counts.output.split(separator: "\n").first { $0.hasSuffix("total") }
            .flatMap { $0.split(separator: " ").compactMap { Int($0) }.dropFirst().first }
        if let total { #expect(total < 1000, "\(counts.output)") }
    }

    /// Probes decide exactly as visits did: the same seed gives the same steps, output and
    /// outcome with probes evaluated by the decider and with every recheck a visit.
    @Test(arguments: ["shared_memory_waits.lua", "dead_holder_lock.lua", "kill_blocked.lua", "timeouts.lua",
                      "condition_timeout.lua", "barrier_timeout.lua", "joinable_dying_consumer.lua", "semaphore_holder_dies.lua"])
    func probesDecideAsVisitsDid(_ scenario: String) throws {
        let directory = scenario == "shared_memory_waits.lua" ? Self.probes : Self.determinism
        for seed in [3, 11] {
            var outcomes: [String] = []
            for environment in [[:], ["IPCPLAY_SCHED_NO_PROBES": "1"]] {
                let r = try Self.runCounted(scenario, seed: seed, directory: directory, environment: environment)
                #expect(!r.hung, "\(r.combined)")
                let steps = Self.statistics(r).map { "\($0.steps) steps" } ?? "no statistics"
                let text = TrustworthyExplorationTests.masked(r)
                    .replacingOccurrences(of: #"ipcplay: sched: .*\n"#, with: "", options: .regularExpression)
                outcomes.append(steps + "\n" + text)
            }
            #expect(outcomes[0] == outcomes[1], "\(scenario), seed \(seed):\n\(outcomes[0])\n======\n\(outcomes[1])")
        }
    }
}
