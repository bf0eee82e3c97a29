import CRuntimeShim
import CSystemShim
import Glibc
import IPCCore
import SystemPackage

/// Runs one prepared script under many schedules (`explore`, `replay`, `step`). It is a
/// fork server: the script is loaded and compiled once, in this process, and every run is
/// a fork of it, so a run costs a fork per process and a futex handoff per step.
///
/// It serves several runs at once (`--jobs`), each in its own *slot* (its schedule log,
/// its report and output files): `launch` in a slot, `awaitAny` for whichever ends
/// first, `collect` it. Runs are processes, watched through their pidfds: no threads.
public final class Explorer {
    /// Runs the prepared script as a run's host with these options; returns its status.
    /// Called in a fresh fork.
    public typealias Execute = (RunOptions) -> Int32

    let execute: Execute
    let base: RunOptions
    let maxSteps: Int?

    /// What one run in progress writes to: made before it is forked, read after it ended.
    struct Slot {
        let log: ScheduleLog
        let reportFD: Int32
        let outputFD: Int32
    }
    var slots: [Slot] = []
    /// Pins each run of slot k to the k-th CPU (when several slots run at once).
    var pinsSlots = false
    /// The hosts of runs in progress (by pid: their slot), and the exit statuses of those
    /// that ended and were reaped (a run's leftovers are reaped with `waitpid(-1)`, which
    /// may reap another slot's host).
    var running: [Int32: Int] = [:]
    var ended: [Int32: Int32] = [:]

    /// The log of slot 0, where `run`, `replay` and `step` runs write.
    public var log: ScheduleLog { slots[0].log }
    var reportFD: Int32 { slots[0].reportFD }
    var outputFD: Int32 { slots[0].outputFD }

    public init(base: RunOptions, maxSteps: Int?, execute: @escaping Execute) throws(IPCError) {
        self.base = base
        self.maxSteps = maxSteps
        self.execute = execute
        try addSlot()
        // A run's host leads its run's group; what it leaves behind comes back here.
        _ = ipc_set_child_subreaper()
    }

    func addSlot() throws(IPCError) {
        let log = try ScheduleLog(capacity: max(min(maxSteps ?? 1_000_000, 4_000_000), 1024) + 16)
        let reportFD = ipc_memfd("ipcplay-report", 0)
        let outputFD = ipc_memfd("ipcplay-output", 0)
        guard reportFD >= 0, outputFD >= 0 else {
            if reportFD >= 0 { close(reportFD) }
            if outputFD >= 0 { close(outputFD) }
            throw IPCError.resource("cannot create a memory file: \(Errno(rawValue: -min(reportFD, outputFD)))")
        }
        for fd in [reportFD, outputFD] { _ = fcntl(fd, F_SETFL, O_APPEND) }
        slots.append(Slot(log: log, reportFD: reportFD, outputFD: outputFD))
    }

    /// Makes room for `count` runs at once.
    public func reserveSlots(_ count: Int) throws(IPCError) {
        while slots.count < count { try addSlot() }
        pinsSlots = count > 1
    }

    /// The CPUs this program may use: `--jobs`'s default.
    public static var cpus: Int { Int(ipc_allowed_cpus()) }

    deinit {
        for slot in slots {
            close(slot.reportFD)
            close(slot.outputFD)
        }
    }

    /// Where a run's output goes.
    public enum Output { case discard, capture, inherit }

    /// One finished run.
    public struct Run: Sendable {
        public var status: Int32
        public var report: RunReport
        public var steps: [ScheduleLog.Step]
        public var names: [String]
        public var objectNames: [UInt32: String]
        public var hash: UInt64
        public var choices: Int
        public var output: String
        public var seed: UInt64
        /// What each process was waiting in when the run failed (nil: it had ended).
        public var pending: [ScheduleLog.Step?] = []
        /// PCT's conditions did not hold for the whole run (bit 0: a process was lowered at
        /// an explicit yield; bit 1: the run went on fairly past the bound).
        public var leftPCT: UInt32 = 0

        /// A failure in `explore`'s sense: an error in any process, a deadlock, a livelock,
        /// a divergence, or a run that ended without a report (it crashed).
        public var failed: Bool { report.outcome.map { _ in report.failed } ?? true }

