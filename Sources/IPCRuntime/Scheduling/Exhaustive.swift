import CRuntimeShim
import Glibc
import IPCCore

// MARK: - Sleep sets in the run

/// The sleep set a run of the exhaustive search starts with after its last decision: the
/// processes whose next step was already explored from there (with that step), so that
/// putting them first again would only repeat an explored interleaving. The run's
/// continuation (no decision left) keeps away from them until a step dependent on theirs
/// wakes them; when every process that can go is asleep the run stops (it is
/// "sleep-set blocked": every step after it was explored; the search still tries the
/// kills there). Shared memory made before the runs are forked; every process of a run
/// reads it. Kills asleep are not on it: a continuation never kills. Each run slot of the
/// search has a board of its own; a run reaches its slot's board through its execution
/// context (`Execution.sleepBoard`, set in the run's fork; nil: the run continues without
/// preemption).
final class SleepBoard {
    static let capacity = 64
    static let header = 5
    let region: SharedRegion
    /// Words: 0 blocked, 1 first step it applies from, 2 steps scanned, 3 entries, 4 the
    /// processes that could go where it stopped; then 4 words per entry: process, site,
    /// object | key << 32, timeout.
    let words: UnsafeMutablePointer<UInt64>

    init() throws(IPCError) {
        region = try SharedRegion(size: (Self.header + 4 * Self.capacity) * 8)
        words = region.base.assumingMemoryBound(to: UInt64.self)
    }

    /// Before a run: the sleeping steps, from step `from` on.
    func prepare(_ all: [StepFacts], from: Int) {
        let entries = all.filter { !$0.killed }
        words[0] = 0
        words[1] = UInt64(from)
        words[2] = UInt64(from)
        let n = min(entries.count, Self.capacity)
        words[3] = UInt64(n)
        words[4] = 0
        for (i, e) in entries.prefix(n).enumerated() {
            let w = words + Self.header + 4 * i
            w[0] = UInt64(e.process)
            w[1] = UInt64(e.site)
            w[2] = UInt64(e.object) | UInt64(e.key) << 32
            w[3] = e.timeout ? 1 : 0
        }
    }

    /// True when the last run stopped because every process that could go was asleep.
    var blocked: Bool { words[0] != 0 }

    /// Where the last run stopped asleep: the processes that could go there.
    var blockedReady: UInt64 { words[4] }

    func entry(_ i: Int) -> StepFacts {
        let w = words + Self.header + 4 * i
        return StepFacts(process: Int(w[0]), site: Int(w[1]), object: UInt32(truncatingIfNeeded: w[2]),
                         key: UInt32(truncatingIfNeeded: w[2] >> 32), timeout: w[3] != 0, readyMask: 0)
    }

    /// In a run, at a choice with no decision left: the current process if it can go and
    /// is awake, else the lowest awake one; nil when all are asleep.
    func pick(_ ready: [Int], current: Int?, log: ScheduleLog) -> Int? {
        // Wake the sleepers that a step made since the last look depends on.
        let steps = log.loggedSteps
        var n = Int(words[3])
        var scanned = Int(words[2])
        while scanned < steps.count && n > 0 {
            var s = StepFacts(steps[scanned])
            if s.killed {
                // What the death changes, from the steps of its process before it.
                s.footprint = StepDependence.footprint(ofKill: s, after: steps[..<scanned].map(StepFacts.init))
            }
            var i = 0
            while i < n {
                let e = entry(i)
                if StepDependence.dependent(e, s) || (s.killed && e.process == s.process) {
                    // Remove by moving the last entry here.
                    let last = words + Self.header + 4 * (n - 1), here = words + Self.header + 4 * i
                    for k in 0..<4 { here[k] = last[k] }
                    n -= 1
                } else {
                    i += 1
                }
            }
            scanned += 1
        }
        words[2] = UInt64(max(scanned, steps.count))
        words[3] = UInt64(n)
        var asleep: UInt64 = 0
        for i in 0..<n { asleep |= 1 << UInt64(words[Self.header + 4 * i] & 63) }
        func awake(_ p: Int) -> Bool { p >= 64 || asleep & (1 << UInt64(p)) == 0 }
        if let c = current, awake(c) { return c }
        if let p = ready.first(where: awake) { return p }
        words[4] = ready.reduce(0) { $1 < 64 ? $0 | 1 << UInt64($1) : $0 }
        words[0] = 1
        return nil
    }
}

// MARK: - The search

