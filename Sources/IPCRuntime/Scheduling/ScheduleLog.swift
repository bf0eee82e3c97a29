import CRuntimeShim
import CSystemShim
import IPCCore

/// What a controlled run leaves for the program that started it: its steps (who made
/// each, which call on which object, how many could have gone, whether it preempted),
/// the decisions it was told to follow, and each object's name. Shared
/// memory made by that program before it forks the run, reused run after run.
public final class ScheduleLog: @unchecked Sendable {
    let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_sched_log>
    let stepBase: UnsafeMutablePointer<ipc_step_record>
    let decisionBase: UnsafeMutablePointer<ipc_log_decision>
    let locationBase: UnsafeMutablePointer<CChar>
    public let capacity: Int
    static let locationCap = Int(IPC_WHERE_CAP)
    static let magic: UInt64 = 0x6970_6373_6368_6C67

    /// Room for `capacity` steps (the memory is paid for only as it is used).
    public init(capacity: Int) throws(IPCError) {
        let header = (MemoryLayout<ipc_sched_log>.size + 63) & ~63
        let steps = capacity * MemoryLayout<ipc_step_record>.stride
        let decisions = capacity * MemoryLayout<ipc_log_decision>.stride
        let locations = capacity * Self.locationCap
        region = try SharedRegion(size: header + steps + decisions + locations, reserveOnly: true)
        h = region.header(ipc_sched_log.self)
        stepBase = (region.base + header).assumingMemoryBound(to: ipc_step_record.self)
        decisionBase = (region.base + header + steps).assumingMemoryBound(to: ipc_log_decision.self)
        locationBase = (region.base + header + steps + decisions).assumingMemoryBound(to: CChar.self)
        self.capacity = capacity
        h.pointee.capacity = UInt64(capacity)
        h.pointee.magic = Self.magic
    }

    // MARK: - Before a run (the controller)

    /// Empties the log for a new run that follows `decisions` (by index or by name).
    public func prepare(decisions: [Decision], byIndex: Bool, keepLocations: Bool, interactive: Bool = false) {
        h.pointee.choices = 0
        h.pointee.processes = 0
        h.pointee.diverged = 0
        h.pointee.message.0 = 0
        h.pointee.next_decision = 0
        h.pointee.by_index = byIndex ? 1 : 0
        h.pointee.keep_locations = keepLocations ? 1 : 0
        h.pointee.interactive = interactive ? 1 : 0
        h.pointee.random_rest = 0
        h.pointee.left_pct = 0
        let n = min(decisions.count, capacity)
        for (i, d) in decisions.prefix(n).enumerated() {
            let r = decisionBase + i
            r.pointee.process = Int32(d.process ?? -1)
            r.pointee.site = d.site.map { UInt32($0.id) } ?? UInt32.max
            r.pointee.kill_at = UInt32(d.killBeforeStep ?? 0)
            storeName(d.processName, into: &r.pointee.process_name, capacity: Int(IPC_NAME_CAP))
            storeName(d.objectName, into: &r.pointee.object_name, capacity: Int(IPC_NAME_CAP))
        }
        h.pointee.decisions = UInt64(n)
        // Objects: forget the previous run's (only those its steps touched were written).
        let objects = UnsafeMutableRawPointer(ipc_sched_log_objects(h)!)
        let touched = min(highestObject, Int(IPC_LOG_OBJECTS))
        if touched > 0 { objects.initializeMemory(as: UInt8.self, repeating: 0, count: touched * MemoryLayout<ipc_log_object>.stride) }
        highestObject = 0
        h.pointee.steps = 0
    }

    var loggedSteps: UnsafeBufferPointer<ipc_step_record> { UnsafeBufferPointer(start: stepBase, count: Int(h.pointee.steps)) }

    /// The highest object id the logged steps touched.
    var highestObject: Int {
        get { max(Int(h.pointee.highest_object), loggedSteps.reduce(0) { max($0, Int($1.object)) }) }
        set { h.pointee.highest_object = UInt32(newValue) }
    }

    // MARK: - During a run (its processes)

    func object(_ id: UInt32) -> UnsafeMutablePointer<ipc_log_object>? {
        guard id > 0, id <= IPC_LOG_OBJECTS else { return nil }
        return ipc_sched_log_objects(h)! + Int(id - 1)
    }

    /// Logs a step; false when the log is full.
    func append<T>(_ record: ipc_step_record, location: String?, objectName: UnsafeMutablePointer<T>) -> Bool {
        let n = Int(h.pointee.steps)
        guard n < capacity else { return false }
        stepBase[n] = record
        if h.pointee.keep_locations != 0 {
            storeName(location ?? "", into: locationBase + n * Self.locationCap, capacity: Self.locationCap)
        }
        if let o = self.object(record.object) {
            if o.pointee.kind == 0 {
                o.pointee.kind = 1
                UnsafeMutableRawPointer(&o.pointee.name).copyMemory(from: objectName, byteCount: Int(IPC_NAME_CAP))
            }
            o.pointee.steps += 1
        }
        h.pointee.steps = UInt64(n + 1)
        return true
    }

