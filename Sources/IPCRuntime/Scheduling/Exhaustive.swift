import CRuntimeShim
import Glibc
import IPCCore

// MARK: - Sleep sets in the run

/// The sleep set a run of the exhaustive search starts with after its last decision: the
/// processes whose next step was already explored from there (with that step), so that
/// putting them first again would only repeat an explored interleaving. The run's
/// continuation (no decision left) keeps away from them until a step dependent on theirs
/// wakes them; when every process that can go is asleep the run stops (it is
/// "sleep-set blocked": everything after it was explored). Shared memory made before
/// the runs are forked; every process of a run reads it.
final class SleepBoard {
    /// The board of the search in progress (nil: runs continue without preemption).
    nonisolated(unsafe) static var current: SleepBoard?

    static let capacity = 64
    let region: SharedRegion
    /// Words: 0 blocked, 1 first step it applies from, 2 steps scanned, 3 entries,
    /// then 4 words per entry: process, site, object | key << 32, timeout.
    let words: UnsafeMutablePointer<UInt64>

    init() throws(IPCError) {
        region = try SharedRegion(size: (4 + 4 * Self.capacity) * 8)
        words = region.base.assumingMemoryBound(to: UInt64.self)
    }

    /// Before a run: the sleeping steps, from step `from` on.
    func prepare(_ entries: [StepFacts], from: Int) {
        words[0] = 0
        words[1] = UInt64(from)
        words[2] = UInt64(from)
        let n = min(entries.count, Self.capacity)
        words[3] = UInt64(n)
        for (i, e) in entries.prefix(n).enumerated() {
            let w = words + 4 + 4 * i
            w[0] = UInt64(e.process)
            w[1] = UInt64(e.site)
            w[2] = UInt64(e.object) | UInt64(e.key) << 32
            w[3] = e.timeout ? 1 : 0
        }
    }

    /// True when the last run stopped because every process that could go was asleep.
    var blocked: Bool { words[0] != 0 }