/// `explore --exhaustive`: every interleaving of the script once, up to the order of
/// independent steps (`StepDependence`), by stateless dynamic partial-order reduction
/// driven by `Explorer.run`: each run follows a prefix of decisions, then goes on without
/// preemption; from its steps the search finds the races (pairs of dependent steps of
/// different processes with nothing ordering them in between) and adds, before the
/// first of each, a process that starts the reversed order.
///
/// - Unbounded: source-DPOR with sleep sets (Abdulla, Aronis, Jonsson, Sagonas, POPL
///   2014, Algorithm 1). A backtrack point is one of the initials of `notdep(e).q`, among
///   the processes enabled there.
/// - Blocking calls (both modes): a race whose second step waited there (the first one
///   enabled it: a release before an acquire that waited) cannot be reversed; the race is
///   moved back to the call of the first process that may wait and started what the
///   second waited for (its acquire). A step that may wait also races, as in Flanagan and
///   Godefroid's DPOR (POPL 2005), with each other process's last step that may wait on
///   its object, which the release and the acquires between them hide. The joins of P
///   after P's end are never reversed.
/// - `--preemptions K`: classic DPOR bounded as in Coons, Musuvathi, McKinley (OOPSLA
///   2013) and loom: each backtrack point (the racing process, or every enabled process
///   when it could not go there) is also added at the last context switch before it,
///   and a point whose schedule would exceed K preemptions is left out. No sleep sets:
///   they are unsound with the bound.
/// - `--kill N`: at every point, killing each process that could go (not the main one)
///   is one more transition, tried while the schedule has made fewer than N kills (and,
///   bounded, when it stays within the bound: a kill of another process than the running
///   one is a switch away from it). A kill is a step of its process whose dependency is
///   what the death changes (`StepDependence`); sleep sets keep kills too, so a kill point
///   that only independent steps separate from an explored one is not tried again, and a
///   run stopped asleep still tries the kills where it stopped. A kill of a process with
///   child processes still running is refused: its children would die with it, which
///   the relation does not model.
public struct ExhaustiveSearch {
    /// The preemption bound; nil: unbounded.
    public var preemptions: Int?
    /// At most this many kills per schedule (`--kill N`).
    public var kills = 0
    /// Budgets of this call (a resumed search gets them afresh).
    public var runs: Int?
    public var timeLimit: Double?
    public var seed: UInt64 = 1
    /// `--jobs`: runs at once. The search stays the one-at-a-time search (the same runs, in
    /// the same order, the same counts and failure); the other runs are the ones it will
    /// ask for later, run ahead (`RunAhead`).
    public var jobs = 1
    /// Called after each schedule (schedules, current depth, elapsed seconds, runs of them
    /// that had been run ahead).
    public var progress: ((Int, Int, Double, Int) -> Void)?
    /// Told each schedule that was a whole interleaving: its number (from 0) and its hash.
    public var onSchedule: ((Int, UInt64) -> Void)?

    public init() {}

    /// A point of the current execution: the state before step `index`.
    struct Node {
        var enabled: UInt64
        /// The process of the step made here (-1: none, where a run stopped asleep).
        var chosen: Int
        /// That step was a kill of `chosen`.
        var killed = false
        var isChoice: Bool
        var backtrack: UInt64
        var done: UInt64
        /// The processes whose kill here is to be tried, and those tried.
        var killBacktrack: UInt64 = 0
        var killDone: UInt64 = 0
        /// Kills made before this point.
        var killsBefore = 0
        /// Asleep on entering it (with the step each would make).
        var sleep: [StepFacts]
        /// The steps the processes explored from here made (for their later siblings' sleep sets).
        var explored: [StepFacts]
        var preemptionsBefore: Int
        var preempted: Bool

        var sleepMask: UInt64 { sleep.reduce(0) { $1.killed ? $0 : $0 | bit($1.process) } }
        var killSleepMask: UInt64 { sleep.reduce(0) { $1.killed ? $0 | bit($1.process) : $0 } }
    }

    /// Where a search stands: enough to go on with it later (`--resume`).
    public struct State {
        var nodes: [Node] = []
        public var schedules = 0
        var classes = Set<UInt64>()
        public var seconds = 0.0
        var started = false
        /// Of this call only (not saved): the runs started ahead of the search, and those of
        /// them whose result the search took as one of its schedules.
        public var ranAhead = 0
        public var ranAheadUsed = 0
        public var distinct: Int { classes.count }
        /// The interleavings met (their `InterleavingClass` hashes).
        public var classHashes: Set<UInt64> { classes }

        public init() {}
    }

    public enum Result {
        /// Every interleaving (within the bound) was checked.
        case complete
        /// A budget ran out first; the state goes on from there.
        case stopped
        /// A schedule failed.
        case failed(Explorer.Run)
        /// The same decisions gave a different run: the script is not deterministic under
        /// the schedule (it reads the wall clock, the file system, ...).
        case diverged(String)
        /// The search met a case it cannot cover soundly (a kill it does not model).
        case unsupported(String)
    }

    /// The next transition to try: at point `index`, process `process` goes (or is killed).
    struct Branch {
        var index: Int
        var process: Int
        var kill: Bool
    }

    static func bit(_ p: Int) -> UInt64 { p >= 0 && p < 64 ? 1 << UInt64(p) : 0 }

    /// The kills to try at a point: each process that can go there but the main one,
    /// while kills are left (bounded: a kill that stays within the bound).
    func killAlternatives(enabled: UInt64, killsBefore: Int, preemptionsBefore: Int, previous: Int) -> UInt64 {
        guard killsBefore < kills else { return 0 }
        var bits = enabled & ~Self.bit(0)
        if let bound = preemptions {
            var allowed: UInt64 = 0
            while bits != 0 {
                let c = bits.trailingZeroBitCount
                bits &= bits - 1
                let preempts = previous >= 0 && enabled & Self.bit(previous) != 0 && c != previous
                if preemptionsBefore + (preempts ? 1 : 0) <= bound { allowed |= Self.bit(c) }
            }
            bits = allowed
        }
        return bits
    }

    /// The decisions that lead to the point `index` and make `process`'s step (or kill) there.
    static func decisions(_ nodes: [Node], to index: Int, process: Int, kill: Bool) -> (picks: [Int], kills: [Explorer.Kill]) {
        var picks: [Int] = []
        var kills: [Explorer.Kill] = []
        var made: [Int: Int] = [:]
        for n in nodes[..<index] {
            if n.isChoice { picks.append(n.chosen) }
            if n.killed {
                kills.append(Explorer.Kill(afterChoices: picks.count, process: n.chosen, beforeStep: made[n.chosen, default: 0] + 1))
            } else {
                made[n.chosen, default: 0] += 1
            }
        }
        if nodes[index].isChoice { picks.append(process) }
        if kill { kills.append(Explorer.Kill(afterChoices: picks.count, process: process, beforeStep: made[process, default: 0] + 1)) }
        return (picks, kills)
    }

