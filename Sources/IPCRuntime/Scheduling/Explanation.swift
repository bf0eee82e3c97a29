import IPCCore

/// Why a failing schedule fails, in one of the contract's forms (v3, "Explanations"):
/// derived from the dependency relation `--exhaustive` uses (`StepDependence`) and
/// confirmed by a directed rerun.
public struct Explanation: Sendable {
    public enum Form: String, Sendable {
        /// Two dependent steps of two processes: the later one moved before the earlier
        /// one, the schedule passes.
        case criticalPair = "critical pair"
        /// Two steps of one process with a dependent step of another between them: run
        /// without that step between them, the schedule passes.
        case atomicity
        /// The schedule fails with no preemption.
        case notARace = "not a race"
        /// None of the above was confirmed.
        case none = "no explanation found"
    }

    /// A step the explanation names: its index in the run's steps, or nil for the call its
    /// process was waiting in when the run failed.
    public struct Named: Sendable {
        public var step: ScheduleLog.Step
        public var index: Int?
    }

    public var form: Form
    /// The steps of its line, in the line's order (a pair: the earlier, then the later;
    /// atomicity: the process's two steps, then the step between them).
    public var named: [Named] = []

    public init(form: Form, named: [Named] = []) {
        self.form = form
        self.named = named
    }

    /// The contract's line, each step written by `describe` ("value read at f.lua:9").
    public func line(_ describe: (ScheduleLog.Step) -> String) -> String {
        switch form {
        case .criticalPair where named.count == 2:
            return "critical pair: \(describe(named[0].step)) / \(describe(named[1].step))"
        case .atomicity where named.count == 3:
            return "atomicity: \(describe(named[0].step)) ... \(describe(named[1].step)) interrupted by \(describe(named[2].step))"
        case .notARace:
            return "not a race: the schedule fails with no preemption"
        default:
            return "no explanation found"
        }
    }
}

/// A schedule as the processes that make its steps, one by one: the first `required` steps
/// must be made so; the rest is the original order, followed where it still can be.
struct Reordering: Hashable {
    var order: [Int]
    var required: Int
}

/// Where an explanation's candidates come from: the steps of a failing run, as the
/// dependency relation sees them, and the reordered schedules that would confirm them.
struct ExplanationCandidates {
    let run: Explorer.Run
    /// The steps as `StepDependence` takes them (spawns linked).
    let facts: [StepFacts]
    /// The order of processes, step by step: what a reordering rearranges.
    let order: [Int]

    init(_ run: Explorer.Run) {
        self.run = run
        var facts = run.steps.map(StepFacts.init)
        StepDependence.linkSpawns(&facts)
        self.facts = facts
        order = run.steps.map(\.process)
    }

    /// A step of the run or a call a process waited in at the end, and its facts.
    struct Site {
        var named: Explanation.Named
        var facts: StepFacts
    }

    func site(_ i: Int) -> Site { Site(named: .init(step: run.steps[i], index: i), facts: facts[i]) }

    func pendingSite(of process: Int) -> Site? {
        guard process < run.pending.count, let p = run.pending[process] else { return nil }
        return Site(named: .init(step: p, index: nil), facts: StepFacts(p))
    }

    func dependent(_ a: Site, _ b: Site) -> Bool { StepDependence.dependent(a.facts, b.facts) }

    /// The steps where the run switched away from a process that could have gone on, the
    /// last first (the later a preemption, the closer to the failure it tends to be).
    /// (The last 16: a schedule whose shrinking was cut short can have thousands.)
    var preemptions: [Int] {
        Array(run.steps.indices.filter { $0 > 0 && run.steps[$0].preempted && !run.steps[$0].killed }.reversed().prefix(16))
    }

    /// The process order with the steps of `process` from index `from` up to and including
    /// `through` (its pending call when nil: one more step of it) moved to position `to`,
    /// ahead of the other processes' steps in between, which keep their order. The steps
    /// up to the moved ones are the schedule's point; the rest is followed as far as it can be.
    func moved(process: Int, from: Int, through: Int?, to position: Int) -> Reordering {
        let end = through ?? order.count - 1
        guard position <= from, position <= end + 1 else { return Reordering(order: order, required: order.count) }
        var moving: [Int] = []
        var staying: [Int] = []
        for i in position...max(position, end) where i < order.count {
            if order[i] == process && i >= from { moving.append(i) } else { staying.append(i) }
        }
        var result = Array(order[..<position]) + moving.map { order[$0] }
        if through == nil { result.append(process) }
        let required = result.count
        result += staying.map { order[$0] }
        if end + 1 < order.count { result += order[(end + 1)...] }
        return Reordering(order: result, required: required)
    }