        /// What "the same failure" means when shrinking: the outcome and its first line,
        /// numbers masked (pids, counts); for a deadlock, the calls the processes were
        /// blocked in, on their objects.
        public var signature: String {
            var text = "\(report.outcome?.rawValue ?? "status \(status)")"
            if report.outcome == .deadlock {
                let blocked = pending.compactMap { $0 }.map { p in
                    (CallSite.all.indices.contains(p.site) ? CallSite.all[p.site].name : "?") + " on " + (objectNames[p.object] ?? "")
                }
                text += ": " + blocked.sorted().joined(separator: ", ")
            } else if report.outcome != .livelock {
                text += ": "
                for c in (report.messages.first ?? "").prefix(while: { $0 != "\n" }) {
                    if c.isNumber { if text.last != "#" { text.append("#") } } else { text.append(c) }
                }
            }
            return text
        }

        /// The process chosen at each step where more than one could go.
        public var picks: [Int] { steps.filter(\.isChoice).map(\.process) }

        /// Switches away from a process that could have gone on.
        public var preemptions: Int { steps.filter(\.preempted).count }

        /// The decisions of this run, named (for a replay token): a choice at each step where
        /// more than one could go; a kill after the choice of the process it kills.
        public var decisions: [ScheduleLog.Decision] {
            var made: [Int: Int] = [:]
            return steps.flatMap { s -> [ScheduleLog.Decision] in
                let d = ScheduleLog.Decision(process: nil, processName: name(s.process), site: CallSite.with(id: s.site),
                                             objectName: objectNames[s.object] ?? "")
                var kill = d
                kill.killBeforeStep = made[s.process, default: 0] + 1
                if !s.killed { made[s.process, default: 0] += 1 }
                return (s.isChoice ? [d] : []) + (s.killed ? [kill] : [])
            }
        }

        /// The kills of this run, each after how many choices it came (`byIndex`'s form).
        public var kills: [Kill] {
            var choices = 0
            var kills: [Kill] = []
            var made: [Int: Int] = [:]
            for s in steps {
                if s.isChoice { choices += 1 }
                if s.killed {
                    kills.append(Kill(afterChoices: choices, process: s.process, beforeStep: made[s.process, default: 0] + 1))
                } else {
                    made[s.process, default: 0] += 1
                }
            }
            return kills
        }

        public func name(_ p: Int) -> String { p < names.count ? names[p] : "process \(p)" }
    }

    /// A kill of a schedule by index: process `process`, before its `beforeStep`-th step,
    /// after the `afterChoices`-th choice (dropped when another choice comes first).
    public struct Kill: Sendable, Hashable {
        public var afterChoices: Int
        public var process: Int
        public var beforeStep: Int
    }

    /// Runs the script once under `kind`, following `decisions` first.
    public func run(_ kind: ScheduleOptions.Kind, seed: UInt64, decisions: [ScheduleLog.Decision] = [], byIndex: Bool = true,
                    locations: Bool = false, output: Output = .discard, kills: ScheduleOptions.Kills = .none) -> Run {
        guard let child = launch(kind, seed: seed, decisions: decisions, byIndex: byIndex, locations: locations, output: output,
                                 kills: kills) else {
            var r = RunReport(.error)
            r.messages = ["cannot fork a run: \(Syscall.lastError)"]
            return Run(status: 1, report: r, steps: [], names: [], objectNames: [:], hash: 0, choices: 0, output: "", seed: seed)
        }
        return collect(child, seed: seed, output: output)
    }

    /// Starts a run (as `run` does) without waiting for it, in `slot`: its host's pid. A run of
    /// the exhaustive search keeps away from the processes asleep on `sleepBoard`.
    public func launch(_ kind: ScheduleOptions.Kind, seed: UInt64, decisions: [ScheduleLog.Decision] = [], byIndex: Bool = true,
                       locations: Bool = false, output: Output = .discard, kills: ScheduleOptions.Kills = .none,
                       slot: Int = 0) -> Int32? {
        launch(kind, seed: seed, decisions: decisions, byIndex: byIndex, locations: locations, output: output, kills: kills,
               sleepBoard: nil, slot: slot)
    }