    /// Which process spawned each one, and which processes were there and not ended
    /// before each step (for refusing a kill of a process whose children still run).
    static func lineage(_ facts: [StepFacts]) -> (parent: [Int: Int], live: [UInt64]) {
        var objectOf: [UInt32: Int] = [:]
        for s in facts where s.site == CallSite.processStart.id { objectOf[s.object] = s.process }
        var parent: [Int: Int] = [:]
        for s in facts where s.spawned != 0 { if let c = objectOf[s.spawned] { parent[c] = s.process } }
        var live: [UInt64] = []
        var present: UInt64 = 1
        var ended: UInt64 = 0
        for s in facts {
            present |= s.readyMask | bit(s.process)
            live.append(present & ~ended)
            if s.killed || s.site == CallSite.processEnd.id { ended |= bit(s.process) }
        }
        live.append(present & ~ended)
        return (parent, live)
    }

    // MARK: Running

    /// Every schedule, without reduction (within the bound), with every kill point (up to
    /// `kills` per schedule): what the search must match. For checking the reduction on
    /// small scripts (`explore --exhaustive --check-naive`).
    public func naive(_ explorer: Explorer) -> (schedules: Int, classes: Set<UInt64>) {
        var classes = Set<UInt64>()
        // Each: the decisions, and the steps they fix (branches come after them).
        var stack: [(picks: [Int], kills: [Explorer.Kill], fixed: Int)] = [([], [], 0)]
        var count = 0
        while let (picks, killList, fixed) = stack.popLast() {
            let run = explorer.run(.directed(.end), seed: seed, decisions: Explorer.byIndex(picks, kills: killList))
            count += 1
            classes.insert(run.hash)
            var choices = 0
            var preempted = 0
            var killed = 0
            var made: [Int: Int] = [:]
            for (i, s) in run.steps.enumerated() {
                if i >= fixed {
                    let previous = i > 0 ? run.steps[i - 1].process : -1
                    let prefix = Array(run.picks.prefix(choices))
                    let killsBefore = Array(run.kills.prefix(killed))
                    func preempts(_ c: Int) -> Bool { previous >= 0 && s.readyMask & Self.bit(previous) != 0 && c != previous }
                    var others = s.isChoice ? s.readyMask & ~Self.bit(s.process) : 0
                    while others != 0 {
                        let other = others.trailingZeroBitCount
                        others &= others - 1
                        if preempted + (preempts(other) ? 1 : 0) <= (preemptions ?? Int.max) {
                            stack.append((prefix + [other], killsBefore, i + 1))
                        }
                    }
                    var victims = killed < kills ? s.readyMask & ~Self.bit(0) : 0
                    while victims != 0 {
                        let victim = victims.trailingZeroBitCount
                        victims &= victims - 1
                        if preempted + (preempts(victim) ? 1 : 0) <= (preemptions ?? Int.max) {
                            let picksThere = s.isChoice ? prefix + [victim] : prefix
                            let kill = Explorer.Kill(afterChoices: picksThere.count, process: victim, beforeStep: made[victim, default: 0] + 1)
                            stack.append((picksThere, killsBefore + [kill], i + 1))
                        }
                    }
                }
                if s.isChoice { choices += 1 }
                if s.preempted { preempted += 1 }
                if s.killed { killed += 1 } else { made[s.process, default: 0] += 1 }
            }
        }
        return (count, classes)
    }

    /// The transitions left at point `i`, in the order the search takes them: processes by
    /// number, then kills.
    static func left(_ n: Node) -> (steps: UInt64, kills: UInt64) {
        (n.backtrack & ~n.done & ~n.sleepMask & n.enabled, n.killBacktrack & ~n.killDone & ~n.killSleepMask & n.enabled)
    }

    /// The run that makes `branch`'s transition (nil: the first run): its decisions and the
    /// sleep set it starts with, from the points as they are, and `takenBefore`: the steps
    /// that the transitions the search takes there before this one will make.
    func request(_ branch: Branch?, nodes: [Node], takenBefore: [StepFacts] = []) -> RunAhead.Request {
        guard let b = branch else { return RunAhead.Request(from: 0, picks: [], kills: [], sleep: []) }
        let (picks, killList) = Self.decisions(nodes, to: b.index, process: b.process, kill: b.kill)
        let sleep = preemptions == nil && !b.kill
            ? (nodes[b.index].sleep + nodes[b.index].explored + takenBefore).filter { $0.process != b.process } : []
        return RunAhead.Request(from: b.index, picks: picks, kills: killList, sleep: sleep)
    }

    /// The run of a transition the search will take later (`ahead(of:)`), as it will ask
    /// for it: after it took the transitions left before it at that point, each making its
    /// process's next step on the current execution. Nil when one of those is not known.
    func predicted(_ b: Branch, nodes: [Node]) -> RunAhead.Request? {
        var taken: [StepFacts] = []
        if preemptions == nil && !b.kill {
            var before = Self.left(nodes[b.index]).steps & (Self.bit(b.process) &- 1)
            while before != 0 {
                let q = before.trailingZeroBitCount
                before &= before - 1
                guard let step = Self.nextStep(of: q, from: b.index, nodes: nodes) else { return nil }
                taken.append(step)
            }
        }
        return request(b, nodes: nodes, takenBefore: taken)
    }