    /// The atomicity violations across each preemption, most telling first: two steps of a
    /// process, one before the preemption and one after it (or the call it waited in at
    /// the end), and a step of another process between them that depends on them.
    ///
    /// Ranked, in this order: no unlock or release of the process between the two (one
    /// means others may come in); the two on data rather than on locks and life cycle;
    /// two different calls rather than one call made twice (a loop's turns); a step
    /// between them that depends on both in an order no serial run gives (see `kind`;
    /// the last such before the second); the fewest steps of the process between the
    /// two; the preempted process's own steps before those of a process that had
    /// blocked; the later preemption; the nearer steps.
    ///
    /// Each comes with the schedules that run the two without that step between them: the
    /// process going on from the first to the second; the other process's steps up to it
    /// before the first; or the process's steps up to the second before the other
    /// process's stretch of steps that holds it.
    func atomicity() -> [(named: [Explanation.Named], tries: [Reordering])] {
        // released, sync, again, kind, span, preempted, preemption, back: in this order.
        var found: [(rank: [Int], named: [Explanation.Named], tries: [Reordering])] = []
        var seen = Set<[Int]>()
        for (nth, p) in preemptions.enumerated() {
            // Every process with steps on both sides of the preemption (or waiting at the end).
            let straddling = Set(run.steps[..<p].map(\.process)).filter { x in
                run.steps[p...].contains { $0.process == x && !$0.killed } || pendingSite(of: x) != nil
            }
            for x in straddling.sorted() {
                let before = run.steps.indices[..<p].reversed().filter { run.steps[$0].process == x && !run.steps[$0].killed }.prefix(6)
                var after = Array(run.steps.indices[p...].filter { run.steps[$0].process == x && !run.steps[$0].killed }.prefix(4).map(site))
                if after.count < 4, let pending = pendingSite(of: x) { after.append(pending) }
                for (back, i) in before.enumerated() where !Self.setsUp(run.steps[i]) {
                    let first = site(i)
                    for second in after where !Self.setsUp(second.named.step) {
                        let j = second.named.index ?? run.steps.count
                        var best: (kind: Int, k: Int)?
                        // (At most 256 steps back from the second.)
                        for k in max(i + 1, j - 256)..<max(i + 1, j) where run.steps[k].process != x && !run.steps[k].killed {
                            let b = site(k)
                            let onFirst = dependent(first, b), onSecond = dependent(b, second)
                            guard onFirst || onSecond else { continue }
                            // Both, in an order no serial run gives, where the process acts on a
                            // view another changed (AVIO's R-W-R, W-W-R, R-W-W); then where another
                            // sees its half-done work (W-R-W); then W-W-W, which leaves what
                            // running them in a row would.
                            let w = (StepDependence.writes(first.facts), StepDependence.writes(b.facts), StepDependence.writes(second.facts))
                            let kind = onFirst && onSecond ? (w.1 ? (w.0 && w.2 ? 2 : 0) : 1) : onSecond ? 3 : 4
                            if best == nil || kind <= best!.kind { best = (kind, k) }
                        }
                        guard let (kind, k) = best, seen.insert([i, second.named.index ?? -1 - x, k]).inserted else { continue }
                        let other = run.steps[k].process
                        var stretch = k
                        while stretch > i + 1 && run.steps[stretch - 1].process == other { stretch -= 1 }
                        let tries = [moved(process: x, from: i + 1, through: second.named.index, to: i + 1),
                                     moved(process: other, from: i, through: k, to: i),
                                     moved(process: x, from: stretch, through: second.named.index, to: stretch)]
                        let sync = (Self.synchronizes(first.named.step) ? 1 : 0) + (Self.synchronizes(second.named.step) ? 1 : 0)
                        let preempted = x == run.steps[p - 1].process ? 0 : 1
                        let own = (i + 1..<j).filter { run.steps[$0].process == x }
                        let span = own.count
                        // The process let go of a lock between the two: it meant others to come in.
                        let released = own.contains { Self.releases(run.steps[$0]) } ? 1 : 0
                        // The same call at the same line twice: two turns of a loop, rarely meant as one.
                        let again = first.named.step.site == second.named.step.site && first.named.step.location == second.named.step.location ? 1 : 0
                        found.append(([released, sync, again, kind, span, preempted, nth, back], [first.named, second.named, site(k).named], tries))
                    }
                }
            }
        }
        return found.sorted { $0.rank.lexicographicallyPrecedes($1.rank) }.map { ($0.named, $0.tries) }
    }

