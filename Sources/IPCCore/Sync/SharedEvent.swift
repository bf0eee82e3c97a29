import CSystemShim

/// `ipc.event()`: a flag that processes wait for. A wait returns true when the flag is
/// set, or when a `set()` happened since the wait began (a `clear()` right after the
/// `set()` does not take the wake-up back, as in Python): the header's `generation`
/// counts the sets.
public final class SharedEvent {
    public let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_event_header>
    public let name: String
    static let magic: UInt64 = 0x6970_6365_7665_6E74
    /// Bit 0 of `generation`: someone sleeps on it.
    static let sleepers: UInt32 = 1

    public init(name: String) throws(IPCError) {
        region = try SharedRegion(size: MemoryLayout<ipc_event_header>.size)
        h = region.header(ipc_event_header.self)
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        h.pointee.magic = Self.magic
        self.name = name
    }

    public var isSet: Bool { ipc_load32(&h.pointee.flag) != 0 }

    /// How many times `set()` was called (modulo 2^31): what a wait notes when it begins.
    public var sets: UInt32 { ipc_load32(&h.pointee.generation) >> 1 }

    /// True when a wait that began when `sets` was `start` can return.
    public func isSignalled(since start: UInt32) -> Bool { isSet || sets != start }

    /// `isSignalled(since: start)` as a probe: the flag, or the count of sets (bits 1-31
    /// of `generation`) moved.
    public func signalledProbe(since start: UInt32) -> Probe {
        Probe(&h.pointee.flag, .notEqual, 0).or(Probe(&h.pointee.generation, .notEqual, start << 1, mask: ~Self.sleepers))
    }

    public func set() {
        ipc_store32(&h.pointee.flag, 1)
        // Bumps the count and clears the sleepers bit in one step: a sleeper that comes
        // after this sets it again, and sees the new count first.
        var seen = ipc_load32(&h.pointee.generation)
        while ipc_cas32(&h.pointee.generation, &seen, (seen | Self.sleepers) &+ 1) == 0 {}
        if seen & Self.sleepers != 0 { Futex.wakeAll(&h.pointee.generation) }
    }

    public func clear() { ipc_store32(&h.pointee.flag, 0) }

    /// Waits until the flag is set, or a `set()` happens after the wait began (when `sets`
    /// was `start`; now by default), or `deadline` passes; true unless the deadline passed
    /// first.
    public func wait(deadline: Deadline, since start: UInt32? = nil) -> Bool {
        // The count first, then the flag: a set() between the two shows in the flag or
        // (if a clear() followed) in the count.
        let start = start ?? sets
        let signalled = { self.isSignalled(since: start) }
        if signalled() { return true }
        if deadline.hasExpired { return false }
        if Spin.until(Spin.waitSpins, signalled) { return true }
        return Blocking.parked(deadline) {
            if let c = Blocking.controller { return c.park(until: signalled, probe: signalledProbe(since: start), deadline: deadline) }
            while true {
                var seen = ipc_load32(&h.pointee.generation)
                if seen >> 1 != start || isSet { return true }
                if seen & Self.sleepers == 0 {
                    if ipc_cas32(&h.pointee.generation, &seen, seen | Self.sleepers) == 0 { continue }
                    seen |= Self.sleepers
                }
                if Futex.wait(&h.pointee.generation, expected: seen, deadline: deadline) == .timedOut { return signalled() }
            }
        }
    }
}