    /// The step process `q` makes at point `index` if it goes there: its next step on the
    /// current execution (it does not move in between, so it makes the same call). Nil when
    /// it makes none there (it ended, was killed, or the run stopped asleep first).
    static func nextStep(of q: Int, from index: Int, nodes: [Node]) -> StepFacts? {
        for n in nodes[index...] where n.chosen == q {
            guard !n.killed, let s = n.explored.last, s.process == q, !s.killed else { return nil }
            return s
        }
        return nil
    }

    /// The transitions whose runs the search will ask for later, the soonest first: from
    /// the deepest point with a transition left (`deepest`) up, each point's in the order
    /// the search takes them. Their inputs (`request`) are those they will have, unless a
    /// transition added at a point meanwhile (a race found in a deeper run) comes first
    /// there and changes a sleep set: then the run made ahead is never asked for.
    func ahead(of deepest: Int, nodes: [Node]) -> [Branch] {
        var out: [Branch] = []
        for i in stride(from: min(deepest, nodes.count - 1), through: 0, by: -1) {
            var (steps, kills) = Self.left(nodes[i])
            while steps != 0 {
                out.append(Branch(index: i, process: steps.trailingZeroBitCount, kill: false))
                steps &= steps - 1
            }
            while kills != 0 {
                out.append(Branch(index: i, process: kills.trailingZeroBitCount, kill: true))
                kills &= kills - 1
            }
        }
        return out
    }

    /// Searches from `state` (a fresh one, or one read back by `--resume`). With `jobs` > 1,
    /// the other slots run ahead (`RunAhead`); the state moves exactly as with one job.
    public func search(_ explorer: Explorer, state: inout State) -> Result {
        let jobs = max(1, jobs)
        if jobs > 1 { try? explorer.reserveSlots(jobs) }
        guard let runs = try? RunAhead(explorer: explorer, seed: seed, slots: jobs > 1 ? explorer.slots.count : 1) else {
            return .diverged("cannot map the search's shared memory")
        }
        // A failure, a budget or an interruption: the runs made ahead count for nothing.
        defer {
            explorer.abandonRunning()
            state.ranAhead = runs.ranAhead
            state.ranAheadUsed = runs.used
        }
        let start = MonotonicClock.real()
        let before = state.seconds
        var ranHere = 0
        while true {
            let elapsed = before + Double(MonotonicClock.real() - start) / 1e9
            state.seconds = elapsed
            // The next schedule: the deepest point with a transition left to explore.
            var branch: Branch?
            if state.started {
                for i in state.nodes.indices.reversed() {
                    let (steps, kills) = Self.left(state.nodes[i])
                    if steps != 0 { branch = Branch(index: i, process: steps.trailingZeroBitCount, kill: false); break }
                    if kills != 0 { branch = Branch(index: i, process: kills.trailingZeroBitCount, kill: true); break }
                }
                if branch == nil { return .complete }
            }
            if let limit = self.runs, ranHere >= limit { return .stopped }
            if let timeLimit, Double(MonotonicClock.real() - start) / 1e9 >= timeLimit { return .stopped }
            let asked = request(branch, nodes: state.nodes)
            // While it runs: the transitions the search will ask for after it.
            let obtained = runs.result(of: asked, ahead: { ahead(of: branch?.index ?? -1, nodes: state.nodes) },
                                       request: { predicted($0, nodes: state.nodes) })
            guard case .ran(let ran) = obtained else {
                if case .cannotFork(let why) = obtained { return .diverged(why) }
                return .stopped  // interrupted: the state is as before this schedule
            }
            if let b = branch {
                if b.kill { state.nodes[b.index].killDone |= Self.bit(b.process) } else { state.nodes[b.index].done |= Self.bit(b.process) }
                state.nodes.removeSubrange((b.index + 1)...)
                runs.forget(after: b.index)
            }
            let run = ran.run
            let (picks, killList) = (asked.picks, asked.kills)
            state.schedules += 1
            ranHere += 1
            state.started = true
            if Array(run.picks.prefix(picks.count)) != picks {
                return .diverged("the run did not follow its decisions (\(picks.count) given, \(run.picks.count) made): "
                                 + "is the script deterministic under a schedule (no wall clock, no files that change)?")
            }
            if run.names.count > 64 {
                return .diverged("a run has \(run.names.count) processes; the exhaustive search handles at most 64")
            }
            if Array(run.kills.prefix(killList.count)) != killList {
                return .diverged("the run did not make its kills (\(killList.count) given, \(run.kills.count) made)")
            }
            let blocked = ran.blocked
            if run.failed && !blocked { return .failed(run) }
            let absorbed = absorb(run, branch: branch, blockedReady: blocked ? ran.blockedReady : nil, state: &state)
            if case .refused(let why) = absorbed { return .unsupported(why) }
            if case .complete = absorbed, !blocked {
                state.classes.insert(run.hash)
                onSchedule?(state.schedules - 1, run.hash)
            }
            progress?(state.schedules, state.nodes.count, before + Double(MonotonicClock.real() - start) / 1e9, runs.used)
        }
    }

    enum Absorbed {
        /// The run went to its end: a new interleaving.
        case complete
        /// It went on into a sleeping process (what followed was explored already).
        case asleep
        /// A kill to try here is one the search does not model.
        case refused(String)
    }