    /// A call of the module that makes an object or a process (`ipc.lock`, `ipc.spawn`):
    /// the setting up of a scenario, not a step of its protocol.
    static func setsUp(_ step: ScheduleLog.Step) -> Bool {
        guard CallSite.all.indices.contains(step.site) else { return false }
        let name = CallSite.all[step.site].name
        return name.hasPrefix("ipc.") && name != "ipc.wait" && name != "ipc.sleep"
    }

    /// A call that gives up a lock (a release, an unlock).
    static func releases(_ step: ScheduleLog.Step) -> Bool {
        guard CallSite.all.indices.contains(step.site) else { return false }
        let method = CallSite.all[step.site].name.split(separator: ":").last.map(String.init) ?? ""
        return method == "release" || method == "unlock"
    }

    /// A call on a lock, a condition, a semaphore or a barrier, a value's own lock, or one
    /// that starts, ends or joins a process: the points where a program lets others in on
    /// purpose, or waits for them.
    static func synchronizes(_ step: ScheduleLog.Step) -> Bool {
        guard CallSite.all.indices.contains(step.site) else { return false }
        let name = CallSite.all[step.site].name
        if ["process start", "process end", "ipc.spawn", "process:join"].contains(name) { return true }
        let parts = name.split(separator: ":").map(String.init)
        guard parts.count == 2 else { return false }
        return ["lock", "rlock", "condition", "semaphore", "bounded_semaphore", "barrier"].contains(parts[0])
            || ["acquire", "release", "lock", "unlock"].contains(parts[1])
    }

    /// The dependent pairs across each preemption: a step shortly before it, and a step of
    /// another process after it (up to where the preempted process resumes) or a call a
    /// process waited in at the end. Each comes with the schedule that moves the later one
    /// (with its process's steps since the earlier one) before the earlier one.
    func pairs() -> [(named: [Explanation.Named], tries: [Reordering])] {
        var found: [(rank: (Int, Int, Int), named: [Explanation.Named], tries: [Reordering])] = []
        var seen = Set<[Int]>()
        for (nth, p) in preemptions.enumerated() {
            let a = run.steps[p - 1].process
            let resume = run.steps.indices.first { $0 >= p && run.steps[$0].process == a } ?? run.steps.count
            var later = (p..<min(resume, p + 64)).filter { !run.steps[$0].killed }.map(site)
            for q in run.pending.indices where q != a { if let s = pendingSite(of: q) { later.append(s) } }
            for i in run.steps.indices[max(0, p - 8)..<p].reversed() where !run.steps[i].killed && !Self.setsUp(run.steps[i]) {
                let first = site(i)
                for (distance, second) in later.enumerated()
                where second.named.step.process != first.named.step.process && !Self.setsUp(second.named.step) {
                    guard dependent(first, second) else { continue }
                    let key = [i, second.named.index ?? -1 - second.named.step.process]
                    guard seen.insert(key).inserted else { continue }
                    let order = moved(process: second.named.step.process, from: i, through: second.named.index, to: i)
                    found.append(((nth, p - i, distance), [first.named, second.named], [order]))
                }
            }
        }
        return found.sorted { $0.rank < $1.rank }.map { ($0.named, $0.tries) }
    }

    /// A process killed between two of its steps (`--kill`): the last step it made that a
    /// step of another process, after the kill, depends on; the call the kill came before
    /// (which never took effect); and that step of the other process, which saw the
    /// half-done work.
    func killAtomicity() -> [(named: [Explanation.Named], kill: Int)] {
        var found: [(named: [Explanation.Named], kill: Int)] = []
        for k in run.steps.indices where run.steps[k].killed {
            let victim = run.steps[k].process
            let made = run.steps.indices[..<k].reversed().filter { run.steps[$0].process == victim && !run.steps[$0].killed }
            for i in made.prefix(8) {
                let first = site(i)
                guard let j = run.steps.indices[(k + 1)...].first(where: { run.steps[$0].process != victim && dependent(first, site($0)) })
                else { continue }
                found.append(([first.named, .init(step: run.steps[k], index: k), site(j).named], k))
                break
            }
        }
        return found
    }
}

