import CRuntimeShim
import IPCCore

/// What a step is, for the dependency relation: who made it, which call, on what.
public struct StepFacts: Sendable, Equatable {
    public var process: Int
    public var site: Int
    public var object: UInt32
    /// The object its wait and its effects depend on (a condition's lock; one key for every
    /// socket); 0: its object.
    public var key: UInt32
    /// A wait that ended by its deadline: the virtual clock moved.
    public var timeout: Bool
    /// Which processes could have made it (the enabled set before it).
    public var readyMask: UInt64
    /// Set on the step during which a process was spawned: that process's object (the
    /// spawn writes it, as the process's start does).
    public var spawned: UInt32 = 0
    /// It resumes a call that waited inside (a condition's or a barrier's wait).
    public var resumed = false
    /// Not the call: the process was killed before it (`--kill`). `site` and `object` are
    /// the call it did not make.
    public var killed = false
    /// For a kill: what the death changes (`StepDependence.linkKills`): the process's own
    /// object and the objects it touched whose state a death changes (locks it may hold,
    /// conditions, barriers, pipes and sockets).
    public var footprint: [UInt32] = []
}

// In an extension, so that the memberwise initializer (process, site, object, key,
// timeout, readyMask; the rest defaulted) stays: this module's steps are made with it.
extension StepFacts {
    init(_ r: ipc_step_record) {
        self.init(process: Int(r.process), site: Int(r.site), object: r.object, key: r.key, timeout: r.timeout & 1 != 0,
                  readyMask: r.ready_mask)
        resumed = r.timeout & 2 != 0
        killed = r.timeout & 4 != 0
    }

    public init(_ s: ScheduleLog.Step) {
        self.init(process: s.process, site: s.site, object: s.object, key: s.key, timeout: s.timeout, readyMask: s.readyMask)
        resumed = s.resumed
        killed = s.killed
    }
}

/// The dependency relation of the contract (v3), derived from the gate's declarations
/// alone: two steps of different processes are dependent when they touch the same object
/// and at least one of them changes it (`Access.write`); reads commute with reads.
///
/// - "The same object" is the object the scheduler keys waits on: a condition's lock (a
///   condition made on a lock shares it with the lock's own calls), one key for every
///   socket (a send on one end wakes the other end's receiver), else the object itself.
/// - Process life cycle: the spawn of P (the step during which P was registered), P's
///   start, P's end, a join of P and the reads of P's fields are all on P's object, so the
///   same rule orders them.
/// - Module calls with no object (`ipc.queue`, `ipc.spawn`, `ipc.now`) share object 0:
///   constructors hand out object ids and spawn indices in order, so they change it.
/// - Conservative where virtual time is involved: a step that timed out (the clock moved
///   because no process could go) and a wait on no single object (`ipc.sleep`,
///   `ipc.wait` on several objects) depend on every step of every other process.
/// - A kill of P (`--kill`) is a step of P that writes what P's death changes, as the
///   runtime's dead-holder rules define it: P's own object (`join`, `is_alive`,
///   `exitcode`), every object P touched whose state a death changes (a lock or rlock it
///   may hold, a condition it waits on, a barrier it arrived at; not values, arrays,
///   queues, events or semaphores, which keep no holder), and the ends of every pipe and
///   socket (P may hold an end it never used: its death can close the last writer). It
///   commutes with the rest, so kill points of P between steps that do not touch any of
///   that are one interleaving. The call it was killed before never took effect: it
///   touches nothing else.
public enum StepDependence {
    /// The pseudo-object of pipe and socket ends: every call on a connection or a socket
    /// reads it, a kill writes it.
    public static let ends = UInt32.max

    /// Per site: bit 0, a call on a pipe or a socket (its result depends on which
    /// processes still hold ends); bit 1, a call on an object whose state a death changes.
    /// Kept in the execution context, made at the first use.
    static var siteClasses: [UInt8] {
        get { Execution.current.siteClasses ?? [] }
        set { Execution.current.siteClasses = newValue }
    }