    /// Takes a run in: rebuilds the points after the branch from its steps (with their
    /// sleep sets and kills to try) and adds the backtrack points its races call for.
    /// `blockedReady`: the run stopped asleep, with these processes able to go.
    func absorb(_ run: Explorer.Run, branch: Branch?, blockedReady: UInt64?, state: inout State) -> Absorbed {
        var facts = run.steps.map(StepFacts.init)
        StepDependence.linkSpawns(&facts)
        StepDependence.linkKills(&facts)
        let (parent, live) = kills > 0 ? Self.lineage(facts) : ([:], [])
        let from = branch?.index ?? 0
        var end = facts.count
        var sleep: [StepFacts] = []
        // Each process's object, and what a kill of it would change so far.
        var objectOf: [Int: UInt32] = [:]
        for s in facts where s.site == CallSite.processStart.id && objectOf[s.process] == nil { objectOf[s.process] = s.object }
        var touched: [Int: [UInt32]] = [:]
        func note(_ s: StepFacts) {
            if let r = StepDependence.footprintEntry(s), !(touched[s.process] ?? []).contains(r) { touched[s.process, default: []].append(r) }
        }
        for k in 0..<from { note(facts[k]) }
        /// Unbounded: a kill of `c` at point k is the kill at k - 1 (tried there, or
        /// equivalent to one tried further back) when the step between them is another
        /// process's and does not depend on it: kill points that only independent steps
        /// separate are one interleaving.
        func separates(_ c: Int, at k: Int) -> Bool {
            guard preemptions == nil, k > 0, k - 1 < facts.count else { return true }
            let between = facts[k - 1]
            guard between.process != c, state.nodes[k - 1].enabled & Self.bit(c) != 0, let object = objectOf[c] else { return true }
            var kill = StepFacts(process: c, site: CallSite.processStart.id, object: object, key: 0, timeout: false, readyMask: 0)
            kill.killed = true
            kill.footprint = StepDependence.footprint(touched[c] ?? [], killedBefore: kill)
            return StepDependence.dependent(between, kill)
        }
        /// A new point at step k (enabled `enabled`), with its kills to try.
        func append(_ k: Int, enabled: UInt64, chosen: Int, killed: Bool, explored: [StepFacts]) -> String? {
            let previous = k > 0 ? state.nodes[k - 1] : nil
            let preemptionsBefore = (previous?.preemptionsBefore ?? 0) + (previous?.preempted == true ? 1 : 0)
            let killsBefore = (previous?.killsBefore ?? 0) + (previous?.killed == true ? 1 : 0)
            var victims = killAlternatives(enabled: enabled, killsBefore: killsBefore, preemptionsBefore: preemptionsBefore,
                                           previous: previous?.chosen ?? -1)
            var bits = victims
            while bits != 0 {
                let c = bits.trailingZeroBitCount
                bits &= bits - 1
                if let child = parent.first(where: { $0.value == c && live[k] & Self.bit($0.key) != 0 })?.key {
                    return "a kill of \(run.name(c)) at step \(k + 1) would end its child process \(run.name(child)) too, "
                        + "which the exhaustive search does not model; explore such kills with --strategy pct or random"
                }
                if !separates(c, at: k) && !(killed && c == chosen) { victims &= ~Self.bit(c) }
            }
            let own = killed ? 0 : Self.bit(chosen)
            state.nodes.append(Node(enabled: enabled, chosen: chosen, killed: killed, isChoice: enabled.nonzeroBitCount > 1,
                                    backtrack: own, done: own, killBacktrack: victims | (killed ? Self.bit(chosen) : 0),
                                    killDone: killed ? Self.bit(chosen) : 0, killsBefore: killsBefore, sleep: sleep,
                                    explored: explored, preemptionsBefore: preemptionsBefore, preempted: false))
            return nil
        }
        for k in from..<facts.count {
            let s = facts[k]
            if k == from, let b = branch {
                state.nodes[k].chosen = b.process
                state.nodes[k].killed = b.kill
                state.nodes[k].explored.append(s)
                // After a kill, nothing sleeps: the kill stands for the same kill after the
                // independent steps that follow it here (`separates`), so its subtree
                // must hold their orders too.
                sleep = preemptions == nil && !b.kill ? (state.nodes[k].sleep + state.nodes[k].explored).filter { $0.process != s.process } : []
            } else {
                // A process that is asleep made this step: not a new interleaving from
                // here (its kills here are still to try).
                let asleep = !s.killed && sleep.contains { $0.process == s.process && !$0.killed }
                if let refusal = append(k, enabled: s.readyMask, chosen: s.process, killed: s.killed, explored: asleep ? [] : [s]) {
                    return .refused(refusal)
                }
                if asleep {
                    state.nodes[k].preempted = run.steps[k].preempted
                    end = k
                    break
                }
            }
            state.nodes[k].preempted = run.steps[k].preempted
            note(s)
            // A step wakes the sleepers it depends on; a process's own step (or death)
            // ends its kill's sleep (that kill point is behind it).
            sleep = sleep.filter { !StepDependence.dependent($0, s) && $0.process != s.process }
        }
        if end == facts.count, let ready = blockedReady {
            // Where the run stopped asleep: no step is left to try there, but kills may be.
            if let refusal = append(facts.count, enabled: ready, chosen: -1, killed: false, explored: []) { return .refused(refusal) }
            state.nodes[facts.count].backtrack = 0
            state.nodes[facts.count].done = 0
        }
        // The whole run is a real execution: its races count even past a sleeping step
        // (only points up to there are kept).
        addBacktracks(facts, from: from, nodes: &state.nodes)
        return end == facts.count ? .complete : .asleep
    }

    // MARK: Races