    func launch(_ kind: ScheduleOptions.Kind, seed: UInt64, decisions: [ScheduleLog.Decision], byIndex: Bool = true,
                locations: Bool = false, output: Output = .discard, kills: ScheduleOptions.Kills = .none,
                sleepBoard: SleepBoard?, slot: Int) -> Int32? {
        if Cancellation.isRequested { return nil }  // SIGINT, SIGTERM, SIGHUP: no new run
        let (log, reportFD, outputFD) = (slots[slot].log, slots[slot].reportFD, slots[slot].outputFD)
        log.prepare(decisions: decisions, byIndex: byIndex, keepLocations: locations, interactive: kind == .directed(.ask))
        _ = ftruncate(reportFD, 0)
        _ = ftruncate(outputFD, 0)
        Runtime.flushOutput()
        let me = ProcessIdentity.pid
        guard let child = try? ProcessControl.fork() else { return nil }
        if child == 0 {
            ProcessIdentity.refreshAfterFork()
            Execution.current.sleepBoard = sleepBoard
            // Ends with this program, whatever way it ends.
            _ = ipc_set_parent_death_signal(SIGKILL)
            if getppid() != me { _exit(1) }
            // Runs at once each on a CPU of their own (the run pins itself where it starts).
            if pinsSlots { _ = ipc_pin_to_allowed_cpu(Int32(slot)) }
            switch output {
            case .discard:
                let null = open("/dev/null", O_WRONLY)
                _ = dup2(null, 1)
                _ = dup2(null, 2)
            case .capture:
                _ = dup2(outputFD, 1)
                _ = dup2(outputFD, 2)
            case .inherit:
                break
            }
            var options = base
            options.supervised = false
            options.schedule = ScheduleOptions(kind: kind, seed: seed, maxSteps: maxSteps, log: log)
            options.schedule?.kills = kills
            options.reportDescriptor = reportFD
            options.strictChildErrors = true
            _exit(execute(options))
        }
        running[child] = slot
        launchedAt[child] = MonotonicClock.real()
        return child
    }

    /// Waits for the run started by `launch` and reads what it left.
    public func collect(_ child: Int32, seed: UInt64, output: Output) -> Run {
        let slot = running[child] ?? 0
        let (log, reportFD, outputFD) = (slots[slot].log, slots[slot].reportFD, slots[slot].outputFD)
        let status = ended.removeValue(forKey: child) ?? waitForRun(child)
        running[child] = nil
        launchedAt[child] = nil
        let report = RunReport.parse(readAll(reportFD))
        var names: [UInt32: String] = [:]
        let steps = log.steps
        for s in steps where names[s.object] == nil { names[s.object] = log.objectName(s.object) }
        let pending = report.failed ? log.pending : []
        for case let p? in pending where names[p.object] == nil { names[p.object] = log.pendingObjectName(p.process) }
        var run = Run(status: status, report: report, steps: steps, names: log.processNames, objectNames: names,
                      hash: log.interleavingHash(), choices: log.choices, output: output == .capture ? readAll(outputFD) : "",
                      seed: seed)
        run.pending = pending
        run.leftPCT = log.h.pointee.left_pct
        return run
    }

