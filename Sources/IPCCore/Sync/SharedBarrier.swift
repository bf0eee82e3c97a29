import CSystemShim

/// `ipc.barrier(n)`: n processes meet; each learns its arrival index 0..n-1. A timeout
/// in one waiter breaks the barrier for all of them, as in Python.
public final class SharedBarrier {
    public let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_barrier_header>
    public let name: String
    static let magic: UInt64 = 0x6970_6362_6172_7200

    public init(parties: UInt32, name: String) throws(IPCError) {
        region = try SharedRegion(size: MemoryLayout<ipc_barrier_header>.size)
        h = region.header(ipc_barrier_header.self)
        try RobustLock(&h.pointee.lock).initialize()
        h.pointee.parties = parties
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        h.pointee.magic = Self.magic
        self.name = name
    }

    var lock: RobustLock { RobustLock(&h.pointee.lock) }
    public var parties: Int { Int(h.pointee.parties) }
    public var waiting: Int { Int(ipc_load32(&h.pointee.count)) }
    public var isBroken: Bool { ipc_load32(&h.pointee.broken) != 0 }

    func lockIt() {
        _ = lock.acquire(deadline: .never, object: self.name) { _ in }
    }

    public enum WaitOutcome: Equatable { case passed(index: Int), timedOut, broken, actionFailed }

    /// Waits until `parties` processes have called it. The last to arrive runs `action`
    /// first (false: it failed), without the lock and before any party is released, as
    /// Python's; a failed action breaks the barrier. While the action runs, `count`
    /// stays at `parties`: a process that comes meanwhile belongs to the next passage and
    /// waits for this one to end.
    public func wait(deadline: Deadline, action: (() -> Bool)? = nil) -> WaitOutcome {
        lockIt()
        while h.pointee.broken == 0 && h.pointee.count >= h.pointee.parties {
            let passing = h.pointee.generation
            lock.release()
            let moved = { ipc_load32(&self.h.pointee.generation) != passing }
            let ended = Spin.until(Spin.waitSpins, moved) || Blocking.wait(until: moved, futex: &h.pointee.generation, deadline: deadline,
                                                                           probe: Probe(&h.pointee.generation, .notEqual, passing))
            lockIt()
            if !ended && h.pointee.generation == passing {
                breakLocked()
                lock.release()
                return .timedOut
            }
        }
        if h.pointee.broken != 0 { lock.release(); return .broken }
        let index = Int(h.pointee.count)
        let generation = h.pointee.generation
        if index + 1 == Int(h.pointee.parties) {
            if let action {
                ipc_store32(&h.pointee.count, h.pointee.parties)
                lock.release()
                let succeeded = action()
                lockIt()
                if h.pointee.generation != generation {
                    // Broken while the action ran (a waiter timed out, abort, reset).
                    lock.release()
                    return succeeded ? .broken : .actionFailed
                }
                if !succeeded { breakLocked(); lock.release(); return .actionFailed }
            }
            h.pointee.count = 0
            ipc_store32(&h.pointee.generation, generation &+ 1)
            lock.release()
            Futex.wakeAll(&h.pointee.generation)
            return .passed(index: index)
        }
        ipc_store32(&h.pointee.count, UInt32(index + 1))
        lock.release()
        let tripped = { ipc_load32(&self.h.pointee.generation) != generation }
        if !Spin.until(Spin.waitSpins, tripped) {
            _ = Blocking.wait(until: tripped, futex: &h.pointee.generation, deadline: deadline,
                              probe: Probe(&h.pointee.generation, .notEqual, generation))
        }
        lockIt()
        defer { lock.release() }
        if h.pointee.generation == generation {
            // Timed out while still waiting: break the barrier for everyone.
            breakLocked()
            return .timedOut
        }
        if h.pointee.broken_generation == generation &+ 1 && h.pointee.broken_generation != 0 {
            return .broken
        }
        return .passed(index: index)
    }

    /// Marks the current generation broken and releases its waiters. Lock held.
    func breakLocked() {
        let g = h.pointee.generation
        h.pointee.broken = 1
        h.pointee.count = 0
        h.pointee.broken_generation = g &+ 1
        ipc_store32(&h.pointee.generation, g &+ 1)
        Futex.wakeAll(&h.pointee.generation)
    }

    /// Breaks the barrier: current and future waiters get "broken" until `reset`.
    public func abort() {
        lockIt()
        breakLocked()
        lock.release()
    }

    /// Back to the initial state; processes waiting now are released broken.
    public func reset() {
        lockIt()
        if h.pointee.count > 0 { breakLocked() }
        h.pointee.broken = 0
        h.pointee.count = 0
        lock.release()
    }
}
