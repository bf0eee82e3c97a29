import CRuntimeShim
import CSystemShim
import Glibc
import IPCCore

/// How a controlled run is scheduled.
public struct ScheduleOptions: @unchecked Sendable {
    public enum Kind: Sendable, Equatable {
        case random
        /// PCT for bugs of depth `depth`, with change points among `steps` expected choices.
        case pct(depth: Int, steps: Int)
        /// Follow the log's decisions, then: no more (replay), ask, or random.
        case directed(DirectedScheduler.Then)
    }

    public var kind: Kind
    /// Seeds the strategy and every process's `math.random`.
    public var seed: UInt64
    /// A run longer than this fails as a livelock (nil: no limit).
    public var maxSteps: Int?
    /// Where the run's steps go, for the program that started it (explore, replay, step).
    public var log: ScheduleLog?
    /// `--kill N`: random and PCT may kill up to `count` processes, each killable step
    /// with probability `rate` (a directed run kills where its decisions say).
    public var kills = Kills.none

    public struct Kills: Sendable, Equatable {
        public var count: Int
        public var rate: Double
        public init(count: Int, rate: Double) {
            self.count = count
            self.rate = rate
        }
        public static let none = Kills(count: 0, rate: 0)
    }

    public init(kind: Kind, seed: UInt64, maxSteps: Int? = nil, log: ScheduleLog? = nil) {
        self.kind = kind
        self.seed = seed
        self.maxSteps = maxSteps
        self.log = log
    }
}

/// The machinery of a controlled run: exactly one process of the run executes at a
/// time. A process gives up its turn only at the gate (before each IPC call) or when a
/// call would wait; there the process holding the turn decides who makes the next step,
/// among those whose pending call can go ahead, with the run's strategy (`Scheduler`),
/// and hands the turn over in shared memory: a futex wake on that process's own word, no
/// round trip through the host.
///
/// - A process whose pending call would wait is *blocked* on the object it waits for;
///   a step that writes that object makes it a candidate again, and before the next
///   decision its condition is checked again, so the ready set is exact. The condition
///   is published as a *probe* (IPCCore's `Probe`: a test on a word of shared memory),
///   which the deciding process evaluates itself in its own mapping of that memory. Only
///   a condition with no probe, or on memory the decider does not map, is asked of the
///   blocked process: a *visit* (the turn handed over and back, its answer side-effect
///   free). Those are the waits on descriptors (pipe and socket receives and sends,
///   `ipc.wait` on several objects: their state is the kernel's, per descriptor), a
///   pipe end's receive (its buffered input is the receiver's own memory), and objects a
///   process made after the decider was forked, or received over a socket.
/// - Time is virtual: the clock moves only when no process can go, and then jumps to the
///   earliest deadline; that call times out.
/// - Nothing ready and no deadline: a deadlock. More steps than allowed: a livelock. A
///   decision of a replay that does not fit: a divergence. Each ends the run (status 124)
///   with a report.
public final class Schedule: GateHook, Blocking.Controller {
    /// This run's schedule (every process of a controlled run holds the same one).
    public internal(set) static var current: Schedule? { get { Execution.current.schedule } set { Execution.current.schedule = newValue } }

    let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_sched_header>
    let log: ScheduleLog?
    public let seed: UInt64
    let hostPid: Int32
    let socketKey = UInt32.max
    /// This process's spawn index.
    var me = 0
    /// True in a new child until its first step: the step was chosen by another process
    /// (which registered it); the child only waits for its turn to make it.
    var awaitingFirstTurn = false
    /// False with IPCPLAY_SCHED_NO_PROBES set: every recheck is a visit, as before probes
    /// (the tests check that both give the same runs).
    let evaluatesProbes = getenv("IPCPLAY_SCHED_NO_PROBES") == nil
    /// `chooseIfAnyLeft`'s ready list, kept between steps.
    var readyBuffer: [Int] = []
    static let magic: UInt64 = 0x6970_6373_6368_6564

    init(_ options: ScheduleOptions) throws(IPCError) {
        region = try SharedRegion(size: MemoryLayout<ipc_sched_header>.size)
        h = region.header(ipc_sched_header.self)
        log = options.log
        seed = options.seed
        hostPid = ProcessIdentity.pid
        h.pointee.max_steps = UInt64(options.maxSteps ?? Int.max)
        let strategy: Strategy
        switch options.kind {
        case .random: strategy = .random(RandomScheduler(seed: options.seed))
        case .pct(let depth, let steps): strategy = .pct(PCTScheduler(seed: options.seed, depth: depth, steps: steps))
        case .directed(let then): strategy = .directed(DirectedScheduler(then: then, seed: options.seed))
        }
        precondition(MemoryLayout<Strategy>.size <= Self.killPolicyOffset && MemoryLayout<KillPolicy>.size <= Int(IPC_SCHED_STRATEGY) - Self.killPolicyOffset)
        strategyPointer.initialize(to: strategy)
        killPolicyPointer.initialize(to: KillPolicy(seed: options.seed, kills: options.kills.count, rate: options.kills.rate))
        h.pointee.magic = Self.magic
    }

