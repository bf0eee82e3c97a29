import CSystemShim
import Glibc

/// A lock that a process owns: a robust mutex in shared memory plus the owner's depth,
/// re-entrant or not. A holder that dies (even by SIGKILL) does not freeze the others:
/// the next acquirer gets the lock and is told the dead holder's pid.
public struct OwnedLock {
    public let raw: UnsafeMutablePointer<ipc_robust_lock>
    public let isRecursive: Bool
    /// Names the object in warnings.
    public let name: String

    public init(_ raw: UnsafeMutablePointer<ipc_robust_lock>, recursive: Bool, name: String) {
        self.raw = raw
        self.isRecursive = recursive
        self.name = name
    }

    var lock: RobustLock { RobustLock(raw) }

    public enum AcquireOutcome: Equatable {
        case acquired
        case timedOut
        /// A non-re-entrant lock asked again, forever, by the process that holds it.
        case wouldDeadlock
    }

    /// True when the calling process holds it.
    public var isHeldByMe: Bool { lock.holder == ProcessIdentity.pid }
    /// Whoever holds it (0: free).
    public var holder: Int32 { lock.holder }
    /// True when acquiring it now would not wait: it is free, its holder died, or this
    /// process holds it (re-entry, or the error of a lock taken twice).
    public var isAvailable: Bool { isHeldByMe || ipc_robust_lock_available(raw) != 0 }
    /// Would acquiring it wait now? (Declares the probe of the wait: see `Probe`.)
    public var acquireWouldBlock: Bool { !isHeldByMe && lock.availableProbe.wouldBlock() }
    /// The re-entrant depth of the current holder.
    public var depth: Int { Int(raw.pointee.depth) }

    public func acquire(deadline: Deadline) -> AcquireOutcome {
        switch ipc_owned_lock_reenter(raw, isRecursive ? 1 : 0, UInt32(bitPattern: ProcessIdentity.pid)) {
        case Int32(IPC_OWNED_REENTERED):
            return .acquired
        case Int32(IPC_OWNED_HELD_TWICE):
            // multiprocessing blocks here; waiting for ourselves can only time out.
            if deadline.isNever { return .wouldDeadlock }
            Blocking.sleep(until: deadline)
            return .timedOut
        default:
            break
        }
        Blocking.awaitedHolder = lock.holder
        defer { Blocking.awaitedHolder = 0 }
        switch lock.acquire(deadline: deadline, maxGap: IPC_OWNED_LOCK_MAX_GAP) {
        case .acquired:
            raw.pointee.depth = 1
            return .acquired
        case .recovered(let dead):
            raw.pointee.depth = 1
            lock.markConsistent()
            Blocking.recoveredFromDeadHolder?(name, dead)
            return .acquired
        case .timedOut:
            return .timedOut
        case .heldBySelf:
            return .wouldDeadlock
        }
    }

    /// Releases one level. False when the calling process does not hold it.
    public func release() -> Bool { ipc_owned_lock_release(raw, UInt32(bitPattern: ProcessIdentity.pid)) != 0 }

    /// Releases every level (for a condition's wait); returns the depth to restore.
    func releaseFully() -> UInt32 {
        let depth = raw.pointee.depth
        raw.pointee.depth = 0
        _ = lock.release()
        return depth
    }

    /// Releases it if the calling process holds it: before the memory it lives in is
    /// unmapped. glibc keeps every robust mutex a thread holds on a list that it writes
    /// through at the next lock operation; a held mutex in unmapped memory would make that
    /// write fault. (Once its object is gone, the holder could never release it anyway.)
    public func abandon() {
        guard isHeldByMe else { return }
        raw.pointee.depth = 0
        _ = lock.release()
    }

    /// Takes it back after `releaseFully`, forever.
    func reacquire(depth: UInt32) {
        _ = acquire(deadline: .never)
        raw.pointee.depth = max(depth, 1)
    }
}

/// `ipc.lock()` and `ipc.rlock()`.
public final class SharedLock {
    public let region: SharedRegion
    public let lock: OwnedLock
    static let magic: UInt64 = 0x6970_636C_6F63_6B00

    public init(recursive: Bool, name: String) throws(IPCError) {
        region = try SharedRegion(size: MemoryLayout<ipc_lock_header>.size)
        let h = region.header(ipc_lock_header.self)
        try RobustLock(&h.pointee.lock).initialize()
        h.pointee.recursive = recursive ? 1 : 0
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        h.pointee.magic = Self.magic
        lock = OwnedLock(&h.pointee.lock, recursive: recursive, name: name)
    }

    public var name: String { lock.name }
    public var isRecursive: Bool { lock.isRecursive }

    deinit { lock.abandon() }
}
