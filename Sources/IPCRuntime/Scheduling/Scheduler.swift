import CRuntimeShim
import CSystemShim
import IPCCore

/// A scheduling strategy, as Shuttle's `Scheduler` trait: at each step, given the
/// processes whose pending call can go ahead, pick the one that makes the step. The
/// machinery that runs the steps (handing the turn over, probing, virtual time) is
/// `Schedule`'s; a strategy only chooses. Strategies are plain values kept in the run's
/// shared memory, so that whichever process holds the turn can decide.
public protocol Scheduler {
    /// A process joined the run (PCT gives it a place in its priority order).
    mutating func added(_ process: Int, _ context: inout SchedulerContext)
    /// Picks one of `ready` (ascending spawn indices, at least two); nil when the schedule
    /// cannot go on (a replay that no longer fits the run: `context.diverge` says why).
    mutating func pick(_ ready: [Int], _ context: inout SchedulerContext) -> Int?
}

/// What a strategy may see of the run when it decides.
public struct SchedulerContext {
    let schedule: Schedule
    /// The process that made the last step.
    public let last: Int
    /// `last`, when its next call can go ahead too: picking another one preempts it.
    public let current: Int?
    /// True when `last`'s last step was an explicit yield (a call with timeout 0 that
    /// found nothing): PCT lowers it.
    public let yielding: Bool

    /// The priority order (PCT), highest first.
    public var order: PriorityOrder { PriorityOrder(schedule.h) }
    public func name(_ p: Int) -> String { schedule.name(of: p) }
    public func pendingSite(_ p: Int) -> Int { Int(schedule.proc(p).pointee.site) }
    public func pendingObjectName(_ p: Int) -> String {
        loadName(from: &schedule.proc(p).pointee.object_name, capacity: Int(IPC_NAME_CAP))
    }
    var log: ScheduleLog? { schedule.log }
    func diverge(_ message: String) { schedule.log?.markDiverged(message) }
    /// --max-steps of the run.
    var maxSteps: UInt64 { schedule.h.pointee.max_steps }
    /// The run no longer keeps to PCT's conditions: a process was lowered at a yield, or
    /// the run went on fairly. Its guarantee is then not claimed for this run.
    func leavePCT(fair: Bool) { schedule.log?.h.pointee.left_pct |= fair ? 2 : 1 }
}

/// The processes by priority, highest first (kept in the run's shared memory).
public struct PriorityOrder {
    let h: UnsafeMutablePointer<ipc_sched_header>
    init(_ h: UnsafeMutablePointer<ipc_sched_header>) { self.h = h }

    var base: UnsafeMutablePointer<UInt16> {
        (UnsafeMutableRawPointer(h) + MemoryLayout<ipc_sched_header>.offset(of: \.order)!).assumingMemoryBound(to: UInt16.self)
    }
    /// Processes placed so far.
    var count: Int { Int(h.pointee.count) }

    /// Places process `p` (the newest) at `position` (0: highest).
    func insert(_ p: Int, at position: Int) {
        let n = count - 1  // p is already counted
        var i = n
        while i > position { base[i] = base[i - 1]; i -= 1 }
        base[position] = UInt16(p)
    }

    /// Moves `p` below every other process.
    func lower(_ p: Int) {
        let n = count
        guard let at = (0..<n).first(where: { Int(base[$0]) == p }) else { return }
        for i in at..<(n - 1) { base[i] = base[i + 1] }
        base[n - 1] = UInt16(p)
    }

    /// The highest-priority process of `ready`.
    func highest(of ready: [Int]) -> Int? {
        for i in 0..<count where ready.contains(Int(base[i])) { return Int(base[i]) }
        return ready.first
    }
}

/// Uniformly random among the ready processes: strong for shallow bugs.
public struct RandomScheduler: Scheduler {
    var random: SplitMix64

    public init(seed: UInt64) { random = SplitMix64(seed: seed) }

    public mutating func added(_ process: Int, _ context: inout SchedulerContext) {}

    public mutating func pick(_ ready: [Int], _ context: inout SchedulerContext) -> Int? {
        ready[Int(random.next() % UInt64(ready.count))]
    }
}

/// Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS
/// 2010), as Coyote's PCTStrategy and Shuttle's pct.rs do it: every process gets a random
/// place in a priority order and the highest ready one always runs; at `depth - 1` change
/// points, chosen uniformly among the `steps` expected choices, the process that ran is
/// moved below everyone. A bug of depth d is found with probability at least
/// 1/(n * k^(d-1)) per run (n processes, k steps).
///
/// Only two things leave that algorithm, and each is written in the log (`left_pct`), so
/// that the bound is claimed only for the runs that kept to it:
/// - an explicit yield (a call with timeout 0 that found nothing, as a poll in a loop
///   makes) lowers the yielding process, as Shuttle does for `yield_now`: a top-priority
///   poller would otherwise spin for ever;
/// - past `fairBound` choices (a process spinning on reads, which are never yields), the
///   rest of the run is chosen at random (Coyote's fair scheduling after a bound).
public struct PCTScheduler: Scheduler {
    var random: SplitMix64
    /// Change points, by choice number (1-based), at most 15.
    var changePoints: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64,
                       Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var changeCount = 0
    var choices: Int64 = 0