    /// Waits for a run's host; ends it when it outlives its own --timeout by far.
    func waitForRun(_ child: Int32) -> Int32 {
        var status: Int32 = 0
        let limit = (base.timeout ?? 60) + 30
        if let fd = try? ProcessControl.pidfdOpen(child) {
            if !((try? Poll.wait(fd: fd.rawValue, events: Int16(POLLIN), deadline: Deadline(instant: MonotonicClock.real() + Int64(limit * 1e9)))) ?? true) {
                kill(child, SIGKILL)
            }
            close(fd.rawValue)
        }
        _ = Syscall.glibc("waitpid") { waitpid(child, &status, 0) }
        // Whatever the run left (a host killed by the watchdog leaves its processes).
        _ = kill(-child, SIGKILL)
        reapLeftovers()
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Reaps what runs left behind (they come back here, the subreaper), keeping the status
    /// of a run's host that ended meanwhile for its `collect`.
    func reapLeftovers() {
        while let (pid, termination) = ProcessControl.reapAny() {
            guard running[pid] != nil else { continue }
            switch termination {
            case .exited(let code): ended[pid] = code
            case .signaled(let signal): ended[pid] = 128 + signal
            }
        }
    }

    /// Waits until one of the runs in progress has ended (reaped, its leftovers killed);
    /// its host's pid, for `collect`. A run that outlives its own --timeout by far is ended.
    public func awaitAny() -> Int32? {
        guard !running.isEmpty else { return nil }
        let limit = Int64(((base.timeout ?? 60) + 30) * 1e9)
        while true {
            if let pid = ended.keys.sorted().first(where: { running[$0] != nil }) { return pid }
            var watched: [(pid: Int32, fd: Int32)] = []
            for pid in running.keys.sorted() {
                if let fd = try? ProcessControl.pidfdOpen(pid) { watched.append((pid, fd.rawValue)) }
            }
            defer { for w in watched { close(w.fd) } }
            let oldest = running.keys.compactMap { launchedAt[$0] }.min() ?? MonotonicClock.real()
            let deadline = Deadline(instant: oldest + limit)
            let ready = (try? Poll.wait(watched.map { ($0.fd, Int16(POLLIN)) }, deadline: deadline)) ?? []
            if let i = ready.firstIndex(where: { $0 != 0 }) {
                let pid = watched[i].pid
                var status: Int32 = 0
                _ = Syscall.glibc("waitpid") { waitpid(pid, &status, 0) }
                _ = kill(-pid, SIGKILL)
                ended[pid] = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                reapLeftovers()
                return pid
            }
            // Interrupted (the caller abandons the runs), or a run past its limit: ended (its
            // status then says it was killed).
            if Cancellation.isRequested { return nil }
            let now = MonotonicClock.real()
            for (pid, at) in launchedAt where running[pid] != nil && now - at >= limit { _ = kill(pid, SIGKILL) }
        }
    }
    /// When each run in progress was started (`awaitAny`'s watchdog).
    var launchedAt: [Int32: Int64] = [:]

    /// Ends every run in progress, unread (the search needs none of them any more).
    public func abandonRunning() {
        for pid in running.keys {
            _ = kill(pid, SIGKILL)
            _ = kill(-pid, SIGKILL)
        }
        for pid in running.keys where ended[pid] == nil {
            var status: Int32 = 0
            _ = Syscall.glibc("waitpid") { waitpid(pid, &status, 0) }
            _ = kill(-pid, SIGKILL)
        }
        reapLeftovers()
        running = [:]
        ended = [:]
        launchedAt = [:]
    }

    /// The output a capturing run has written so far, from `offset`.
    public func output(from offset: Int) -> [UInt8] {
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var at = off_t(offset)
        while true {
            let n = pread(outputFD, &buf, buf.count, at)
            if n <= 0 { break }
            data += buf[..<n]
            at += off_t(n)
        }
        return data
    }

    func readAll(_ fd: Int32) -> String {
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let n = pread(fd, &buf, buf.count, offset)
            if n <= 0 { break }
            data += buf[..<n]
            offset += off_t(n)
        }
        return String(decoding: data, as: UTF8.self)
    }
}

// MARK: - Exploring

/// What `explore` does: run schedules until one fails; shrink it; explain it.
public struct Exploration {
    public enum Strategy: String, Sendable { case pct, random }

    public var strategy: Strategy = .pct
    public var depth = 3
    public var runs = 1000
    public var timeLimit: Double?
    public var seed: UInt64 = 1
    /// `--kill N`: kills per schedule at most.
    public var kills = 0
    /// `--kill-rate`: the probability that a killable step is a kill; nil: one over the
    /// steps of the first schedule (about one kill point per run; none in the first run,
    /// which measures).
    public var killRate: Double?
    /// `--jobs`: schedules run at once.
    public var jobs = 1
    /// `--shard I/N` (`index` from 0): only the schedules whose number is `index` modulo
    /// `count`.
    public var shard = Shard.whole
    /// Schedules that run one at a time first, to measure PCT's k and the kill rate.
    public static let measuringRuns = 10
    /// Told each schedule's number (from 0) and interleaving hash, in schedule order.
    public var onSchedule: ((Int, UInt64) -> Void)?

    public struct Shard: Sendable, Equatable {
        public var index: Int
        public var count: Int
        /// The whole search, unsplit.
        public static let whole = Shard(index: 0, count: 1)
        public func owns(_ schedule: Int) -> Bool { schedule % count == index }
    }

    public init() {}

    /// The kills of the next run, after runs of at most `steps` steps.
    func kills(afterRunsOf steps: Int) -> ScheduleOptions.Kills {
        guard kills > 0 else { return .none }
        return ScheduleOptions.Kills(count: kills, rate: killRate ?? (steps > 0 ? 1 / Double(steps) : 0))
    }

    /// The seed of run `i`.
    func seed(of i: Int) -> UInt64 {
        var g = SplitMix64(seed: seed ^ (UInt64(i) &* 0x9e37_79b9_7f4a_7c15))
        return g.next()
    }