    static func siteClass(_ site: Int) -> UInt8 {
        if siteClasses.count != CallSite.all.count {
            siteClasses = CallSite.all.map { traits in
                let kind = traits.name.prefix { $0 != ":" && $0 != " " && $0 != "." }
                let ends: Set<Substring> = ["connection", "server", "socket", "dgram"]
                // Objects that keep no holder: a death before a call leaves them as they
                // were. A value's or an array's own lock (`value:lock`) has one.
                let keepNoHolder: Set<Substring> = ["value", "array", "queue", "joinable_queue", "event", "semaphore", "bounded_semaphore", "ipc"]
                let holder = !keepNoHolder.contains(kind) || traits.name.dropFirst(kind.count).contains("lock")
                return (ends.contains(kind) ? 1 : 0) | (holder ? 2 : 0)
            }
        }
        let classes = siteClasses
        return classes.indices.contains(site) ? classes[site] : 3
    }

    /// A call whose result depends on which processes hold a pipe's or a socket's ends.
    @inline(__always)
    static func onEnds(_ s: StepFacts) -> Bool { !s.killed && siteClass(s.site) & 1 != 0 }

    /// The objects a step touches, each with whether it changes it (the dependency
    /// relation in terms of objects: two steps of different processes are dependent when
    /// they share one and one of them changes it).
    public static func touches(_ s: StepFacts) -> [(UInt32, Bool)] {
        if s.killed { return s.footprint.map { ($0, true) } + [(ends, true)] }
        var t: [(UInt32, Bool)] = [(resource(s), writes(s))]
        if s.spawned != 0 { t.append((s.spawned, true)) }
        if onEnds(s) { t.append((ends, false)) }
        return t
    }

    /// The object a step's effect is keyed on.
    @inline(__always)
    public static func resource(_ s: StepFacts) -> UInt32 { s.key != 0 ? s.key : s.object }

    @inline(__always)
    public static func writes(_ s: StepFacts) -> Bool {
        CallSite.all.indices.contains(s.site) ? CallSite.all[s.site].access == .write : true
    }

    /// Depends on every step of every other process.
    @inline(__always)
    public static func isGlobal(_ s: StepFacts) -> Bool {
        if s.killed { return false }
        if s.timeout { return true }
        guard resource(s) == 0 else { return false }
        return CallSite.all.indices.contains(s.site) ? CallSite.all[s.site].blocking : true
    }

    /// A step that may have waited for its object: a call declared as one that can wait,
    /// or the resumption of a call that waited inside (a condition's wait taking its lock
    /// back).
    @inline(__always)
    public static func mayWait(_ s: StepFacts) -> Bool {
        !s.killed && (s.resumed || (CallSite.all.indices.contains(s.site) && CallSite.all[s.site].blocking))
    }

    /// True when `a` and `b` (steps of different processes) do not commute.
    public static func dependent(_ a: StepFacts, _ b: StepFacts) -> Bool {
        guard a.process != b.process else { return false }
        if isGlobal(a) || isGlobal(b) { return true }
        if a.killed || b.killed {
            if a.killed && b.killed { return true }  // both close ends
            let (kill, s) = a.killed ? (a, b) : (b, a)
            return onEnds(s) || kill.footprint.contains(resource(s)) || (s.spawned != 0 && kill.footprint.contains(s.spawned))
        }
        let ra = resource(a), rb = resource(b)
        if ra == rb && (writes(a) || writes(b)) { return true }
        // A spawn writes the new process's object.
        if a.spawned != 0 && (a.spawned == rb || a.spawned == b.spawned) { return true }
        if b.spawned != 0 && b.spawned == ra { return true }
        return false
    }

    /// Fills in each kill's footprint from the steps of its process before it.
    public static func linkKills(_ steps: inout [StepFacts]) {
        guard steps.contains(where: \.killed) else { return }
        var touched: [Int: [UInt32]] = [:]
        for k in steps.indices {
            let s = steps[k]
            if s.killed {
                steps[k].footprint = footprint(touched[s.process] ?? [], killedBefore: s)
            } else if let r = footprintEntry(s), !(touched[s.process] ?? []).contains(r) {
                touched[s.process, default: []].append(r)
            }
        }
    }