    /// Finds the races of the execution `facts` (happens-before by vector clocks) whose
    /// second step is at `from` or later (the steps before it are those of an earlier run,
    /// whose races were handled then), and adds the backtrack points they call for.
    func addBacktracks(_ facts: [StepFacts], from: Int, nodes: inout [Node]) {
        let n = facts.count
        guard n > 1 else { return }
        let width = (facts.map(\.process).max() ?? 0) + 1
        // clock[k * width + p]: 1 + the last step of p that happens before step k (or is it).
        var clock = [Int32](repeating: 0, count: n * width)
        var lastWrite: [UInt32: Int] = [:]
        var readsSince: [UInt32: [Int]] = [:]
        var lastStep = [Int](repeating: -1, count: width)
        var lastGlobal = [Int](repeating: -1, count: width)
        var lastBlocking: [UInt32: [Int: Int]] = [:]
        for k in 0..<n {
            let s = facts[k]
            let q = s.process
            var before: [Int] = []
            let touched = StepDependence.touches(s)
            if StepDependence.isGlobal(s) {
                for p in 0..<width where p != q && lastStep[p] >= 0 { before.append(lastStep[p]) }
            } else {
                for (r, w) in touched {
                    if let lw = lastWrite[r] { before.append(lw) }
                    if w { before += readsSince[r] ?? [] }
                }
                for p in 0..<width where p != q && lastGlobal[p] >= 0 { before.append(lastGlobal[p]) }
            }
            let previous = lastStep[q]
            let row = k * width
            if previous >= 0 { for p in 0..<width { clock[row + p] = clock[previous * width + p] } }
            for j in before { for p in 0..<width { clock[row + p] = max(clock[row + p], clock[j * width + p]) } }
            clock[row + q] = Int32(k + 1)
            // Races: a dependent step of another process with nothing ordering them in between.
            let ordering = before + (previous >= 0 ? [previous] : [])
            for e in Set(before) where k >= from && facts[e].process != q {
                let pe = facts[e].process
                let immediate = !ordering.contains { d in d != e && clock[d * width + pe] > Int32(e) }
                if immediate { race(e, k, facts: facts, clock: clock, width: width, nodes: &nodes) }
            }
            // A blocking call (an acquire, a get) also races with each other process's last
            // blocking call on its object that q's earlier steps did not wait for, as in
            // Flanagan and Godefroid's DPOR: the release and the other acquires between
            // them hide that race from the immediate ones.
            let blocking = StepDependence.mayWait(s) && !StepDependence.isGlobal(s)
            if blocking && k >= from, let last = lastBlocking[StepDependence.resource(s)] {
                for (p, e) in last where p != q && (previous < 0 || clock[previous * width + p] <= Int32(e)) && !before.contains(e)
                    && StepDependence.dependent(facts[e], s) {
                    race(e, k, facts: facts, clock: clock, width: width, nodes: &nodes)
                }
            }
            if blocking { lastBlocking[StepDependence.resource(s), default: [:]][q] = k }
            // The state of each object after step k.
            if StepDependence.isGlobal(s) { lastGlobal[q] = k }
            for (r, w) in touched {
                if w { lastWrite[r] = k; readsSince[r] = nil } else { readsSince[r, default: []].append(k) }
            }
            lastStep[q] = k
        }
    }

    func race(_ e: Int, _ k: Int, facts: [StepFacts], clock: [Int32], width: Int, nodes: inout [Node]) {
        let q = facts[k].process
        // A join of P waits for P's end: that order cannot be reversed.
        if facts[e].site == CallSite.processEnd.id && facts[k].site == CallSite.join.id {
            return
        }
        let pe = facts[e].process
        var previous = k - 1
        while previous >= 0 && facts[previous].process != q { previous -= 1 }
        if previous < e && facts[e].readyMask & Self.bit(q) == 0 {
            // Step k waited there: step e made it possible (a release before an acquire, a
            // put before a get that waited), and the order cannot be reversed. The order
            // that can is with the blocking call of e's process that started what k waited
            // for (the acquire before that release): race with that one.
            let before = (0..<e).reversed().first { j in
                facts[j].process == pe && StepDependence.mayWait(facts[j]) && StepDependence.dependent(facts[j], facts[k])
            }
            if let before { race(before, k, facts: facts, clock: clock, width: width, nodes: &nodes) }
            return
        }
        guard e < nodes.count else { return }
        if let bound = preemptions {
            addBounded(e, q, bound: bound, nodes: &nodes)
            // Also at the last context switch before it (Coons et al.; loom).
            var j = e - 1
            while j >= 1 && nodes[j].chosen == nodes[j - 1].chosen { j -= 1 }
            if j >= 0 { addBounded(j, q, bound: bound, nodes: &nodes) }
            return
        }
        // The initials of notdep(e).q: the steps after e that do not happen after it, then
        // step k; a process is an initial when its first step there has no step of the
        // sequence happening before it.
        // firsts: each process's first step there, by its place in the sequence.
        var firsts: [Int: Int] = [:]
        var sequence: [Int] = []
        for j in (e + 1)..<k where clock[j * width + pe] <= Int32(e) {
            if firsts[facts[j].process] == nil { firsts[facts[j].process] = sequence.count }
            sequence.append(j)
        }
        if firsts[q] == nil { firsts[q] = sequence.count }
        sequence.append(k)
        let node = nodes[e]
        // An initial whose first step there is a kill starts with that kill.
        var initials: UInt64 = 0
        var killInitials: UInt64 = 0
        for (p, place) in firsts {
            let j = sequence[place]
            let preceded = sequence[..<place].contains { i in clock[j * width + facts[i].process] > Int32(i) }
            if !preceded {
                if facts[j].killed { killInitials |= Self.bit(p) } else { initials |= Self.bit(p) }
            }
        }
        let possible = initials & node.enabled
        // Every kill that may be made there is tried there already (unbounded: there or at
        // an equivalent point before it).
        let killable = preemptions == nil ? (node.killsBefore < kills ? node.enabled & ~Self.bit(0) : 0) : node.killBacktrack
        if killInitials & killable != 0 { return }
        if possible == 0 {
            // No initial can go there (enabledness outside the relation): every process that can.
            nodes[e].backtrack |= node.enabled
            return
        }
        if possible & (node.backtrack | node.sleepMask) != 0 { return }
        nodes[e].backtrack |= possible & Self.bit(q) != 0 ? Self.bit(q) : Self.bit(possible.trailingZeroBitCount)
    }