    /// What a whole exploration found.
    public struct Outcome {
        /// Schedules run.
        public var schedules = 0
        public var distinct = 0
        /// The largest number of processes and of choices (PCT's n and k).
        public var processes = 0
        public var steps = 0
        /// PCT: the runs that kept to its conditions (their change points were drawn among
        /// at least as many choices as they made, no process was lowered at a yield, no
        /// fair scheduling), and the largest n and k among them. The bound is theirs.
        public var keptPCT = 0
        public var keptProcesses = 0
        public var keptSteps = 0
        /// Why runs left PCT: lowered at a yield, went on fairly, more choices than k.
        public var leftAtYield = 0
        public var leftFair = 0
        public var leftLonger = 0
        /// Runs that killed a process (`--kill`).
        public var killedRuns = 0
        /// The failing run with the lowest schedule number, if any, and that number (from 0).
        public var failure: Explorer.Run?
        public var failureSchedule: Int?
        public var seconds = 0.0

        /// PCT's guarantee for the runs that kept to it: a bug of depth `d` is found with
        /// probability at least 1 - (1 - 1/(n k^(d-1)))^runs.
        public func bound(depth d: Int) -> Double {
            let n = Double(max(keptProcesses, 1)), k = Double(max(keptSteps, 1))
            let p = 1 / (n * pow(k, Double(d - 1)))
            return 1 - pow(1 - min(p, 1), Double(keptPCT))
        }
    }

    /// What is left of the time limit for shrinking what `outcome` found.
    public func shrinkLimits(after outcome: Outcome) -> ShrinkLimits {
        var limits = ShrinkLimits()
        if let timeLimit { limits.deadline = MonotonicClock.real() + Int64(max(0, timeLimit - outcome.seconds) * 1e9) }
        return limits
    }

    /// Runs schedules until one fails (or `runs`, or the time limit), `jobs` at once.
    ///
    /// A schedule is named by its number alone: its seed is `seed(of:)`, and PCT's k and the
    /// kill rate come from the first `measuringRuns` schedules, which run first, one at a
    /// time, as the search always ran (k grows with each; a shard runs those it does not
    /// own too, uncounted); later schedules keep their largest k. So the results do
    /// not depend on which runs ended first: they are merged in schedule order, the failure
    /// reported is the one with the lowest number, and the same seed gives the same report
    /// whatever `jobs`, and shards that cover exactly the schedules of one run.
    public func explore(_ explorer: Explorer) -> Outcome {
        var outcome = Outcome()
        var hashes = Set<UInt64>()
        let start = MonotonicClock.real()
        let jobs = max(1, jobs)
        if jobs > 1 { try? explorer.reserveSlots(jobs) }
        let slotCount = jobs > 1 ? explorer.slots.count : 1
        // Schedule 0 measures: PCT's k and the kill rate of every later schedule.
        var k = 0
        var measuredSteps = 0
        func kind() -> ScheduleOptions.Kind { strategy == .pct ? .pct(depth: depth, steps: k) : .random }

        /// Counts schedule `i`'s run; true when the search ends with it (it failed).
        func merge(_ i: Int, _ run: Explorer.Run) -> Bool {
            if run.steps.contains(where: \.killed) { outcome.killedRuns += 1 }
            outcome.schedules += 1
            hashes.insert(run.hash)
            onSchedule?(i, run.hash)
            if strategy == .pct {
                // Change points drawn among k choices cover a run of at most k choices
                // (depth 1 has none: every run keeps to it).
                let longer = depth > 1 && run.choices > k
                if run.leftPCT & 1 != 0 { outcome.leftAtYield += 1 }
                if run.leftPCT & 2 != 0 { outcome.leftFair += 1 }
                if longer && run.leftPCT == 0 { outcome.leftLonger += 1 }
                if run.leftPCT == 0 && !longer {
                    outcome.keptPCT += 1
                    outcome.keptProcesses = max(outcome.keptProcesses, run.names.count)
                    outcome.keptSteps = max(outcome.keptSteps, k)
                }
            }
            outcome.processes = max(outcome.processes, run.names.count)
            if run.failed {
                outcome.failure = run
                outcome.failureSchedule = i
                return true
            }
            return false
        }
        func timeIsUp() -> Bool {
            guard let limit = timeLimit else { return false }
            return Double(MonotonicClock.real() - start) / 1e9 >= limit
        }

        // The first schedules measure, one at a time, each with the k of those before it;
        // every shard runs them, and counts those it owns.
        var done = false
        var next = 0
        while next < min(runs, Self.measuringRuns) && !done {
            if timeIsUp() { done = true; break }
            let run = explorer.run(kind(), seed: seed(of: next), kills: kills(afterRunsOf: measuredSteps))
            if Cancellation.isRequested { done = true; break }  // that run was killed: it counts for nothing
            if shard.owns(next) { done = merge(next, run) }
            k = max(k, run.choices)
            measuredSteps = max(measuredSteps, run.steps.count)
            next += 1
        }
        // The other schedules of this shard, in order, `jobs` at once; merged in order.
        while next < runs && !shard.owns(next) { next += 1 }
        var inFlight: [Int32: (schedule: Int, slot: Int)] = [:]
        var finished: [Int: Explorer.Run] = [:]
        var nextToMerge = next
        var freeSlots = Array((0..<slotCount).reversed())
        while !done {
            while !freeSlots.isEmpty && next < runs && !timeIsUp() && !Cancellation.isRequested {
                let slot = freeSlots.removeLast()
                guard let pid = explorer.launch(kind(), seed: seed(of: next), kills: kills(afterRunsOf: measuredSteps), slot: slot) else {
                    freeSlots.append(slot)
                    break
                }
                inFlight[pid] = (next, slot)
                next += 1
                while next < runs && !shard.owns(next) { next += 1 }
            }
            guard !inFlight.isEmpty, let pid = explorer.awaitAny(), let ran = inFlight.removeValue(forKey: pid) else { break }
            let run = explorer.collect(pid, seed: seed(of: ran.schedule), output: .discard)
            freeSlots.append(ran.slot)
            if Cancellation.isRequested { break }  // that run was killed: it counts for nothing
            finished[ran.schedule] = run
            while let run = finished.removeValue(forKey: nextToMerge) {
                let i = nextToMerge
                nextToMerge += 1
                while nextToMerge < runs && !shard.owns(nextToMerge) { nextToMerge += 1 }
                if merge(i, run) { done = true; break }
            }
        }
        // A failure, an interruption or the time limit: the runs still going count for nothing.
        explorer.abandonRunning()
        outcome.distinct = hashes.count
        outcome.steps = k
        outcome.seconds = Double(MonotonicClock.real() - start) / 1e9
        return outcome
    }
}