extension Explorer {
    /// The explanation of the failing `run` (logged with locations), confirmed by directed
    /// reruns: at most `budget` of them (by default 200, fewer for a long schedule: about
    /// 200,000 steps in all, so that a replay of thousands of steps is explained in
    /// seconds; a count, not a clock, so the same run always gets the same explanation),
    /// until `deadline`. `picks` and `kills` are the run's decisions. Returns it and the
    /// runs spent.
    public func explain(_ run: Run, picks: [Int], kills: [Kill], budget: Int? = nil, deadline: Int64? = nil) -> (Explanation, runs: Int) {
        var spent = 0
        let budget = budget ?? min(200, max(10, 200_000 / max(run.steps.count, 1)))
        let explanation = run.report.outcome == .deadlock
            ? deadlockExplanation(run, kills: kills, budget: budget, deadline: deadline, spent: &spent)
            : dependencyExplanation(run, kills: kills, budget: budget, deadline: deadline, spent: &spent)
        return (explanation, spent)
    }

    /// A deadlock's explanation. The wait-for cycle of the run's holders, when the runtime
    /// reports one, belongs here; until then a deadlock is explained as any failure is.
    func deadlockExplanation(_ run: Run, kills: [Kill], budget: Int, deadline: Int64?, spent: inout Int) -> Explanation {
        dependencyExplanation(run, kills: kills, budget: budget, deadline: deadline, spent: &spent)
    }

    /// The forms that come from the dependency relation, first confirmed first: an
    /// atomicity violation cut by a kill; with no preemption, not a race; an atomicity
    /// violation across a preemption; a critical pair.
    func dependencyExplanation(_ run: Run, kills: [Kill], budget: Int, deadline: Int64?, spent: inout Int) -> Explanation {
        let candidates = ExplanationCandidates(run)
        var tried: [Reordering: Bool] = [:]
        func out() -> Bool {
            spent >= budget || deadline.map { MonotonicClock.real() >= $0 } ?? false
        }
        /// Whether the schedule in `order` runs and passes (each order tried once).
        func passes(_ order: Reordering) -> Bool {
            if let known = tried[order] { return known }
            guard !out() else { return false }
            let r = follow(order, seed: run.seed, spent: &spent, budget: budget, deadline: deadline)
            tried[order] = r.map { !$0.failed } ?? false
            return tried[order]!
        }

        if !kills.isEmpty {
            // The kill the failure needs, between two steps of its process: the run without
            // it passes.
            for c in candidates.killAtomicity() {
                guard !out() else { break }
                let without = kills.filter { $0.process != run.steps[c.kill].process }
                spent += 1
                let r = self.run(.directed(.end), seed: run.seed, decisions: Self.byIndex(run.picks, kills: without))
                if !r.failed { return Explanation(form: .atomicity, named: c.named) }
            }
            // Reordering a schedule with kills would move them about: the other forms are
            // confirmed on schedules without kills only.
            return Explanation(form: run.preemptions == 0 ? .notARace : .none)
        }
        if run.preemptions == 0 { return Explanation(form: .notARace) }
        for c in candidates.atomicity() where c.tries.contains(where: passes) {
            return Explanation(form: .atomicity, named: c.named)
        }
        for c in candidates.pairs() where c.tries.contains(where: passes) {
            return Explanation(form: .criticalPair, named: c.named)
        }
        return Explanation(form: .none)
    }

    /// Runs the schedule whose steps are made by the processes of `reordering`, one by one
    /// (then the current process goes on). The decisions are found by running: each run
    /// follows the order up to the first step where a choice went otherwise, and that
    /// choice is added. Past the required steps, a step its process cannot make there
    /// (it waits, or it has ended, or went another way) is left out. Nil when the
    /// required steps cannot be made.
    func follow(_ reordering: Reordering, seed: UInt64, spent: inout Int, budget: Int, deadline: Int64?) -> Run? {
        var order = reordering.order
        var picks: [Int] = []
        while spent < budget && !(deadline.map { MonotonicClock.real() >= $0 } ?? false) {
            spent += 1
            let r = run(.directed(.end), seed: seed, decisions: Self.byIndex(picks))
            var choices = 0
            var needed: (choice: Int, process: Int)?
            var t = 0
            while t < min(order.count, r.steps.count) {
                let s = r.steps[t], want = order[t]
                if s.process == want {
                    if s.isChoice { choices += 1 }
                    t += 1
                    continue
                }
                if s.isChoice, !s.killed, want < 64, s.readyMask & (1 << UInt64(want)) != 0, choices >= picks.count {
                    needed = (choices, want)
                    break
                }
                if t < reordering.required { return nil }
                order.remove(at: t)
            }
            guard let needed else { return r }
            picks = Array(r.picks.prefix(needed.choice)) + [needed.process]
        }
        return nil
    }
}