    var strategyPointer: UnsafeMutablePointer<Strategy> {
        (UnsafeMutableRawPointer(h) + MemoryLayout<ipc_sched_header>.offset(of: \.strategy)!).assumingMemoryBound(to: Strategy.self)
    }

    /// The kill policy shares the strategy's room, in its second half.
    static let killPolicyOffset = Int(IPC_SCHED_STRATEGY) / 2

    var killPolicyPointer: UnsafeMutablePointer<KillPolicy> {
        (UnsafeMutableRawPointer(strategyPointer) + Self.killPolicyOffset).assumingMemoryBound(to: KillPolicy.self)
    }

    /// Starts controlled scheduling in the host (before the script runs).
    static func start(_ options: ScheduleOptions, board: RunBoard) throws(IPCError) -> Schedule {
        let s = try Schedule(options)
        current = s
        // One process runs at a time: on one CPU, handing the turn over wakes a process
        // where the waker runs, not on another CPU (a cross-CPU wake-up costs an
        // interrupt, dear in a virtual machine). Explore runs 10-20% faster so.
        _ = ipc_pin_to_current_cpu()
        Blocking.controller = s
        MonotonicClock.virtual = UnsafeMutableRawPointer(s.h).advanced(by: MemoryLayout<ipc_sched_header>.offset(of: \.now)!)
            .assumingMemoryBound(to: UInt64.self)
        // The one clock reads the schedule's time and steps (a trace's time: see `traceNanoseconds`).
        MonotonicClock.steps = UnsafeMutableRawPointer(s.h).advanced(by: MemoryLayout<ipc_sched_header>.offset(of: \.steps)!)
            .assumingMemoryBound(to: UInt64.self)
        Trace.step = { [h = s.h] in Int64(ipc_load64(&h.pointee.steps)) }
        s.register(0, name: "MainProcess", object: .none)
        s.proc(0).pointee.pid = UInt32(bitPattern: ProcessIdentity.pid)
        s.watchChildren()
        ipc_store32(&s.h.pointee.turn, 0)
        return s
    }

    // MARK: - Processes

    @inline(__always)
    func proc(_ i: Int) -> UnsafeMutablePointer<ipc_sched_process> {
        let base = UnsafeMutableRawPointer(h) + MemoryLayout<ipc_sched_header>.offset(of: \.processes)!
        return base.assumingMemoryBound(to: ipc_sched_process.self) + i
    }

    var count: Int { Int(h.pointee.count) }

    func name(of p: Int) -> String { loadName(from: &proc(p).pointee.name, capacity: Int(IPC_NAME_CAP)) }

    /// A process joins the run, ready to make its start step.
    func register(_ i: Int, name: String, object: ObjectRef) {
        let p = proc(i)
        storeName(name, into: &p.pointee.name, capacity: Int(IPC_NAME_CAP))
        p.pointee.site = UInt32(CallSite.processStart.id)
        p.pointee.object = object.id
        storeName(object.name, into: &p.pointee.object_name, capacity: Int(IPC_NAME_CAP))
        p.pointee.key = 0
        p.pointee.deadline = -1
        p.pointee.blocking = 0
        p.pointee.in_core = 0
        p.pointee.steps_made = 0
        p.pointee.has_probe = 0
        p.pointee.where.0 = 0
        ipc_store32(&p.pointee.state, UInt32(IPC_SCHED_READY))
        h.pointee.count = UInt32(max(count, i + 1))
        var context = SchedulerContext(schedule: self, last: me, current: nil, yielding: false)
        strategyPointer.pointee.added(i, &context)
        log?.setProcessName(i, name)
        log?.h.pointee.processes = UInt32(count)
    }

    /// The parent, before forking process `child`.
    func willFork(child: Int, name: String, object: UInt32) {
        register(child, name: name, object: ObjectRef(id: object, kind: .process, name: name))
    }

    /// Before anything of a fork: a run past the schedule's room ends, with a usage error's
    /// status (2), as every limit does.
    func checkRoom(for child: Int) {
        guard child >= Int(IPC_SCHED_PROCESSES) else { return }
        fail(.error, "a controlled run holds at most \(IPC_SCHED_PROCESSES) processes; this script starts more", status: 2)
    }

    /// The parent, once the fork returned: the child's pid is known before the parent's next
    /// step, so that a kill decided at any later step finds it (the child writes it too).
    func forked(child: Int, pid: Int32) { proc(child).pointee.pid = UInt32(bitPattern: pid) }