extension Exploration.Shard {
    /// The shard written `I/N` (I from 1, 1 <= I <= N), as `--shard` takes it; nil if `text`
    /// is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (1...n).contains(i) else { return nil }
        self.init(index: i - 1, count: n)
    }
}

// MARK: - Shrinking and explaining

/// A failing schedule made small enough to read, and why it fails.
public struct Finding {
    /// The shrunk run, logged with every step's location.
    public var run: Explorer.Run
    /// Its decisions by process index (what to follow to replay it).
    public var picks: [Int]
    /// Why it fails (contract v3, "Explanations").
    public var explanation = Explanation(form: .none)
    /// Runs spent shrinking and explaining.
    public var runs = 0
    /// Why shrinking stopped before it was done, if it did.
    public var stopped: Stop?

    public enum Stop: String, Sendable {
        case budget = "budget reached"
        case timeLimit = "time limit reached"
    }
}

/// What bounds shrinking, and where it shows its progress.
public struct ShrinkLimits {
    /// Runs at most.
    public var budget = 2000
    /// The monotonic instant (ns, `MonotonicClock.real()`) shrinking ends by, if any.
    public var deadline: Int64?
    /// Called after each run: runs spent, the best schedule's preemptions and steps.
    public var progress: ((_ runs: Int, _ preemptions: Int, _ steps: Int) -> Void)?

    public init(budget: Int = 2000, deadline: Int64? = nil, progress: ((Int, Int, Int) -> Void)? = nil) {
        self.budget = budget
        self.deadline = deadline
        self.progress = progress
    }
}