    /// What a step adds to the footprint of a later kill of its process: its object, when
    /// it is its process's start or an object whose state a death changes.
    public static func footprintEntry(_ s: StepFacts) -> UInt32? {
        guard !s.killed, s.site == CallSite.processStart.id || siteClass(s.site) & 2 != 0 else { return nil }
        let r = resource(s)
        return r != 0 ? r : nil
    }

    /// A kill's footprint: the objects its process touched that a death changes, and its
    /// own object (the object of its start, or of the start it was killed before).
    static func footprint(_ touched: [UInt32], killedBefore s: StepFacts) -> [UInt32] {
        var f = touched
        if s.site == CallSite.processStart.id && !f.contains(resource(s)) { f.append(resource(s)) }
        return f
    }

    /// The footprint of a kill of `process` before the call `pending`, after the steps
    /// `steps` (for a kill the search keeps asleep: it was not made in this run).
    public static func footprint(ofKill pending: StepFacts, after steps: [StepFacts]) -> [UInt32] {
        var all = steps.filter { $0.process == pending.process && !$0.killed }
        var kill = pending
        kill.killed = true
        all.append(kill)
        linkKills(&all)
        return all.last!.footprint
    }

    /// Marks each step during which a process was registered with that process's object:
    /// a process first appears in the enabled set (or makes its start) right after the
    /// step of its parent that spawned it.
    public static func linkSpawns(_ steps: inout [StepFacts]) {
        var seen: UInt64 = 1  // the main process is there from the start
        var objectOf: [Int: UInt32] = [:]
        for s in steps where s.site == CallSite.processStart.id && objectOf[s.process] == nil { objectOf[s.process] = s.object }
        for k in steps.indices {
            let present = steps[k].readyMask | (steps[k].process < 64 ? 1 << UInt64(steps[k].process) : 0)
            let new = present & ~seen
            if new != 0 && k > 0 {
                var bits = new
                while bits != 0 {
                    let p = bits.trailingZeroBitCount
                    bits &= bits - 1
                    if let o = objectOf[p] { steps[k - 1].spawned = o }
                }
            }
            seen |= present
        }
    }
}

/// The equivalence class of a run under `StepDependence`: two runs get the same hash when
/// every object sees the same writes in the same order, with the same reads (in any
/// order) between two writes, and every process makes the same calls. Steps that depend
/// on everything (timeouts, waits on no single object) order themselves against all.
public enum InterleavingClass {
    @inline(__always)
    static func mix(_ h: UInt64, _ x: UInt64) -> UInt64 {
        var z = (h ^ x) &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    public static func hash(_ input: [StepFacts]) -> UInt64 {
        var steps = input
        StepDependence.linkSpawns(&steps)
        StepDependence.linkKills(&steps)
        // Per object: (ordered hash of writes and read groups, the pending group of reads).
        var objects: [UInt32: (h: UInt64, reads: UInt64)] = [:]
        var processes: [Int: UInt64] = [:]
        var clock: (h: UInt64, reads: UInt64) = (0, 0)
        func write(_ o: inout (h: UInt64, reads: UInt64), _ token: UInt64) {
            o.h = mix(mix(o.h, o.reads), token)
            o.reads = 0
        }
        for s in steps {
            // A kill is not the call it came before.
            let killed: UInt64 = s.killed ? 1 << 63 : 0
            let token = UInt64(s.process) << 32 | UInt64(s.site) | killed
            processes[s.process] = mix(processes[s.process] ?? 0, UInt64(s.site) << 32 | UInt64(StepDependence.resource(s)) | killed)
            if StepDependence.isGlobal(s) { write(&clock, token) } else { clock.reads &+= mix(0, token) }
            for (r, w) in StepDependence.touches(s) {
                var o = objects[r] ?? (0, 0)
                if w { write(&o, token) } else { o.reads &+= mix(0, token) }
                objects[r] = o
            }
        }
        var total = mix(clock.h, clock.reads)
        for (id, o) in objects { total &+= mix(mix(UInt64(id), o.h), o.reads) }
        for (p, h) in processes { total &+= mix(UInt64(p) | 1 << 40, h) }
        return total
    }
}