    func forkFailed(child: Int) { ipc_store32(&proc(child).pointee.state, UInt32(IPC_SCHED_ENDED)) }

    /// In the new child, first thing.
    func becomeChild(index: Int) {
        me = index
        awaitingFirstTurn = true
        proc(index).pointee.pid = UInt32(bitPattern: ProcessIdentity.pid)
        proc(index).pointee.child_died = 0
        watchChildren()
    }

    /// A child's exit wakes this process where it waits for its turn.
    func watchChildren() { ipc_set_child_notice(&proc(me).pointee.word, &proc(me).pointee.child_died) }

    /// The seed of `math.random` in the process named `name`.
    public func randomSeed(for name: String) -> UInt64 { fnv1a(name, seed: seed ^ 0x6d61_7468) }

    /// True once process `i` has made its end step (or was killed).
    public func hasEnded(_ i: Int) -> Bool { ipc_load32(&proc(i).pointee.state) == IPC_SCHED_ENDED }

    /// Process `i` is about to be killed: it makes no further step.
    func willEnd(_ i: Int) {
        ipc_store32(&proc(i).pointee.state, UInt32(IPC_SCHED_ENDED))
        markRechecks(0)
    }

    /// The host is ending the run after an error: nothing is scheduled any more.
    func abandon() { h.pointee.over = 1 }

    // MARK: - The gate

    public func before(_ call: GateCall, wouldBlock: () -> Bool) {
        if awaitingFirstTurn {
            // A new child's first step: its parent registered it; it waits for its turn.
            awaitingFirstTurn = false
            _ = waitForTurn(probe: { true })
            return
        }
        let p = proc(me)
        p.pointee.site = UInt32(call.site.id)
        p.pointee.object = call.object.id
        storeName(call.object.name, into: &p.pointee.object_name, capacity: Int(IPC_NAME_CAP))
        p.pointee.key = key(call.object)
        p.pointee.deadline = call.deadline.instant ?? -1
        p.pointee.in_core = 0
        let blocking = call.site.blocking && !call.deadline.hasExpired
        p.pointee.blocking = blocking ? 1 : 0
        // A call found to wait says who holds what it waits for (the deadlock's cycle).
        func waits() -> Bool {
            let w = wouldBlock()
            if w { HangBoard.publishAwaited() }
            return w
        }
        Blocking.declaredProbe = nil
        let blocked = blocking && waits()
        publish(blocking ? Blocking.takeDeclaredProbe() : nil)
        if blocked || log?.keepsLocations == true { storeName(Runtime.this.location, into: &p.pointee.where, capacity: Int(IPC_WHERE_CAP)) }
        ipc_store32(&p.pointee.state, UInt32(blocked ? IPC_SCHED_BLOCKED : IPC_SCHED_READY))
        _ = yieldTurn(probe: { !waits() })
    }

    public func after(_ call: GateCall, _ result: CallResult) {
        let p = proc(me)
        if call.site == .processEnd {
            ipc_flush_all()
            Trace.flush()
            // A child's end step lasts until the kernel has ended it: only then are the locks
            // it still holds free for the next acquire to take over, so the next decision
            // waits for its death (its heir makes it), and every run takes them over at the
            // same step. The host is not gone until it tears the run down.
            if me != 0, let heir = (0..<count).first(where: { isLive($0) && $0 != me }) {
                ipc_store32(&p.pointee.state, UInt32(IPC_SCHED_EXITING))
                give(to: heir, visit: UInt32(IPC_VISIT_SUCCEED))
                return
            }
            ipc_store32(&p.pointee.state, UInt32(IPC_SCHED_ENDED))
            markRechecks(0)
            if let (next, visit) = chooseIfAnyLeft() { give(to: next, visit: visit) } else { printStatistics() }
            return
        }
        if call.site.access == .write { markRechecks(key(call.object)) }
        // An explicit yield: a call that could not wait (timeout 0, or a nowait form) and
        // found nothing to do, as a poll in a loop does. Nothing else is one: an ordinary
        // read, even of one value twice, is a step like any other (PCT's bound needs it).
        var yielding = false
        if case .fell(let why) = result.outcome, why != "closed", p.pointee.blocking == 0 { yielding = true }
        p.pointee.yielding = yielding ? 1 : 0
    }

    /// What a wait on `object` depends on: itself, or all the run's sockets (whose peers
    /// the run cannot tell apart), or anything (a wait on several objects).
    func key(_ object: ObjectRef) -> UInt32 {
        object.kind?.record.hasUnknownPeers == true ? socketKey : object.key
    }

    // MARK: - Waiting inside a call