extension Explorer {
    /// Shrinks the failing `run` to the fewest preemptions, then the fewest steps; then
    /// explains it. Every attempt is a deterministic run that must fail
    /// the same way (`Run.signature`).
    /// 1. The schedules without preemption first (CHESS's context bound 0): from the
    ///    schedule with no decision, each choice where the running process could not go
    ///    on (it blocked or ended) is tried with every other process, breadth first (so
    ///    the orders of whole processes come before the orders of their later parts).
    /// 2. Greedy: each preemption in turn replaced by letting the current process go on,
    ///    kept when the run still fails with fewer preemptions.
    /// 3. When that leaves more than one: the schedules of one preemption, then two,
    ///    breadth first from those of step 1.
    /// 4. Fewest steps: whole segments of one process dropped from the decisions, and the
    ///    decisions after each preemption dropped, while it still fails the same way.
    /// Then the explanation of the shrunk schedule (`explain`).
    /// The limits end it early; the best schedule so far is then the finding, and
    /// `Finding.stopped` says why.
    public func shrink(_ run: Run, limits: ShrinkLimits = ShrinkLimits()) -> Finding {
        let target = run.signature
        let budget = limits.budget
        var spent = 0
        var best = run
        var picks = run.picks
        var stopped: Finding.Stop?
        var kills = run.kills

        func better(_ r: Run) -> Bool {
            (r.preemptions, r.steps.count) < (best.preemptions, best.steps.count)
        }
        func allowed() -> Bool {
            if stopped != nil { return false }
            if spent >= budget { stopped = .budget }
            if let deadline = limits.deadline, MonotonicClock.real() >= deadline { stopped = .timeLimit }
            return stopped == nil
        }
        /// The run of `candidate` (its picks followed, then the current process goes on).
        func directed(_ candidate: [Int], kills candidateKills: [Kill]? = nil) -> Run? {
            guard allowed() else { return nil }
            spent += 1
            let r = self.run(.directed(.end), seed: run.seed, decisions: Self.byIndex(candidate, kills: candidateKills ?? kills))
            limits.progress?(spent, best.preemptions, best.steps.count)
            return r
        }
        func attempt(_ candidate: [Int], kills candidateKills: [Kill]? = nil) -> Run? {
            guard let r = directed(candidate, kills: candidateKills) else { return nil }
            return r.failed && r.signature == target ? r : nil
        }
        func keep(_ r: Run) {
            best = r
            picks = r.picks
            kills = r.kills
            limits.progress?(spent, best.preemptions, best.steps.count)
        }

        // 0. Fewest kills first (--kill), before preemptions.
        (best, picks, kills) = dropUnneededKills(best, picks: picks, kills: kills, attempt: attempt)

        // 1. Schedules by their number of preemptions, fewest first (CHESS's iterative
        // context bounding). `levels[c]` holds the decisions of schedules with c
        // preemptions, each followed by the default (the running process goes on). A run
        // of one adds, after its own decisions, every other choice: where the running
        // process could not go on (it blocked or ended) a schedule of the same level,
        // where it could, one of the next level.
        let deepest = 2
        let widest = 4096
        // A schedule to try: a run's first decisions (sharing that run's storage: a long
        // run queues thousands), then another process.
        var levels: [[(made: ArraySlice<Int>, then: Int?)]] = Array(repeating: [], count: deepest + 1)
        var next = Array(repeating: 0, count: deepest + 1)
        var expanded = Set<UInt64>()
        levels[0] = [([], nil)]
        /// Runs level `c`'s schedules until one fails the same way, the level is done or
        /// `share` runs are spent; true when one failed.
        func search(level c: Int, share: Int) -> Bool {
            while next[c] < levels[c].count && spent < share {
                let node = levels[c][next[c]]
                next[c] += 1
                let prefix = Array(node.made) + (node.then.map { [$0] } ?? [])
                guard let r = directed(prefix) else { return false }
                if r.failed && r.signature == target && r.preemptions <= c {
                    if better(r) { keep(r) }
                    return true
                }
                // A run equivalent to one already expanded (the same order of dependent
                // steps) leads to the same schedules: not expanded again.
                guard expanded.insert(r.hash).inserted else { continue }
                let steps = r.steps
                let made = r.picks
                let (own, ceiling) = (r.preemptions, best.preemptions)
                var choice = 0
                for (i, step) in steps.enumerated() where step.isChoice {
                    defer { choice += 1 }
                    guard choice >= prefix.count else { continue }
                    let runner = i > 0 ? steps[i - 1].process : -1
                    let preempts = runner >= 0 && runner < 64 && step.readyMask & (1 << UInt64(runner)) != 0
                    let level = own + (preempts ? 1 : 0)
                    guard level <= deepest, level < ceiling, levels[level].count < widest else { continue }
                    for q in 0..<64 where q != step.process && step.readyMask & (1 << UInt64(q)) != 0 {
                        levels[level].append((made.prefix(choice), q))
                    }
                }
            }
            return false
        }
        if best.preemptions > 0 { _ = search(level: 0, share: max(budget / 4, 1)) }

        // 2. Fewest preemptions, greedy. For each preemption, from the last: let the
        // preempted process go on instead (keeping the later decisions, or dropping them),
        // or keep it and drop every decision after it (the default goes on without
        // preempting).
        var improved = true
        while improved && best.preemptions > 0 && allowed() {
            improved = false
            let choiceSteps = best.steps.indices.filter { best.steps[$0].isChoice }
            search: for (j, i) in choiceSteps.enumerated().reversed() where best.steps[i].preempted && i > 0 {
                let previous = best.steps[i - 1].process
                var instead = picks
                instead[j] = previous
                for candidate in [instead, Array(picks.prefix(j)) + [previous], Array(picks.prefix(j + 1))] {
                    if let r = attempt(candidate), r.preemptions < best.preemptions {
                        keep(r)
                        improved = true
                        break search
                    }
                }
            }
        }
        // 3. The greedy pass can stop at a local minimum (each preemption alone is needed
        // by the others). Then the schedules of 1, then 2 preemptions, as far as the
        // budget goes.
        for c in 1...deepest where c < best.preemptions && allowed() {
            if search(level: c, share: max(budget * 3 / 4, 1)) { break }
        }
        // 4. Fewest steps: whole segments of one process dropped from the decisions (the
        // process then goes on where the default lets it), and the decisions after each
        // preemption dropped (the default goes on); each kept when the run still fails the
        // same way with no more preemptions and fewer steps. Until neither helps.
        improved = true
        while improved && allowed() {
            improved = false
            if let r = droppingASegment(of: picks, better: better, attempt: { attempt($0) }, allowed: allowed) {
                keep(r)
                improved = true
            }
            let choiceSteps = best.steps.indices.filter { best.steps[$0].isChoice }
            for (j, i) in choiceSteps.enumerated() where best.steps[i].preempted {
                if let r = attempt(Array(picks.prefix(j + 1))), better(r) {
                    keep(r)
                    improved = true
                    break
                }
            }
        }
        // The shrunk run again, with every step's location (one run past the limits: the
        // finding needs it).
        let detailed = self.run(.directed(.end), seed: run.seed, decisions: Self.byIndex(picks, kills: kills), locations: true, output: .capture)
        spent += 1
        var finding = Finding(run: detailed, picks: picks, runs: spent)
        finding.stopped = stopped
        let (explanation, explaining) = explain(detailed, picks: picks, kills: kills, deadline: limits.deadline)
        finding.explanation = explanation
        finding.runs += explaining
        return finding
    }