    func entry(_ i: Int) -> StepFacts {
        let w = words + 4 + 4 * i
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
            let s = StepFacts(steps[scanned])
            var i = 0
            while i < n {
                if StepDependence.dependent(entry(i), s) {
                    // Remove by moving the last entry here.
                    let last = words + 4 + 4 * (n - 1), here = words + 4 + 4 * i
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
        for i in 0..<n { asleep |= 1 << UInt64(words[4 + 4 * i] & 63) }
        func awake(_ p: Int) -> Bool { p >= 64 || asleep & (1 << UInt64(p)) == 0 }
        if let c = current, awake(c) { return c }
        if let p = ready.first(where: awake) { return p }
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
public struct ExhaustiveSearch {
    /// The preemption bound; nil: unbounded.
    public var preemptions: Int?
    /// Budgets of this call (a resumed search gets them afresh).
    public var runs: Int?
    public var timeLimit: Double?
    public var seed: UInt64 = 1
    /// Called after each schedule (schedules, current depth, elapsed seconds).
    public var progress: ((Int, Int, Double) -> Void)?

    public init() {}

    /// A point of the current execution: the state before step `index`.
    struct Node {
        var enabled: UInt64
        var chosen: Int
        var isChoice: Bool
        var backtrack: UInt64
        var done: UInt64
        /// Asleep on entering it (with the step each would make).
        var sleep: [StepFacts]
        /// The steps the processes explored from here made (for their later siblings' sleep sets).
        var explored: [StepFacts]
        var preemptionsBefore: Int
        var preempted: Bool

        var sleepMask: UInt64 { sleep.reduce(0) { $0 | bit($1.process) } }
    }

    /// Where a search stands: enough to go on with it later (`--resume`).
    public struct State {
        var nodes: [Node] = []
        public var schedules = 0
        var classes = Set<UInt64>()
        public var seconds = 0.0
        var started = false
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
    }

    static func bit(_ p: Int) -> UInt64 { p < 64 ? 1 << UInt64(p) : 0 }

    // MARK: Running

    /// Every schedule, without reduction (within the bound): what the search must match.
    /// For checking the reduction on small scripts (`explore --exhaustive --check-naive`).
    public func naive(_ explorer: Explorer) -> (schedules: Int, classes: Set<UInt64>) {
        var classes = Set<UInt64>()
        var stack: [[Int]] = [[]]
        var count = 0
        while let picks = stack.popLast() {
            let run = explorer.run(.directed(.end), seed: seed, decisions: Explorer.byIndex(picks))
            count += 1
            classes.insert(run.hash)
            var choice = 0
            var preempted = 0
            for (i, s) in run.steps.enumerated() {
                if s.isChoice {
                    if choice >= picks.count {
                        var others = s.readyMask & ~Self.bit(s.process)
                        while others != 0 {
                            let other = others.trailingZeroBitCount
                            others &= others - 1
                            let previous = i > 0 ? run.steps[i - 1].process : -1
                            let preempts = previous >= 0 && s.readyMask & Self.bit(previous) != 0 && other != previous
                            if preempted + (preempts ? 1 : 0) <= (preemptions ?? Int.max) {
                                stack.append(Array(run.picks.prefix(choice)) + [other])
                            }
                        }
                    }
                    choice += 1
                }
                if s.preempted { preempted += 1 }
            }
        }
        return (count, classes)
    }

    /// Searches from `state` (a fresh one, or one read back by `--resume`).
    public func search(_ explorer: Explorer, state: inout State) -> Result {
        guard let board = try? SleepBoard() else { return .diverged("cannot map the search's shared memory") }
        SleepBoard.current = board
        defer { SleepBoard.current = nil }
        let start = MonotonicClock.real()
        let before = state.seconds
        var ranHere = 0
        while true {
            let elapsed = before + Double(MonotonicClock.real() - start) / 1e9
            state.seconds = elapsed
            // The next schedule: the deepest point with a process left to explore.
            var branch: (index: Int, process: Int)?
            if state.started {
                for i in state.nodes.indices.reversed() {
                    let n = state.nodes[i]
                    let left = n.backtrack & ~n.done & ~n.sleepMask & n.enabled
                    if left != 0 { branch = (i, left.trailingZeroBitCount); break }
                }
                if branch == nil { return .complete }
            }
            if let runs, ranHere >= runs { return .stopped }
            if let timeLimit, Double(MonotonicClock.real() - start) / 1e9 >= timeLimit { return .stopped }
            var picks: [Int] = []
            var sleepAfter: [StepFacts] = []
            if let (i, p) = branch {
                state.nodes[i].done |= Self.bit(p)
                state.nodes.removeSubrange((i + 1)...)
                picks = state.nodes[..<i].filter(\.isChoice).map(\.chosen) + [p]
                if preemptions == nil {
                    sleepAfter = (state.nodes[i].sleep + state.nodes[i].explored).filter { $0.process != p }
                }
            }
            board.prepare(sleepAfter, from: branch?.index ?? 0)
            let run = explorer.run(.directed(.end), seed: seed, decisions: Explorer.byIndex(picks))
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
            let blocked = board.blocked
            if run.failed && !blocked { return .failed(run) }
            let complete = absorb(run, branch: branch, state: &state)
            if complete && !blocked { state.classes.insert(run.hash) }
            progress?(state.schedules, state.nodes.count, before + Double(MonotonicClock.real() - start) / 1e9)
        }
    }

    /// Takes a run in: rebuilds the points after the branch from its steps (with their
    /// sleep sets) and adds the backtrack points its races call for. False when the run
    /// went on into a sleeping process (what followed was explored already).
    func absorb(_ run: Explorer.Run, branch: (index: Int, process: Int)?, state: inout State) -> Bool {
        var facts = run.steps.map(StepFacts.init)
        StepDependence.linkSpawns(&facts)
        let from = branch?.index ?? 0
        var end = facts.count
        var sleep: [StepFacts] = []
        for k in from..<facts.count {
            let s = facts[k]
            if k == from, let b = branch {
                state.nodes[k].chosen = b.process
                state.nodes[k].explored.append(s)
                sleep = preemptions == nil ? (state.nodes[k].sleep + state.nodes[k].explored).filter { $0.process != s.process } : []
            } else {
                if sleep.contains(where: { $0.process == s.process }) {
                    // A process that is asleep made this step: not a new interleaving from here.
                    end = k
                    break
                }
                let previous = k > 0 ? state.nodes[k - 1] : nil
                state.nodes.append(Node(enabled: s.readyMask, chosen: s.process, isChoice: s.readyMask.nonzeroBitCount > 1,
                                        backtrack: Self.bit(s.process), done: Self.bit(s.process), sleep: sleep, explored: [s],
                                        preemptionsBefore: (previous?.preemptionsBefore ?? 0) + (previous?.preempted == true ? 1 : 0),
                                        preempted: run.steps[k].preempted))
            }
            state.nodes[k].preempted = run.steps[k].preempted
            sleep = sleep.filter { !StepDependence.dependent($0, s) }
        }
        // The whole run is a real execution: its races count even past a sleeping step
        // (only points up to there are kept).
        addBacktracks(facts, from: from, nodes: &state.nodes)
        return end == facts.count
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
            if StepDependence.isGlobal(s) {
                for p in 0..<width where p != q && lastStep[p] >= 0 { before.append(lastStep[p]) }
            } else {
                var touched: [(UInt32, Bool)] = [(StepDependence.resource(s), StepDependence.writes(s))]
                if s.spawned != 0 { touched.append((s.spawned, true)) }
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
            var touched: [(UInt32, Bool)] = [(StepDependence.resource(s), StepDependence.writes(s))]
            if s.spawned != 0 { touched.append((s.spawned, true)) }
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
        var initials: UInt64 = 0
        for (p, place) in firsts {
            let j = sequence[place]
            let preceded = sequence[..<place].contains { i in clock[j * width + facts[i].process] > Int32(i) }
            if !preceded { initials |= Self.bit(p) }
        }
        let possible = initials & node.enabled
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

// MARK: - Saving and resuming

extension ExhaustiveSearch.State {
    /// The state as text: a header line naming what it belongs to, the counts, the
    /// classes seen, then one line per point of the current execution.
    public func encoded(header: String) -> String {
        var out = "ipcplay-exhaustive 1\n\(header)\n"
        out += "schedules \(schedules) seconds \(seconds)\n"
        out += "classes " + classes.sorted().map { String($0, radix: 16) }.joined(separator: " ") + "\n"
        for n in nodes {
            var line = "node \(n.enabled) \(n.chosen) \(n.isChoice ? 1 : 0) \(n.backtrack) \(n.done) \(n.preemptionsBefore) \(n.preempted ? 1 : 0)"
            line += " |" + n.sleep.map(Self.encode).joined(separator: " ")
            line += " |" + n.explored.map(Self.encode).joined(separator: " ")
            out += line + "\n"
        }
        return out
    }

    static func encode(_ s: StepFacts) -> String { "\(s.process),\(s.site),\(s.object),\(s.key),\(s.timeout ? 1 : 0)" }

    static func decodeFacts(_ text: Substring) -> StepFacts? {
        let f = text.split(separator: ",")
        guard f.count == 5, let p = Int(f[0]), let site = Int(f[1]), let o = UInt32(f[2]), let k = UInt32(f[3]) else { return nil }
        return StepFacts(process: p, site: site, object: o, key: k, timeout: f[4] == "1", readyMask: 0)
    }

    /// Reads back what `encoded` wrote; nil when it is not such a state or belongs to
    /// another search (`header` differs).
    public init?(decoding text: String, header: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 4, lines[0] == "ipcplay-exhaustive 1", lines[1] == Substring(header) else { return nil }
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
            guard w.count == 8, w[0] == "node", let enabled = UInt64(w[1]), let chosen = Int(w[2]), let backtrack = UInt64(w[4]),
                  let done = UInt64(w[5]), let pre = Int(w[6]) else { return nil }
            let sleep = parts[1].split(separator: " ").compactMap(Self.decodeFacts)
            let explored = parts[2].split(separator: " ").compactMap(Self.decodeFacts)
            nodes.append(ExhaustiveSearch.Node(enabled: enabled, chosen: chosen, isChoice: w[3] == "1", backtrack: backtrack, done: done,
                                               sleep: sleep, explored: explored, preemptionsBefore: pre, preempted: w[7] == "1"))
        }
    }
}