    /// Instead of sleeping in the kernel: the call waits for its condition, handing the
    /// turn to another process until a step may have changed it or the deadline comes.
    public func park(until ready: () -> Bool, probe: Probe?, deadline: Deadline) -> Bool {
        if ready() { return true }
        if deadline.hasExpired { return false }
        guard ipc_load32(&h.pointee.turn) == UInt32(me) else { return ready() }  // not a process of the run
        let p = proc(me)
        // The call may have changed its object before waiting (a condition releases its
        // lock, a barrier counts an arrival): whoever waits on it may go now.
        if let call = Gate.current {
            if call.site.access == .write { markRechecks(key(call.object)) }
            p.pointee.key = key(call.object)
        } else {
            p.pointee.key = 0
        }
        p.pointee.deadline = deadline.instant ?? -1
        p.pointee.blocking = 1
        p.pointee.in_core = 1
        publish(probe)
        storeName(Runtime.this.location, into: &p.pointee.where, capacity: Int(IPC_WHERE_CAP))
        ipc_store32(&p.pointee.state, UInt32(IPC_SCHED_BLOCKED))
        let visit = yieldTurn(probe: ready)
        p.pointee.in_core = 0
        return visit == IPC_VISIT_RUN
    }

    // MARK: - Deciding

    /// At a decision point of the process holding the turn: choose who makes the next
    /// step; unless it is this process, hand the turn over and wait until this process is
    /// chosen. Returns the visit with which it goes on (run, or timeout).
    /// When this process goes on, that is all: a few loads and stores, no syscall.
    func yieldTurn(probe: () -> Bool) -> UInt32 {
        let (next, visit) = withoutActuallyEscaping(probe) { choose(probe: $0) }
        if next == me { return visit }
        ipc_flush_all()  // output in step order: this process's, before the next one's
        Trace.flush()
        return handOver(to: next, visit: visit, probe: probe)
    }

    /// Chooses the process that makes the next step, and logs the step. Ends the run on a
    /// deadlock, a livelock or a divergence.
    func choose(probe: (() -> Bool)? = nil) -> (process: Int, visit: UInt32) {
        guard let c = chooseIfAnyLeft(probe: probe) else {
            fail(.deadlock, "every process has ended")
        }
        return c
    }

    /// A process of the run that has not ended (it may be waiting).
    func isLive(_ q: Int) -> Bool {
        let state = ipc_load32(&proc(q).pointee.state)
        return state == IPC_SCHED_READY || state == IPC_SCHED_BLOCKED || state == IPC_SCHED_RECHECK
    }

    /// The heir of processes that made their end step: waits until the kernel has ended
    /// them (their robust locks are then marked as a dead holder's), marks them ended, and
    /// makes the decision they would have made. `probe` answers for this process's own
    /// pending call, which a death may have unblocked.
    func succeed(probe: () -> Bool) -> (process: Int, visit: UInt32) {
        var last = me
        for q in 0..<count where ipc_load32(&proc(q).pointee.state) == IPC_SCHED_EXITING {
            ProcessControl.awaitEnd(Int32(bitPattern: proc(q).pointee.pid))
            ipc_store32(&proc(q).pointee.state, UInt32(IPC_SCHED_ENDED))
            last = q
        }
        markRechecks(0)
        let p = proc(me)
        if ipc_load32(&p.pointee.state) == IPC_SCHED_BLOCKED || p.pointee.blocking != 0 {
            ipc_store32(&p.pointee.state, UInt32(probe() ? IPC_SCHED_READY : IPC_SCHED_BLOCKED))
        }
        return withoutActuallyEscaping(probe) { chooseIfAnyLeft(last: last, probe: $0) } ?? (me, UInt32(IPC_VISIT_RUN))
    }

