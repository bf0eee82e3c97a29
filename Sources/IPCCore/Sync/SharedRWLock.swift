import CSystemShim
import Glibc

/// `ipc.rwlock()`: readers share it, a writer excludes everybody (an addition: Python's
/// multiprocessing has none). The layout (`ipc_rwlock_header`) is a gate and 32 reader
/// slots, all robust mutexes, so the kernel tells the next taker of any of them that its
/// holder died: a dead reader or writer never leaves it held. Every wait is a robust
/// lock's, so it parks through `Blocking` like a lock's (hang board, controlled scheduler).
///
/// A waiting writer holds the gate, so readers that come after it wait for it (writers
/// do not starve); a reader that already reads re-enters without the gate (it would
/// otherwise wait for a writer that waits for it). More than 32 processes reading at once
/// wait for a slot.
public final class SharedRWLock {
    public let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_rwlock_header>
    let slots: UnsafeMutablePointer<ipc_robust_lock>
    public let name: String
    public static let readerSlots = Int(IPC_RWLOCK_READERS)
    static let magic: UInt64 = 0x6970_6372_776C_6B00

    public init(name: String) throws(IPCError) {
        region = try SharedRegion(size: MemoryLayout<ipc_rwlock_header>.size)
        h = region.header(ipc_rwlock_header.self)
        let base = UnsafeMutableRawPointer(h)
        slots = (base + MemoryLayout<ipc_rwlock_header>.offset(of: \.readers)!).assumingMemoryBound(to: ipc_robust_lock.self)
        self.name = name
        try gate.initialize()
        for i in 0..<Self.readerSlots { try RobustLock(slots + i).initialize() }
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        h.pointee.magic = Self.magic
    }

    var gate: RobustLock {
        RobustLock((UnsafeMutableRawPointer(h) + MemoryLayout<ipc_rwlock_header>.offset(of: \.gate)!).assumingMemoryBound(to: ipc_robust_lock.self))
    }

    public enum Outcome: Equatable {
        case acquired
        case timedOut
        /// The calling process would wait for itself for ever: it writes and asks again,
        /// or reads and asks to write.
        case wouldDeadlock
    }

    /// True when the calling process holds `lock` (a dead holder's pid, reused, is not us:
    /// a live holder's mutex is never available).
    static func isHeldByMe(_ lock: UnsafeMutablePointer<ipc_robust_lock>) -> Bool {
        RobustLock(lock).holder == ProcessIdentity.pid && ipc_robust_lock_available(lock) == 0
    }

    /// The slot the calling process reads with, if it reads.
    var mySlot: Int? { (0..<Self.readerSlots).first { Self.isHeldByMe(slots + $0) } }

    /// True when the calling process writes.
    public var isWriter: Bool { Self.isHeldByMe(gate.raw) }
    /// True when the calling process reads.
    public var isReader: Bool { mySlot != nil }
    /// How many processes read now.
    public var readers: Int { (0..<Self.readerSlots).filter { ipc_robust_lock_available(slots + $0) == 0 }.count }

    /// Would `acquireRead` wait now? (A writer holds the gate or waits there.)
    public var readWouldWait: Bool { !isWriter && !isReader && ipc_robust_lock_available(gate.raw) == 0 }
    /// Would `acquireWrite` wait now? (Anybody else reads or writes.)
    public var writeWouldWait: Bool {
        if isWriter || isReader { return false }
        return ipc_robust_lock_available(gate.raw) == 0 || readers > 0
    }

    /// Takes it to read, waiting until `deadline` for a writer to finish.
    public func acquireRead(deadline: Deadline) -> Outcome {
        if isWriter { return .wouldDeadlock }
        if let i = mySlot {
            slots[i].depth += 1
            return .acquired
        }
        guard take(gate, deadline: deadline) else { return .timedOut }
        defer { gate.release() }
        // A free slot, from one that depends on the pid (readers seldom meet in one).
        let start = Int(UInt32(bitPattern: ProcessIdentity.pid)) % Self.readerSlots
        for k in 0..<Self.readerSlots {
            let slot = slots + (start + k) % Self.readerSlots
            switch ipc_robust_lock_try(slot) {
            case 0:
                slot.pointee.holder = UInt32(bitPattern: ProcessIdentity.pid)
            case EOWNERDEAD:
                let dead = Int32(bitPattern: slot.pointee.holder)
                slot.pointee.holder = UInt32(bitPattern: ProcessIdentity.pid)
                RobustLock(slot).markConsistent()
                Blocking.recoveredFromDeadHolder?(name, dead)
            default:
                continue
            }
            slot.pointee.depth = 1
            return .acquired
        }
        // Every slot is taken: wait for the one this process would have had first.
        let slot = slots + start
        guard take(RobustLock(slot), deadline: deadline) else { return .timedOut }
        slot.pointee.depth = 1
        return .acquired
    }

    /// Gives back one level of this process's read. False when it does not read.
    public func releaseRead() -> Bool {
        guard let i = mySlot else { return false }
        let slot = slots + i
        if slot.pointee.depth > 1 {
            slot.pointee.depth -= 1
            return true
        }
        slot.pointee.depth = 0
        return RobustLock(slot).release()
    }

    /// Takes it to write, waiting until `deadline` for the writer before it and then for
    /// every reader. On a timeout it holds nothing.
    public func acquireWrite(deadline: Deadline) -> Outcome {
        if isWriter || isReader { return .wouldDeadlock }
        guard take(gate, deadline: deadline) else { return .timedOut }
        // No reader can come now: wait for those there are (each slot's holder).
        for i in 0..<Self.readerSlots where ipc_robust_lock_available(slots + i) == 0 {
            let slot = RobustLock(slots + i)
            guard take(slot, deadline: deadline) else {
                gate.release()
                return .timedOut
            }
            slot.raw.pointee.depth = 0
            slot.release()
        }
        return .acquired
    }

    /// Gives back this process's write. False when it does not write.
    public func releaseWrite() -> Bool {
        guard isWriter else { return false }
        return gate.release()
    }

    /// Takes `lock` until `deadline` (false on timeout), taking it over from a holder
    /// that died (told as a lock's dead holder is).
    func take(_ lock: RobustLock, deadline: Deadline) -> Bool {
        Blocking.awaitedHolder = lock.holder
        defer { Blocking.awaitedHolder = 0 }
        switch lock.acquire(deadline: deadline, maxGap: IPC_OWNED_LOCK_MAX_GAP) {
        case .acquired:
            return true
        case .recovered(let dead):
            lock.markConsistent()
            Blocking.recoveredFromDeadHolder?(name, dead)
            return true
        case .timedOut, .heldBySelf:
            return false
        }
    }

    /// Lets go of what this process holds before the memory is unmapped (see
    /// `OwnedLock.abandon`).
    deinit {
        if isWriter { gate.release() }
        if let i = mySlot {
            slots[i].depth = 0
            RobustLock(slots + i).release()
        }
    }
}