    public static let maxDepth = 16
    /// Choices after which a run goes on fairly (random), when --max-steps leaves room.
    public static let fairBound: Int64 = 10_000

    /// `steps`: the number of choices a run is expected to have (0 when not known yet:
    /// then there are no change points, and the run counts them).
    public init(seed: UInt64, depth: Int, steps: Int) {
        random = SplitMix64(seed: seed)
        let wanted = min(max(depth - 1, 0), Self.maxDepth - 1, steps)
        var points: [Int64] = []
        while points.count < wanted {
            let p = Int64(random.next() % UInt64(steps)) + 1
            if !points.contains(p) { points.append(p) }
        }
        withUnsafeMutableBytes(of: &changePoints) { raw in
            let slots = raw.bindMemory(to: Int64.self)
            for (i, p) in points.enumerated() { slots[i] = p }
        }
        changeCount = points.count
    }

    func isChangePoint(_ n: Int64) -> Bool {
        withUnsafeBytes(of: changePoints) { raw in
            raw.bindMemory(to: Int64.self).prefix(changeCount).contains(n)
        }
    }

    public mutating func added(_ process: Int, _ context: inout SchedulerContext) {
        // A random place, the lowest included.
        let n = context.order.count
        context.order.insert(process, at: Int(random.next() % UInt64(n)))
    }

    public mutating func pick(_ ready: [Int], _ context: inout SchedulerContext) -> Int? {
        choices += 1
        // Half of --max-steps at most, so that a spinning run ends by itself, not as a livelock.
        if choices > min(Self.fairBound, Int64(clamping: context.maxSteps / 2)) {
            context.leavePCT(fair: true)
            return ready[Int(random.next() % UInt64(ready.count))]
        }
        let order = context.order
        if context.yielding {
            order.lower(context.last)
            context.leavePCT(fair: false)
        }
        if isChangePoint(choices) { order.lower(context.last) }
        return order.highest(of: ready)
    }
}

/// Follows a list of decisions (a replay, a schedule being shrunk, the choices made so far
/// in `ipcplay step`), then, when they run out: no preemption (shrinking), asking the person
/// (step mode), or random choices.
public struct DirectedScheduler: Scheduler {
    public enum Then: UInt8, Sendable {
        /// Nothing more is expected: a further choice is a divergence (by name) or goes to
        /// the current process, else the lowest ready (by index).
        case end
        case ask
        case random
    }

    var then: Then
    var random: SplitMix64

    public init(then: Then, seed: UInt64) {
        self.then = then
        random = SplitMix64(seed: seed)
    }

    public mutating func added(_ process: Int, _ context: inout SchedulerContext) {}

    public mutating func pick(_ ready: [Int], _ context: inout SchedulerContext) -> Int? {
        guard let log = context.log else { return ready.first }
        // A kill still to follow here did not fit the steps since the last choice: a replay
        // diverged. Shrinking (by index) tries schedules that move steps about: such a kill
        // is dropped, unless no choice is listed after it (it waits for its process).
        if var d = log.nextDecision(), d.kill_at != 0 {
            if !log.byIndex {
                let name = loadName(from: &d.process_name, capacity: Int(IPC_NAME_CAP))
                context.diverge("expected a kill of \(name); found a choice among \(ready.map { context.name($0) }.joined(separator: ", "))")
                return nil
            }
            log.dropKillsBeforeNextChoice()
        }
        if let d = log.nextDecision(), d.kill_at == 0 {
            log.consumeDecision()
            if log.byIndex {
                if ready.contains(Int(d.process)) { return Int(d.process) }
                return context.current ?? ready[0]
            }
            var d = d
            let name = loadName(from: &d.process_name, capacity: Int(IPC_NAME_CAP))
            let object = loadName(from: &d.object_name, capacity: Int(IPC_NAME_CAP))
            let site = d.site == UInt32.max ? nil : CallSite.with(id: Int(d.site))
            // The process by name; its pending call too, where the decision names one.
            if let p = ready.first(where: { context.name($0) == name }),
               site == nil || (context.pendingSite(p) == site!.id && object == context.pendingObjectName(p)) {
                return p
            }
            let expected = site.map { "\(name) at \($0.name)\(object.isEmpty ? "" : " on " + object)" } ?? name
            let found = ready.map { p in
                let o = context.pendingObjectName(p)
                return "\(context.name(p)) at \(CallSite.all[context.pendingSite(p)].name)\(o.isEmpty ? "" : " on " + o)"
            }
            context.diverge("expected \(expected); found \(found.joined(separator: ", "))")
            return nil
        }
        switch then {
        case .end:
            if log.byIndex, let board = Execution.current.sleepBoard {
                // The exhaustive search: keep away from the processes asleep here.
                guard let p = board.pick(ready, current: context.current, log: log) else {
                    context.diverge("every process that can go is asleep (explored already)")
                    return nil
                }
                return p
            }
            if log.byIndex { return context.current ?? ready[0] }
            let found = ready.map { context.name($0) }.joined(separator: ", ")
            context.diverge("the schedule ends here, but the run goes on (\(found) can go)")
            return nil
        case .random:
            return ready[Int(random.next() % UInt64(ready.count))]
        case .ask:
            if log.h.pointee.random_rest != 0 { return ready[Int(random.next() % UInt64(ready.count))] }
            let choice = context.schedule.ask(ready)
            if choice < 0 {
                log.h.pointee.random_rest = 1
                return ready[Int(random.next() % UInt64(ready.count))]
            }
            return ready.contains(choice) ? choice : ready[0]
        }
    }
}