    /// `choose`, or nil when every process has ended. `last` made the last step (the
    /// deciding process, unless it decides for a process that ended). `probe` answers for
    /// the deciding process's own pending call (nil: it has none), which a kill may unblock.
    func chooseIfAnyLeft(last: Int? = nil, probe: (() -> Bool)? = nil) -> (process: Int, visit: UInt32)? {
        let last = last ?? me
        resolveRechecks()
        let now = Int64(bitPattern: ipc_load64(&h.pointee.now))
        // The ready list reuses this process's buffer (no allocation at each step).
        var ready = readyBuffer
        readyBuffer = []
        ready.removeAll(keepingCapacity: true)
        defer { readyBuffer = ready }
        var earliest: (process: Int, deadline: Int64)?
        var live = 0
        for q in 0..<count {
            let p = proc(q)
            switch Int(ipc_load32(&p.pointee.state)) {
            case Int(IPC_SCHED_READY):
                ready.append(q)
                live += 1
            case Int(IPC_SCHED_BLOCKED):
                live += 1
                let d = p.pointee.deadline
                if d >= 0 && d <= now { ready.append(q) }  // its time has come: it times out
                if d >= 0 && (earliest == nil || d < earliest!.deadline) { earliest = (q, d) }
            default:
                break
            }
        }
        if live == 0 { return nil }
        if ready.isEmpty {
            guard let e = earliest else {
                publishHoldersOfBlocked(probe: probe)
                fail(.deadlock, nil)
            }
            // Nobody can go: the clock jumps to the earliest deadline.
            ipc_store64(&h.pointee.now, UInt64(e.deadline))
            ready = [e.process]
        }
        let lastReady = ready.contains(last)
        var chosen = ready[0]
        if ready.count > 1 {
            let yielding = proc(last).pointee.yielding != 0
            proc(last).pointee.yielding = 0
            var context = SchedulerContext(schedule: self, last: last, current: lastReady ? last : nil, yielding: yielding)
            guard let pick = strategyPointer.pointee.pick(ready, &context) else {
                fail(.diverged, log?.divergence)
            }
            chosen = pick
            h.pointee.choices += 1
            log?.h.pointee.choices = h.pointee.choices
        }
        let p = proc(chosen)
        if killable(chosen) {
            let context = SchedulerContext(schedule: self, last: last, current: lastReady ? last : nil, yielding: false)
            if strategyPointer.pointee.kills(chosen, &killPolicyPointer.pointee, context) {
                logStep(chosen, ready: ready, preempted: lastReady && chosen != last && ready.count > 1, flags: 4)
                return killProcess(chosen, probe: probe)
            }
        }
        let timedOut = ipc_load32(&p.pointee.state) == IPC_SCHED_BLOCKED
        let visit = UInt32(timedOut ? IPC_VISIT_TIMEOUT : IPC_VISIT_RUN)
        logStep(chosen, ready: ready, preempted: lastReady && chosen != last && ready.count > 1,
                flags: (timedOut ? 1 : 0) | (p.pointee.in_core != 0 ? 2 : 0))
        return (chosen, visit)
    }

    /// Counts a step of `chosen` and logs it (`flags`: the record's `timeout` bits).
    func logStep(_ chosen: Int, ready: [Int], preempted: Bool, flags: UInt8) {
        let p = proc(chosen)
        if flags & 4 == 0 { p.pointee.steps_made += 1 }
        let steps = h.pointee.steps + 1
        h.pointee.steps = steps
        if steps > h.pointee.max_steps {
            fail(.livelock, "the run passed \(h.pointee.max_steps) steps (--max-steps): a livelock, or a longer run than allowed")
        }
        if let log {
            var record = ipc_step_record()
            record.process = UInt32(chosen)
            record.site = p.pointee.site
            record.object = p.pointee.object
            record.key = p.pointee.key
            record.ready = UInt16(clamping: ready.count)
            record.ready_mask = ready.reduce(0) { $1 < 64 ? $0 | (1 << UInt64($1)) : $0 }
            record.preempted = preempted ? 1 : 0
            record.timeout = flags
            let location = log.keepsLocations ? loadName(from: &p.pointee.where, capacity: Int(IPC_WHERE_CAP)) : nil
            if !log.append(record, location: location, objectName: &p.pointee.object_name) {
                fail(.livelock, "the run passed the log's \(log.capacity) steps")
            }
        }
    }

    // MARK: - Kills (--kill)

    /// Whether the step of `chosen` may be a kill: never the main process; nor the deciding
    /// process itself when no other process is left to take the turn over from it.
    func killable(_ chosen: Int) -> Bool {
        guard chosen != 0 else { return false }
        return chosen != me || (0..<count).contains { isLive($0) && $0 != me }
    }

    /// Kills `chosen` before its pending call takes effect, as `p:kill()` does: it makes no
    /// further step, and it is gone (the kernel has freed what it held: its robust locks are
    /// a dead holder's) before the next decision, which is then made as after any end. A
    /// process killed while waiting is killed in its wait.
    func killProcess(_ chosen: Int, probe: (() -> Bool)?) -> (process: Int, visit: UInt32)? {
        let pid = Int32(bitPattern: proc(chosen).pointee.pid)
        precondition(pid > 0, "a process of the run without a pid")
        if chosen != me {
            willEnd(chosen)
            _ = Glibc.kill(pid, SIGKILL)
            ProcessControl.awaitEnd(pid)
            // The death may let the decider's own pending call go (a join on the killed one).
            let p = proc(me)
            if let probe, ipc_load32(&p.pointee.state) == IPC_SCHED_BLOCKED || p.pointee.blocking != 0 {
                ipc_store32(&p.pointee.state, UInt32(probe() ? IPC_SCHED_READY : IPC_SCHED_BLOCKED))
            }
            return chooseIfAnyLeft(last: chosen, probe: probe)
        }
        // The deciding process itself: as at an end step, an heir waits for its death and
        // decides in its place.
        let heir = (0..<count).first { isLive($0) && $0 != me }!
        ipc_flush_all()  // what it printed before this step stays printed
        Trace.flush()
        ipc_store32(&proc(me).pointee.state, UInt32(IPC_SCHED_EXITING))
        give(to: heir, visit: UInt32(IPC_VISIT_SUCCEED))
        _ = Glibc.kill(pid, SIGKILL)
        while true { pause() }
    }

