import CRuntimeShim
import CSystemShim
import Glibc
import IPCCore

/// The gate's hooks of a run, installed by the host in this order (each child inherits
/// them): jitter, the controlled scheduler, tracing. Before a call they run in that order
/// (a call's trace slice starts once the scheduler lets it go), after it in reverse.
enum Hooks {
    static var jitter: JitterHook? {
        get { Execution.current.jitter }
        set { Execution.current.jitter = newValue }
    }

    static func install(options: RunOptions, board: RunBoard) throws(IPCError) {
        Gate.removeAll()
        if options.jitterMilliseconds > 0 {
            let hook = JitterHook(maxNanoseconds: UInt64(options.jitterMilliseconds * 1e6), runSeed: options.seed ?? 0)
            jitter = hook
            Gate.install(hook)
        }
        if let schedule = options.schedule {
            let controlled = try Schedule.start(schedule, board: board)
            Gate.install(controlled)
            if let log = controlled.log, log.isInteractive { Gate.install(ObjectStateHook(log: log)) }
        }
        if Trace.isOn { Gate.install(TraceHook()) }
    }

    /// In a new child: its own jitter stream, its place in the schedule.
    static func becomeChild(identity: String, spawnIndex: Int) {
        jitter?.reseed(identity: identity)
        Schedule.current?.becomeChild(index: spawnIndex)
    }
}

/// `--jitter MS --seed N`: a random delay before each IPC call, drawn from a generator
/// seeded from the run's seed and the process's spawn path ("" for the main process, "2:1"
/// for the first child of its second child), so that each process draws the same delays
/// on a replay, whatever the scheduling.
final class JitterHook: GateHook {
    let maxNanoseconds: UInt64
    let runSeed: UInt64
    var random: SplitMix64

    init(maxNanoseconds: UInt64, runSeed: UInt64) {
        self.maxNanoseconds = maxNanoseconds
        self.runSeed = runSeed
        random = SplitMix64(seed: runSeed)
        reseed(identity: "")
    }

    func reseed(identity: String) {
        random = SplitMix64(seed: runSeed ^ fnv1a(identity))
    }

    func before(_ call: GateCall, wouldBlock: () -> Bool) {
        MonotonicClock.sleep(nanoseconds: Int64(random.next() % (maxNanoseconds + 1)))
    }

    func after(_ call: GateCall, _ result: CallResult) {}
}

/// `ipcplay step`: after each step, the state of the object it touched ("= 3", "held by
/// Process-1", "2 items"), which the prompt shows for every object touched so far.
public final class ObjectStateHook: GateHook {
    /// The state of the current call's object, as one short text (nil: none worth showing).
    /// Set by the Lua layer, which knows the call's object (kept in the execution context).
    public static var describeCurrentObject: (() -> String?)? {
        get { Execution.current.describeCurrentObject }
        set { Execution.current.describeCurrentObject = newValue }
    }

    /// The hook of this run, when it has one: a call that parks in the middle (a barrier's
    /// wait, after its arrival counts) shows its object's state then, too.
    static var installed: ObjectStateHook? {
        get { Execution.current.objectStateHook }
        set { Execution.current.objectStateHook = newValue }
    }

    let log: ScheduleLog
    init(log: ScheduleLog) {
        self.log = log
        Self.installed = self
    }

    public func before(_ call: GateCall, wouldBlock: () -> Bool) {}

    public func after(_ call: GateCall, _ result: CallResult) { publish(call) }

    func publish(_ call: GateCall) {
        guard call.object.id != 0, let text = Self.describeCurrentObject?() else { return }
        log.setState(call.object.id, text)
    }
}

/// `--trace`: every call becomes a complete event (a slice) on its process's track.
final class TraceHook: GateHook {
    func before(_ call: GateCall, wouldBlock: () -> Bool) {
        Trace.parkedTotal = 0
    }

    func after(_ call: GateCall, _ result: CallResult) {
        let text: String?
        switch result.outcome {
        case .done: text = result.text
        case .fell(let why): text = why
        case .raised(let message): text = "error: " + message
        }
        Trace.complete(call.site.name, object: call.object.name, start: call.started, bytes: result.bytes,
                       resultText: text, flowOut: result.flowOut, flowIn: result.flowIn, value: result.preview)
        if let c = result.counter { Trace.counter(call.object.name, c.what, c.value) }
    }
}

/// The hang board: when a call parks, the process publishes on the run's board what it
/// is blocked in (the gate's current call, its object and its Lua location), for the
/// --timeout report and the supervisor's deadlock detection; when it wakes, it clears it.
enum HangBoard {
    /// Publishes who holds what the current call waits for: under a controlled scheduler,
    /// a call held at the gate because it would wait (it never parks in the kernel).
    static func publishAwaited() {
        guard let slot = Runtime.this.slot, let board = RunBoard.current else { return }
        board.publishAwaited(slot: slot, RunBoard.currentAwaited())
    }

    static func install() {
        Blocking.willPark = { deadline in
            ipc_flush_all()  // a prompt without a newline shows before we sleep
            if let hook = ObjectStateHook.installed, let call = Gate.current { hook.publish(call) }
            if Trace.isOn { Trace.flush(); Trace.parked() }
            guard let slot = Runtime.this.slot, let board = RunBoard.current else { return }
            let call = Gate.current
            let external = call?.external ?? false
            board.publishBlocked(slot: slot, call: call?.site.name ?? "?", object: call?.object.name ?? "",
                                 location: Runtime.this.location, deadline: deadline, external: external,
                                 holder: Blocking.awaitedHolder, awaited: RunBoard.currentAwaited())
            if deadline.isNever && !external && !Blocking.isControlled {
                Runtime.this.parkedForEver = true
                board.parkedForEver()
            }
        }
        Blocking.didWake = {
            Trace.woke()
            guard let slot = Runtime.this.slot, let board = RunBoard.current else { return }
            if Runtime.this.parkedForEver {
                Runtime.this.parkedForEver = false
                board.unparked()
            }
            board.publishBlocked(slot: slot, call: nil, object: "", location: "", deadline: .never, external: false)
        }
        Blocking.recoveredFromDeadHolder = { object, dead in
            // The call that took it over is the gate's innermost (a lock taken outside any
            // call, by the runtime itself, is the process's).
            let taker = Gate.current?.site.name ?? "process \(ProcessIdentity.pid)"
            Runtime.warn("\(object) was held by process \(dead), which died; \(taker) took it over")
        }
    }
}

/// SplitMix64: small, fast, and good enough to shake schedules.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// FNV-1a of a string's bytes (seeds, script hashes).
public func fnv1a(_ s: String, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
    var h = seed
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}