    /// Bounded: `q` at point `i` if it could go there, else every process that could;
    /// each only when its schedule stays within the bound.
    func addBounded(_ i: Int, _ q: Int, bound: Int, nodes: inout [Node]) {
        let node = nodes[i]
        let candidates = node.enabled & Self.bit(q) != 0 ? Self.bit(q) : node.enabled
        var bits = candidates & ~node.backtrack
        while bits != 0 {
            let c = bits.trailingZeroBitCount
            bits &= bits - 1
            let previous = i > 0 ? nodes[i - 1].chosen : -1
            let preempts = previous >= 0 && node.enabled & Self.bit(previous) != 0 && c != previous
            if node.preemptionsBefore + (preempts ? 1 : 0) <= bound { nodes[i].backtrack |= Self.bit(c) }
        }
    }
}

// MARK: - Running ahead

extension ExhaustiveSearch {
    /// The runs of the search, several at once (`--jobs`), with a result that does not
    /// depend on how many: the search asks for one run at a time, as it always did, and
    /// takes them in its own order; meanwhile the other slots make the runs it will ask for
    /// later (`ahead(of:)`). Every result is kept under the exact inputs of its run (the
    /// point it branches at, its decisions and kills, its sleep set): a run is
    /// deterministic, so a result kept under the inputs the search asks for is the result
    /// it would get by running them now. A run made ahead that the search never asks for
    /// (a transition added meanwhile came first and changed its sleep set) is wasted work,
    /// never a different result.
    final class RunAhead {
        /// What a run is made from: its result depends on these alone.
        struct Request: Hashable {
            var from: Int
            var picks: [Int]
            var kills: [Explorer.Kill]
            /// The sleep set as the board holds it (`SleepBoard.prepare`).
            var asleep: [UInt64]
            /// The steps asleep, for the board.
            var sleep: [StepFacts]

            init(from: Int, picks: [Int], kills: [Explorer.Kill], sleep: [StepFacts]) {
                self.from = from
                self.picks = picks
                self.kills = kills
                self.sleep = sleep
                asleep = sleep.filter { !$0.killed }.prefix(SleepBoard.capacity).flatMap { e in
                    [UInt64(e.process), UInt64(e.site), UInt64(e.object) | UInt64(e.key) << 32, e.timeout ? 1 : 0]
                }
            }

            static func == (a: Request, b: Request) -> Bool {
                a.from == b.from && a.picks == b.picks && a.kills == b.kills && a.asleep == b.asleep
            }

            func hash(into h: inout Hasher) {
                h.combine(from)
                h.combine(picks)
                h.combine(kills)
                h.combine(asleep)
            }
        }

        /// A finished run, with what its slot's board said of it.
        struct Ran {
            var run: Explorer.Run
            var blocked: Bool
            var blockedReady: UInt64
            /// It was made ahead of the search's asking.
            var ahead: Bool
        }

        enum Obtained {
            case ran(Ran)
            /// Interrupted (SIGINT, SIGTERM, SIGHUP).
            case interrupted
            case cannotFork(String)
        }

        /// A transition run ahead, so that it is not run ahead twice.
        struct Started: Hashable {
            var index: Int
            var process: Int
            var kill: Bool
        }

        let explorer: Explorer
        let seed: UInt64
        /// One board per slot: a run reads its own slot's sleep set and says there where it
        /// stopped asleep.
        let boards: [SleepBoard]
        var free: [Int]
        var running: [Int32: (request: Request, slot: Int, ahead: Bool)] = [:]
        var kept: [Request: Ran] = [:]
        var started = Set<Started>()
        /// Results kept at most (runs ahead wait when that many are kept).
        let keepAtMost: Int
        /// Runs started ahead, and those of them the search took.
        var ranAhead = 0
        var used = 0

        init(explorer: Explorer, seed: UInt64, slots: Int) throws(IPCError) {
            self.explorer = explorer
            self.seed = seed
            var boards: [SleepBoard] = []
            for _ in 0..<slots { boards.append(try SleepBoard()) }
            self.boards = boards
            free = Array((0..<slots).reversed())
            keepAtMost = 64 * slots
        }

        /// The result of the run `request`: kept, else that of the same run in progress,
        /// else of a run started now. While waiting, free slots start the runs of `ahead`'s
        /// transitions (their inputs from `request`).
        func result(of asked: Request, ahead: () -> [Branch], request: (Branch) -> Request?) -> Obtained {
            while true {
                if let ran = kept.removeValue(forKey: asked) {
                    if ran.ahead { used += 1 }
                    return .ran(ran)
                }
                if Cancellation.isRequested { return .interrupted }
                if !running.values.contains(where: { $0.request == asked }) {
                    if free.isEmpty {
                        // Every slot runs ahead: the first to end makes room.
                        if !collectOne() { return .interrupted }
                        continue
                    }
                    if !launch(asked, ahead: false) {
                        return Cancellation.isRequested ? .interrupted : .cannotFork("cannot fork a run: \(Syscall.lastError)")
                    }
                }
                if !free.isEmpty && kept.count + running.count < keepAtMost {
                    for b in ahead() where !free.isEmpty && kept.count + running.count < keepAtMost {
                        guard started.insert(Started(index: b.index, process: b.process, kill: b.kill)).inserted else { continue }
                        guard let r = request(b) else { continue }
                        if r == asked || kept[r] != nil || running.values.contains(where: { $0.request == r }) { continue }
                        if !launch(r, ahead: true) { break }
                        ranAhead += 1
                    }
                }
                if !collectOne() { return .interrupted }
            }
        }