    /// A deadlock's cycle needs each blocked process to say who holds what it waits for. It
    /// says so when its call is found to wait at its own gate; one found blocked later, by a
    /// probe evaluated here, never did: each blocked process is visited once now (the run
    /// ends with this deadlock, so the visits cost nothing on the way, and they change
    /// nothing a script can see).
    func publishHoldersOfBlocked(probe: (() -> Bool)?) {
        _ = probe?()  // this process's own pending call
        for q in 0..<count where q != me && ipc_load32(&proc(q).pointee.state) == IPC_SCHED_BLOCKED {
            h.pointee.prober = UInt32(me)
            _ = handOver(to: q, visit: UInt32(IPC_VISIT_PROBE), probe: { true })
        }
    }

    /// Every process that may have been unblocked by a step: its probe is evaluated here;
    /// one without a probe this process can evaluate is asked, in turn (a visit), whether
    /// its pending call can go now.
    func resolveRechecks() {
        for q in 0..<count where q != me && ipc_load32(&proc(q).pointee.state) == IPC_SCHED_RECHECK {
            if evaluatesProbes, let ready = evaluateProbe(of: q) {
                ipc_store32(&proc(q).pointee.state, UInt32(ready ? IPC_SCHED_READY : IPC_SCHED_BLOCKED))
                continue
            }
            h.pointee.prober = UInt32(me)
            h.pointee.visits += 1
            _ = handOver(to: q, visit: UInt32(IPC_VISIT_PROBE), probe: { true })
        }
    }

    /// With IPCPLAY_SCHED_STATS set, the run's last step prints what the scheduling cost
    /// (for docs/performance.md): steps, handoffs to another process, visits.
    func printStatistics() {
        guard getenv("IPCPLAY_SCHED_STATS") != nil else { return }
        Runtime.writeStderr("ipcplay: sched: \(h.pointee.steps) steps, \(h.pointee.handoffs) handoffs, \(h.pointee.visits) visits\n")
    }

    // MARK: - Probes

    /// Publishes this process's pending wait's probe (nil: it has none; a word outside
    /// the shared regions this process knows: none either), for the decider to evaluate.
    func publish(_ probe: Probe?) {
        let p = proc(me)
        p.pointee.has_probe = 0
        guard let probe else { return }
        var n: UInt32 = 0
        // Clause by clause, with no array made: this runs at every call that can wait.
        func add(_ clause: Probe.Clause?) -> Bool {
            guard let clause else { return true }
            guard let (region, offset) = SharedRegion.identify(clause.word) else { return false }
            let c = ipc_sched_probe_clause(region: region, offset: UInt64(offset), mask: clause.mask, value: clause.value,
                                           test: UInt32(clause.test.rawValue), wide: clause.wide ? 1 : 0)
            withUnsafeMutableBytes(of: &p.pointee.probe) { $0.bindMemory(to: ipc_sched_probe_clause.self)[Int(n)] = c }
            n += 1
            return true
        }
        guard add(probe.first), add(probe.second) else { return }
        p.pointee.probe_clauses = n
        p.pointee.has_probe = 1
    }

    /// Whether process `q`'s pending call can go now, from its probe, evaluated in this
    /// process's mappings; nil when only a visit can tell.
    func evaluateProbe(of q: Int) -> Bool? {
        let p = proc(q)
        guard p.pointee.has_probe != 0 else { return nil }
        let clauses = Int(p.pointee.probe_clauses)
        return withUnsafeBytes(of: &p.pointee.probe) { raw -> Bool? in
            let all = raw.bindMemory(to: ipc_sched_probe_clause.self)
            for i in 0..<clauses {
                let c = all[i]
                guard let word = SharedRegion.locate(c.region, offset: Int(c.offset)),
                      let test = Probe.Test(rawValue: UInt8(truncatingIfNeeded: c.test)) else { return nil }
                let clause = Probe.Clause(word: word, wide: c.wide != 0, mask: c.mask, test: test, value: c.value)
                if clause.holds { return true }
            }
            return false
        }
    }