extension DirectedScheduler {
    /// A kill decision of the list, when it is next and names `chosen` before the step it is
    /// about to make (by index; by name and pending call in a replay): it is followed.
    func killsNow(_ chosen: Int, _ context: SchedulerContext) -> Bool {
        guard let log = context.log, var d = log.nextDecision(), d.kill_at != 0,
              d.kill_at == context.schedule.proc(chosen).pointee.steps_made + 1 else { return false }
        let fits: Bool
        if log.byIndex {
            fits = Int(d.process) == chosen
        } else {
            let name = loadName(from: &d.process_name, capacity: Int(IPC_NAME_CAP))
            let object = loadName(from: &d.object_name, capacity: Int(IPC_NAME_CAP))
            fits = context.name(chosen) == name
                && (d.site == UInt32.max || (context.pendingSite(chosen) == Int(d.site) && context.pendingObjectName(chosen) == object))
        }
        if fits { log.consumeDecision() }
        return fits
    }
}

/// Crash exploration (`--kill N`): at a step, the chosen process may be SIGKILLed before its
/// pending call takes effect, at most `left` more times in this run, each killable step with
/// probability `rate`. Its own generator, drawn only at killable steps while kills are left,
/// so that a run with `--kill 0` is chosen exactly as before, and the picks of a run with
/// kills are those of the same seed without them up to its first kill. A kill is a
/// decision of the schedule (in the log as its own step, in the token, in a replay), so a
/// search can enumerate kill points like choices.
struct KillPolicy {
    var random: SplitMix64
    var left: Int
    var rate: Double

    init(seed: UInt64, kills: Int, rate: Double) {
        random = SplitMix64(seed: seed ^ 0x6b69_6c6c_7321)
        left = kills
        self.rate = rate
    }

    /// Whether to kill at this killable step.
    mutating func decide() -> Bool {
        guard left > 0, rate > 0 else { return false }
        let draw = Double(random.next() >> 11) / Double(UInt64(1) << 53)
        guard draw < rate else { return false }
        left -= 1
        return true
    }
}

/// The strategy of a run, as a value kept in the run's shared memory.
enum Strategy {
    case random(RandomScheduler)
    case pct(PCTScheduler)
    case directed(DirectedScheduler)

    mutating func added(_ p: Int, _ context: inout SchedulerContext) {
        switch self {
        case .random(var s): s.added(p, &context); self = .random(s)
        case .pct(var s): s.added(p, &context); self = .pct(s)
        case .directed(var s): s.added(p, &context); self = .directed(s)
        }
    }

    mutating func pick(_ ready: [Int], _ context: inout SchedulerContext) -> Int? {
        switch self {
        case .random(var s): let p = s.pick(ready, &context); self = .random(s); return p
        case .pct(var s): let p = s.pick(ready, &context); self = .pct(s); return p
        case .directed(var s): let p = s.pick(ready, &context); self = .directed(s); return p
        }
    }

    /// Whether `chosen`, a process that may be killed, is killed at this step: a directed
    /// run follows its list; random and PCT draw with the run's `policy`.
    func kills(_ chosen: Int, _ policy: inout KillPolicy, _ context: SchedulerContext) -> Bool {
        switch self {
        case .directed(let s): return s.killsNow(chosen, context)
        case .random, .pct: return policy.decide()
        }
    }
}