    /// True in the runs of `ipcplay step`.
    var isInteractive: Bool { h.pointee.interactive != 0 }

    /// Records the state of object `id` after a step on it (interactive runs).
    func setState(_ id: UInt32, _ text: String) {
        guard let o = object(id) else { return }
        storeName(text, into: &o.pointee.state, capacity: Int(IPC_STATE_CAP))
    }

    /// The objects the run's steps have touched so far that recorded a state, in the
    /// order they were made: (name, state).
    public var objectStates: [(name: String, state: String)] {
        guard highestObject > 0 else { return [] }
        return (1...UInt32(min(highestObject, Int(IPC_LOG_OBJECTS)))).compactMap { id in
            guard let o = object(id), o.pointee.kind != 0 else { return nil }
            let state = loadName(from: &o.pointee.state, capacity: Int(IPC_STATE_CAP))
            return state.isEmpty ? nil : (loadName(from: &o.pointee.name, capacity: Int(IPC_NAME_CAP)), state)
        }
    }

    /// The prompt's lines for `objectStates`: "  objects:", then one line per object with
    /// its name and its state in aligned columns ("" when there is none).
    public var objectStatesText: String {
        let states = objectStates
        guard !states.isEmpty else { return "" }
        let width = states.map { $0.name.count }.max() ?? 0
        return "  objects:\n" + states.map { "    " + $0.name + String(repeating: " ", count: width - $0.name.count) + "  " + $0.state + "\n" }.joined()
    }

    /// Names process `i` of the run.
    func setProcessName(_ i: Int, _ name: String) {
        guard i < Int(IPC_SCHED_PROCESSES) else { return }
        storeName(name, into: ipc_sched_log_process_name(h, Int32(i))!, capacity: Int(IPC_NAME_CAP))
        ipc_sched_log_pending(h, Int32(i))!.pointee.site = UInt32.max
    }

    /// Records what process `i` is about to do (or waits in) as its run fails.
    func setPending(_ i: Int, site: UInt32, object: UInt32, objectName: UnsafeRawPointer, location: UnsafeRawPointer) {
        guard i < Int(IPC_SCHED_PROCESSES), let p = ipc_sched_log_pending(h, Int32(i)) else { return }
        p.pointee.site = site
        p.pointee.object = object
        UnsafeMutableRawPointer(&p.pointee.object_name).copyMemory(from: objectName, byteCount: Int(IPC_NAME_CAP))
        UnsafeMutableRawPointer(&p.pointee.where).copyMemory(from: location, byteCount: Int(IPC_WHERE_CAP))
    }

    /// What each process of the last run was waiting in when it failed (nil: it had
    /// ended, or the run did not fail).
    public var pending: [Step?] {
        (0..<min(Int(h.pointee.processes), Int(IPC_SCHED_PROCESSES))).map { i in
            guard let p = ipc_sched_log_pending(h, Int32(i)), p.pointee.site != UInt32.max else { return nil }
            return Step(process: i, site: Int(p.pointee.site), object: p.pointee.object, ready: 0, readyMask: 0,
                        preempted: false, timeout: false, resumed: false,
                        location: loadName(from: &p.pointee.where, capacity: Int(IPC_WHERE_CAP)))
        }
    }

    /// The name an object had in the last run's pending calls.
    public func pendingObjectName(_ i: Int) -> String {
        guard let p = ipc_sched_log_pending(h, Int32(i)) else { return "" }
        return loadName(from: &p.pointee.object_name, capacity: Int(IPC_NAME_CAP))
    }

    /// The names of the last run's processes, by spawn index.
    public var processNames: [String] {
        (0..<min(Int(h.pointee.processes), Int(IPC_SCHED_PROCESSES))).map {
            loadName(from: ipc_sched_log_process_name(h, Int32($0))!, capacity: Int(IPC_NAME_CAP))
        }
    }

    /// The next decision to follow, if any is left.
    func nextDecision() -> ipc_log_decision? {
        let i = Int(h.pointee.next_decision)
        guard i < Int(h.pointee.decisions) else { return nil }
        return decisionBase[i]
    }

    func consumeDecision() { h.pointee.next_decision += 1 }

    /// Skips the kills that come next, when a choice is listed after them.
    func dropKillsBeforeNextChoice() {
        var i = Int(h.pointee.next_decision)
        while i < Int(h.pointee.decisions) && decisionBase[i].kill_at != 0 { i += 1 }
        if i < Int(h.pointee.decisions) { h.pointee.next_decision = UInt64(i) }
    }