    /// Ready when process `i` has ended (a join's probe: the schedule's own memory, which
    /// every process of the run maps).
    public func endedProbe(_ i: Int) -> Probe { Probe(&proc(i).pointee.state, .equal, UInt32(IPC_SCHED_ENDED)) }

    /// After a step that wrote the object with `key` (0: anything): the processes whose
    /// wait depends on it are asked again before the next decision.
    func markRechecks(_ key: UInt32) {
        for q in 0..<count where q != me {
            let p = proc(q)
            let state = ipc_load32(&p.pointee.state)
            guard state == IPC_SCHED_BLOCKED || (state == IPC_SCHED_READY && p.pointee.blocking != 0) else { continue }
            if key == 0 || p.pointee.key == 0 || p.pointee.key == key {
                ipc_store32(&p.pointee.state, UInt32(IPC_SCHED_RECHECK))
            }
        }
    }

    // MARK: - Handing the turn over

    /// Gives the turn to `q` for `visit` (a futex wake on q's own word).
    func give(to q: Int, visit: UInt32) {
        let p = proc(q)
        h.pointee.handoffs += 1
        p.pointee.visit = visit
        ipc_store32(&h.pointee.turn, UInt32(q))
        _ = ipc_add32(&p.pointee.word, 1)
        Futex.wake(&p.pointee.word, count: 1)
        // A signal may have ended it meanwhile (its parent marks it ended, then claims the
        // turn from it): whichever of the two claims the turn decides in its place.
        if ipc_load32(&p.pointee.state) == IPC_SCHED_ENDED { claimTurn(from: q) }
    }

    /// The turn sits with `q`, which a signal ended: this process takes it and decides in
    /// its place (a visit to itself). One claim wins, whoever else tries.
    func claimTurn(from q: Int) {
        var expected = UInt32(q)
        guard q != me, ipc_cas32(&h.pointee.turn, &expected, UInt32(me)) != 0 else { return }
        let p = proc(me)
        p.pointee.visit = UInt32(IPC_VISIT_SUCCEED)
        _ = ipc_add32(&p.pointee.word, 1)
    }

    /// A child of this process exited (SIGCHLD told it). One that ends without its end step
    /// was ended by a signal (`kill -9` from outside, or from itself through `os.execute`):
    /// it is marked ended, and if the turn was with it, this process decides in its place,
    /// so the run goes on as after `p:kill()`.
    func noticeDeadChildren() {
        ipc_store32(&proc(me).pointee.child_died, 0)
        for child in Runtime.this.children {
            let q = child.spawnIndex
            guard q > 0, q < count, isLive(q), ProcessControl.hasExited(child.pid) else { continue }
            ipc_store32(&proc(q).pointee.state, UInt32(IPC_SCHED_ENDED))
            claimTurn(from: q)
        }
    }

    /// Gives the turn to `q` and waits until it comes back. Returns the visit it came back
    /// with: run or timeout (this process was chosen), or answer (a probe was answered).
    func handOver(to q: Int, visit: UInt32, probe: () -> Bool) -> UInt32 {
        let seen = ipc_load32(&proc(me).pointee.word)
        give(to: q, visit: visit)
        return waitForTurn(probe: probe, seen: seen)
    }

    /// Waits for the turn. While waiting, answers probes with `probe`.
    func waitForTurn(probe: () -> Bool, seen initial: UInt32? = nil) -> UInt32 {
        let p = proc(me)
        var seen = initial ?? ipc_load32(&p.pointee.word)
        if initial == nil && ipc_load32(&h.pointee.turn) == UInt32(me) { return p.pointee.visit }
        while true {
            while ipc_load32(&p.pointee.word) == seen {
                if ipc_load32(&p.pointee.child_died) != 0 { noticeDeadChildren(); continue }
                _ = Futex.wait(&p.pointee.word, expected: seen, deadline: .never)
            }
            seen = ipc_load32(&p.pointee.word)
            if ipc_load32(&p.pointee.child_died) != 0 { noticeDeadChildren() }
            // The word also moves when a child exits; only a turn handed over is a visit.
            guard ipc_load32(&h.pointee.turn) == UInt32(me) else { continue }
            let visit = p.pointee.visit
            if visit == IPC_VISIT_SUCCEED {
                let (next, v) = succeed(probe: probe)
                if next == me { return v }
                seen = ipc_load32(&p.pointee.word)  // the probes of `succeed` moved it
                give(to: next, visit: v)
                continue
            }
            if visit != IPC_VISIT_PROBE { return visit }
            // A probe: can the pending call go now? Then the turn goes back to the prober.
            ipc_store32(&p.pointee.state, UInt32(probe() ? IPC_SCHED_READY : IPC_SCHED_BLOCKED))
            give(to: Int(h.pointee.prober), visit: UInt32(IPC_VISIT_ANSWER))
        }
    }