        /// Starts `request` in a free slot.
        func launch(_ request: Request, ahead: Bool) -> Bool {
            guard let slot = free.popLast() else { return false }
            boards[slot].prepare(request.sleep, from: request.from)
            guard let pid = explorer.launch(.directed(.end), seed: seed, decisions: Explorer.byIndex(request.picks, kills: request.kills),
                                            sleepBoard: boards[slot], slot: slot) else {
                free.append(slot)
                return false
            }
            running[pid] = (request, slot, ahead)
            return true
        }

        /// Waits for a run to end and keeps its result; false when interrupted.
        func collectOne() -> Bool {
            guard !running.isEmpty, let pid = explorer.awaitAny(), let r = running.removeValue(forKey: pid) else { return false }
            let run = explorer.collect(pid, seed: seed, output: .discard)
            free.append(r.slot)
            // A run ended by the interruption says nothing of the script.
            if Cancellation.isRequested { return false }
            let board = boards[r.slot]
            kept[r.request] = Ran(run: run, blocked: board.blocked, blockedReady: board.blockedReady, ahead: r.ahead)
            return true
        }

        /// The search took a transition at point `index`: the points after it are gone, and
        /// with them every run that starts from them. The transitions left there are
        /// predicted again (their sleep sets now hold the step just taken, not a guess).
        func forget(after index: Int) {
            kept = kept.filter { $0.key.from <= index }
            started = started.filter { $0.index < index }
        }
    }
}

// MARK: - Saving and resuming

extension ExhaustiveSearch.State {
    /// The state as text: a header line naming what it belongs to, the counts, the
    /// classes seen, then one line per point of the current execution.
    public func encoded(header: String) -> String {
        var out = "ipcplay-exhaustive 2\n\(header)\n"
        out += "schedules \(schedules) seconds \(seconds)\n"
        out += "classes " + classes.sorted().map { String($0, radix: 16) }.joined(separator: " ") + "\n"
        for n in nodes {
            var line = "node \(n.enabled) \(n.chosen) \(n.isChoice ? 1 : 0) \(n.backtrack) \(n.done) \(n.preemptionsBefore) \(n.preempted ? 1 : 0)"
            line += " \(n.killed ? 1 : 0) \(n.killBacktrack) \(n.killDone) \(n.killsBefore)"
            line += " |" + n.sleep.map(Self.encode).joined(separator: " ")
            line += " |" + n.explored.map(Self.encode).joined(separator: " ")
            out += line + "\n"
        }
        return out
    }

    /// A step: process, site, object, key, timeout; for a kill, then `k` and its footprint.
    static func encode(_ s: StepFacts) -> String {
        let base = "\(s.process),\(s.site),\(s.object),\(s.key),\(s.timeout ? 1 : 0)"
        return s.killed ? base + ",k" + s.footprint.map { ",\($0)" }.joined() : base
    }

    static func decodeFacts(_ text: Substring) -> StepFacts? {
        let f = text.split(separator: ",")
        guard f.count >= 5, let p = Int(f[0]), let site = Int(f[1]), let o = UInt32(f[2]), let k = UInt32(f[3]) else { return nil }
        var s = StepFacts(process: p, site: site, object: o, key: k, timeout: f[4] == "1", readyMask: 0)
        if f.count > 5 {
            guard f[5] == "k" else { return nil }
            s.killed = true
            for word in f.dropFirst(6) {
                guard let r = UInt32(word) else { return nil }
                s.footprint.append(r)
            }
        }
        return s
    }

    /// Reads back what `encoded` wrote; nil when it is not such a state or belongs to
    /// another search (`header` differs).
    public init?(decoding text: String, header: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 4, lines[0] == "ipcplay-exhaustive 2", lines[1] == Substring(header) else { return nil }
        let counts = lines[2].split(separator: " ")
        guard counts.count == 4, counts[0] == "schedules", let s = Int(counts[1]), let secs = Double(counts[3]) else { return nil }
        schedules = s
        seconds = secs
        started = s > 0
        guard lines[3].hasPrefix("classes") else { return nil }
        for word in lines[3].split(separator: " ").dropFirst() {
            guard let h = UInt64(word, radix: 16) else { return nil }
            classes.insert(h)
        }
        for line in lines.dropFirst(4) where !line.isEmpty {
            let parts = line.split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count == 3 else { return nil }
            let w = parts[0].split(separator: " ")
            guard w.count == 12, w[0] == "node", let enabled = UInt64(w[1]), let chosen = Int(w[2]), let backtrack = UInt64(w[4]),
                  let done = UInt64(w[5]), let pre = Int(w[6]), let killBacktrack = UInt64(w[9]), let killDone = UInt64(w[10]),
                  let killsBefore = Int(w[11]) else { return nil }
            let sleep = parts[1].split(separator: " ").compactMap(Self.decodeFacts)
            let explored = parts[2].split(separator: " ").compactMap(Self.decodeFacts)
            nodes.append(ExhaustiveSearch.Node(enabled: enabled, chosen: chosen, killed: w[8] == "1", isChoice: w[3] == "1",
                                               backtrack: backtrack, done: done, killBacktrack: killBacktrack, killDone: killDone,
                                               killsBefore: killsBefore, sleep: sleep, explored: explored,
                                               preemptionsBefore: pre, preempted: w[7] == "1"))
        }
    }
}