    /// One pass over the segments of `picks` (the choices in a row that pick one process),
    /// the last first: each dropped in turn. The first run that fails the same way and is
    /// `better` (fewer preemptions, or as many and fewer steps), if any.
    func droppingASegment(of picks: [Int], better: (Run) -> Bool, attempt: ([Int]) -> Run?, allowed: () -> Bool) -> Run? {
        var segments: [Range<Int>] = []
        var start = 0
        for j in picks.indices where j + 1 == picks.count || picks[j + 1] != picks[j] {
            segments.append(start..<(j + 1))
            start = j + 1
        }
        for segment in segments.reversed() {
            guard allowed() else { return nil }
            var candidate = picks
            candidate.removeSubrange(segment)
            if let r = attempt(candidate), better(r) { return r }
        }
        return nil
    }

    /// Each kill of the failing schedule dropped in turn, from the last: kept dropped when
    /// the run still fails the same way. A kill the failure does not need is noise in the
    /// report, and it hides what the schedule alone does.
    func dropUnneededKills(_ run: Run, picks: [Int], kills: [Kill],
                           attempt: ([Int], [Kill]?) -> Run?) -> (Run, [Int], [Kill]) {
        var (best, picks, kills) = (run, picks, kills)
        var k = kills.count - 1
        while k >= 0 {
            var fewer = kills
            fewer.remove(at: k)
            if let r = attempt(picks, fewer), r.kills.count < kills.count {
                (best, picks, kills) = (r, r.picks, r.kills)
            }
            k = min(k, kills.count) - 1
        }
        return (best, picks, kills)
    }

    static func byIndex(_ picks: [Int], kills: [Kill] = []) -> [ScheduleLog.Decision] {
        var decisions: [ScheduleLog.Decision] = []
        var pending = kills[...]
        for (j, p) in ([-1] + picks).enumerated() {
            if j > 0 { decisions.append(ScheduleLog.Decision(process: p, processName: "", site: nil, objectName: "")) }
            while let k = pending.first, k.afterChoices <= j {
                decisions.append(ScheduleLog.Decision(process: k.process, processName: "", site: nil, objectName: "", killBeforeStep: k.beforeStep))
                pending = pending.dropFirst()
            }
        }
        // Kills after the last listed choice (a shorter candidate) wait for their process.
        return decisions + pending.map { ScheduleLog.Decision(process: $0.process, processName: "", site: nil, objectName: "", killBeforeStep: $0.beforeStep) }
    }
}