    // MARK: - Step mode

    /// Asks the person at `ipcplay step` which of `ready` makes the next step; -1: random
    /// for the rest.
    func ask(_ ready: [Int]) -> Int {
        guard let log else { return ready[0] }
        let c = log.h
        var choice = ipc_step_choice()
        let offered = ready.prefix(Int(IPC_STEP_CHOICES))
        withUnsafeMutableBytes(of: &c.pointee.choices_offered) { raw in
            let slots = raw.bindMemory(to: ipc_step_choice.self)
            for (i, q) in offered.enumerated() {
                let p = proc(q)
                choice.process = UInt32(q)
                choice.site = p.pointee.site
                withUnsafeMutableBytes(of: &choice.name) { $0.copyMemory(from: UnsafeRawBufferPointer(start: &p.pointee.name, count: Int(IPC_NAME_CAP))) }
                withUnsafeMutableBytes(of: &choice.object) { $0.copyMemory(from: UnsafeRawBufferPointer(start: &p.pointee.object_name, count: Int(IPC_NAME_CAP))) }
                withUnsafeMutableBytes(of: &choice.where) { $0.copyMemory(from: UnsafeRawBufferPointer(start: &p.pointee.where, count: Int(IPC_WHERE_CAP))) }
                slots[i] = choice
            }
        }
        c.pointee.choice_count = UInt32(offered.count)
        let seen = ipc_load32(&c.pointee.answer)
        _ = ipc_add32(&c.pointee.request, 1)
        var byte: UInt8 = 1
        _ = Syscall.glibc("write") { write(c.pointee.request_fd, &byte, 1) }
        while ipc_load32(&c.pointee.answer) == seen {
            _ = Futex.wait(&c.pointee.answer, expected: seen, deadline: .never)
        }
        return Int(c.pointee.choice)
    }

    // MARK: - Failing

    /// Ends the run: reports `outcome` (and what every process waits for), then has the
    /// host end the run as a reported deadlock ends it (status 124).
    func fail(_ outcome: RunReport.Outcome, _ message: String?, status: UInt32 = 124) -> Never {
        h.pointee.over = 1
        if let board = RunBoard.current { board.header.pointee.end_status = status }
        if let log {
            for q in 0..<count where ipc_load32(&proc(q).pointee.state) != IPC_SCHED_ENDED {
                let p = proc(q)
                log.setPending(q, site: p.pointee.site, object: p.pointee.object, objectName: &p.pointee.object_name, location: &p.pointee.where)
            }
        }
        var report = RunReport(outcome)
        let headline: String
        switch outcome {
        case .deadlock where message == nil:
            headline = Supervisor.deadlockHeadline
            report.blocked = waitingEntries()
            report.cycle = WaitForGraph.cycleLine(report.blocked)
        case .diverged:
            headline = "ipcplay: replay diverged at step \(h.pointee.steps + 1): \(message ?? "")"
            report.messages = [headline]
        default:
            headline = "ipcplay: \(outcome.rawValue): \(message ?? "")"
            report.messages = [message ?? outcome.rawValue]
            report.blocked = waitingEntries()
        }
        ipc_flush_all()
        Trace.flush()
        Runtime.writeStderr(Supervisor.deadlockReport(report, headline: headline))
        Runtime.report(Runtime.namedByCause(report))
        kill(hostPid, SIGUSR2)  // the host ends the run (when this is the host: now)
        while true { pause() }
    }

    /// What each live process waits for, from the schedule, with who holds it from the
    /// board (no pids: the same on a replay).
    func waitingEntries() -> [BlockedProcess] {
        let board = RunBoard.current
        let live = board?.snapshot() ?? []
        return (0..<count).compactMap { q in
            let p = proc(q)
            let state = ipc_load32(&p.pointee.state)
            guard state != IPC_SCHED_NONE && state != IPC_SCHED_ENDED && state != IPC_SCHED_EXITING else { return nil }
            let site = CallSite.all.indices.contains(Int(p.pointee.site)) ? CallSite.all[Int(p.pointee.site)].name : "?"
            let waits = state != IPC_SCHED_READY
            let pid = Int32(bitPattern: p.pointee.pid)
            let awaited = live.first { $0.pid == pid }?.awaited ?? .unknown
            let holders = waits ? (board?.holders(awaited, among: live) ?? []) : []
            return BlockedProcess(name: name(of: q), state: waits ? .blocked : .aboutToCall, call: site,
                                  object: loadName(from: &p.pointee.object_name, capacity: Int(IPC_NAME_CAP)),
                                  location: loadName(from: &p.pointee.where, capacity: Int(IPC_WHERE_CAP)),
                                  holders: holders.map { BlockedProcess.Holder(name: $0.name, pid: nil) })
        }
    }
}
