import CSystemShim
import Glibc

/// A robust, process-shared mutex in shared memory (`ipc_robust_lock`).
///
/// When its holder dies, the next `acquire` still gets the lock and learns the dead
/// holder's pid, so that it can repair what the lock protects before carrying on.
public struct RobustLock {
    public let raw: UnsafeMutablePointer<ipc_robust_lock>

    @inlinable public init(_ raw: UnsafeMutablePointer<ipc_robust_lock>) { self.raw = raw }

    /// Ready when no live process owns it (`ipc_robust_lock_available` as a probe).
    public var availableProbe: Probe { Probe(ipc_robust_lock_word(raw), .equal, 0, mask: 0x3fff_ffff) }

    public func initialize() throws(IPCError) {
        let r = ipc_robust_lock_init(raw)
        if r != 0 { throw IPCError.system("pthread_mutex_init: \(String(cString: strerror(r)))") }
    }

    public enum Outcome: Equatable {
        /// Acquired normally.
        case acquired
        /// Acquired from a holder that died: repair, then `markConsistent()`.
        case recovered(deadHolder: Int32)
        case timedOut
        /// The calling process already holds it (error-checking mutex).
        case heldBySelf
    }

    /// `pthread_mutex_trylock`, a short spin (critical sections are a few hundred
    /// nanoseconds), then `pthread_mutex_clocklock(CLOCK_MONOTONIC)` until `deadline`.
    @inlinable
    public func acquire(deadline: Deadline, maxGap: Int32 = 1) -> Outcome {
        var r = ipc_robust_lock_try(raw)
        if r == EBUSY && !Blocking.isControlled {
            // A short spin: critical sections last a few hundred nanoseconds.
            r = ipc_robust_lock_try_spinning(raw, Int32(Spin.lockSpins), maxGap)
        }
        if r == EBUSY {
            if deadline.hasExpired { return .timedOut }
            r = Blocking.parked(deadline) { () -> Int32 in
                if let c = Blocking.controller {
                    // Never asleep in the kernel: wait for the turn, then try again.
                    var r = EBUSY
                    while r == EBUSY {
                        guard c.park(until: { ipc_robust_lock_available(raw) != 0 }, probe: availableProbe, deadline: deadline) else { return ETIMEDOUT }
                        r = ipc_robust_lock_try(raw)
                    }
                    return r
                }
                if var ts = deadline.timespec { return ipc_robust_lock_acquire(raw, &ts) }
                return ipc_robust_lock_acquire(raw, nil)
            }
        }
        switch r {
        case 0:
            _ = ipc_robust_lock_record(raw, UInt32(bitPattern: ProcessIdentity.pid))
            return .acquired
        case EOWNERDEAD:
            return .recovered(deadHolder: Int32(bitPattern: ipc_robust_lock_record(raw, UInt32(bitPattern: ProcessIdentity.pid))))
        case ETIMEDOUT, EBUSY:
            return .timedOut
        case EDEADLK:
            return .heldBySelf
        default:
            // ENOTRECOVERABLE: only if a recovered holder released without marking it
            // consistent, which this code never does.
            fatalError("pthread_mutex lock failed: \(String(cString: strerror(r)))")
        }
    }

    /// Acquires, repairing with `repair(deadPid)` when the last holder died (the warning
    /// names the call from the gate: see `Blocking.recoveredFromDeadHolder`). Returns false
    /// when the deadline passed first.
    @inlinable
    public func acquire(deadline: Deadline, object: @autoclosure () -> String, repair: (Int32) -> Void) -> Bool {
        switch acquire(deadline: deadline) {
        case .acquired:
            return true
        case .recovered(let dead):
            repair(dead)
            markConsistent()
            Blocking.recoveredFromDeadHolder?(object(), dead)
            return true
        case .timedOut:
            return false
        case .heldBySelf:
            // Internal locks are never taken twice by one process.
            fatalError("internal lock taken twice by one process")
        }
    }

    @inlinable
    public func markConsistent() { _ = ipc_robust_lock_consistent(raw) }

    /// `pthread_mutex_unlock`. False when the calling process does not hold it.
    @inlinable @discardableResult
    public func release() -> Bool {
        guard raw.pointee.holder == UInt32(bitPattern: ProcessIdentity.pid) else { return false }
        ipc_robust_lock_give(raw)
        return true
    }

    /// The pid recorded by the current holder (0 when free).
    @inlinable public var holder: Int32 { Int32(bitPattern: ipc_load32(&raw.pointee.holder)) }
}