    var byIndex: Bool { h.pointee.by_index != 0 }
    var keepsLocations: Bool { h.pointee.keep_locations != 0 }

    func markDiverged(_ message: String) {
        h.pointee.diverged = 1
        storeName(message, into: &h.pointee.message, capacity: 1024)
    }

    // MARK: - After a run (the controller)

    /// The steps of the last run.
    public var steps: [Step] {
        (0..<Int(h.pointee.steps)).map { i in
            let r = stepBase[i]
            let location = h.pointee.keep_locations != 0 ? loadName(from: locationBase + i * Self.locationCap, capacity: Self.locationCap) : ""
            return Step(process: Int(r.process), site: Int(r.site), object: r.object, ready: Int(r.ready),
                        readyMask: r.ready_mask, preempted: r.preempted != 0, timeout: r.timeout & 1 != 0,
                        resumed: r.timeout & 2 != 0, location: location, killed: r.timeout & 4 != 0, key: r.key)
        }
    }

    /// How many steps offered a choice.
    public var choices: Int { Int(h.pointee.choices) }

    /// The divergence of a replay, if it diverged.
    public var divergence: String? {
        h.pointee.diverged != 0 ? loadName(from: &h.pointee.message, capacity: 1024) : nil
    }

    /// The name of object `id` in the last run.
    public func objectName(_ id: UInt32) -> String {
        guard let o = object(id), o.pointee.kind != 0 else { return id == 0 ? "" : "#\(id)" }
        return loadName(from: &o.pointee.name, capacity: Int(IPC_NAME_CAP))
    }

    /// The run's interleaving, up to the order of independent steps (`InterleavingClass`):
    /// two runs have the same hash when they are the same interleaving.
    public func interleavingHash() -> UInt64 {
        InterleavingClass.hash(loggedSteps.map(StepFacts.init))
    }

    /// One decision to follow.
    public struct Decision: Sendable, Equatable {
        public var process: Int?
        public var processName: String
        public var site: CallSite?
        public var objectName: String
        /// Not a choice: kill this process before its n-th step, that call (`--kill`).
        public var killBeforeStep: Int?
        public var isKill: Bool { killBeforeStep != nil }

        public init(process: Int?, processName: String, site: CallSite?, objectName: String, killBeforeStep: Int? = nil) {
            self.process = process
            self.processName = processName
            self.site = site
            self.objectName = objectName
            self.killBeforeStep = killBeforeStep
        }
    }

    /// One step of a logged run.
    public struct Step: Sendable {
        public var process: Int
        public var site: Int
        public var object: UInt32
        public var ready: Int
        /// Which of processes 0..63 could have made this step.
        public var readyMask: UInt64
        public var preempted: Bool
        public var timeout: Bool
        public var resumed: Bool
        public var location: String
        /// The process was killed here, before this call took effect (`--kill`): its own row.
        public var killed = false
        /// The object its wait and its effects depend on (0: its object).
        public var key: UInt32 = 0
        /// Whether the strategy chose among several (a kill row too: it chose whom to kill).
        public var isChoice: Bool { ready > 1 }
    }

    // MARK: - Interactive runs (`ipcplay step`)

    /// One choice offered to the person.
    public struct Choice: Sendable {
        public var process: Int
        public var name: String
        public var call: String
        public var object: String
        public var location: String
    }

    /// The choices the deciding process offers now.
    public var offered: [Choice] {
        withUnsafeBytes(of: &h.pointee.choices_offered) { raw in
            let slots = raw.bindMemory(to: ipc_step_choice.self)
            return (0..<min(Int(h.pointee.choice_count), slots.count)).map { i in
                var c = slots[i]
                return Choice(process: Int(c.process), name: loadName(from: &c.name, capacity: Int(IPC_NAME_CAP)),
                              call: CallSite.all.indices.contains(Int(c.site)) ? CallSite.all[Int(c.site)].name : "?",
                              object: loadName(from: &c.object, capacity: Int(IPC_NAME_CAP)),
                              location: loadName(from: &c.where, capacity: Int(IPC_WHERE_CAP)))
            }
        }
    }

    /// The step about to be decided.
    public var nextStep: Int { Int(h.pointee.steps) + 1 }

    /// Answers the deciding process: `process`, or -1 for random choices from now on.
    public func answer(_ process: Int) {
        h.pointee.choice = Int32(process)
        _ = ipc_add32(&h.pointee.answer, 1)
        Futex.wake(&h.pointee.answer, count: 1)
    }

    /// Where the deciding process writes a byte when it asks (the controller polls it).
    public func setRequestDescriptor(_ fd: Int32) { h.pointee.request_fd = fd }
}
