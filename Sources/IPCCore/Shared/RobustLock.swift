import CSystemShim
import Glibc

/// Observes the moments when a blocking call is about to sleep in the kernel and when it
/// wakes, so that the runtime can publish what each process is blocked in (hang reports,
/// deadlock detection) and flush pending output. Calls that do not sleep cost nothing.
public enum Parking {
    /// Told the deadline of the sleep that follows (`.never` for a wait with no end).
    nonisolated(unsafe) public static var willPark: ((Deadline) -> Void)?
    nonisolated(unsafe) public static var didWake: (() -> Void)?
    /// Told when a lock is taken over from a process that died holding it.
    nonisolated(unsafe) public static var recoveredFromDeadHolder: ((_ object: String, _ deadPid: Int32, _ during: String) -> Void)?

    @inlinable public static func parking(_ deadline: Deadline) { willPark?(deadline) }
    @inlinable public static func woke() { didWake?() }
}

/// How long blocking calls spin before they park in the kernel. Waking a sleeper costs
/// a syscall and a context switch (microseconds); the other side of a busy queue usually
/// acts within that time.
public enum Spin {
    public static let lockSpins = 2_000
    public static let waitSpins = 2_000
    /// Non-blocking receives tried on a socket before parking (tens of microseconds).
    public static let socketTries = 24
    /// Pauses between two `sched_yield`s while spinning.
    public static let yieldEvery = 64

    /// Spins until `ready()` or the budget runs out; true when ready. The spin yields the
    /// CPU now and then: when the process we wait for shares our CPU (the scheduler often
    /// puts a woken process beside its waker), it runs at once instead of waiting for our
    /// time slice to end; when it runs elsewhere, a yield returns at once.
    @inlinable
    public static func until(_ budget: Int = waitSpins, _ ready: () -> Bool) -> Bool {
        var i = 0
        while i < budget {
            if ready() { return true }
            if i % yieldEvery == yieldEvery - 1 { sched_yield() } else { ipc_pause() }
            i += 1
        }
        return false
    }
}

/// A robust, process-shared mutex in shared memory (`ipc_robust_lock`).
///
/// When its holder dies, the next `acquire` still gets the lock and learns the dead
/// holder's pid, so that it can repair what the lock protects before carrying on.
public struct RobustLock {
    public let raw: UnsafeMutablePointer<ipc_robust_lock>

    @inlinable public init(_ raw: UnsafeMutablePointer<ipc_robust_lock>) { self.raw = raw }

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
    public func acquire(deadline: Deadline) -> Outcome {
        var r = ipc_robust_lock_try(raw)
        if r == EBUSY {
            // A short spin: critical sections last a few hundred nanoseconds.
            var spins = 0
            while r == EBUSY && spins < Spin.lockSpins {
                if ipc_robust_lock_looks_free(raw) != 0 { r = ipc_robust_lock_try(raw) } else { ipc_pause() }
                spins += 1
            }
        }
        if r == EBUSY {
            if let instant = deadline.instant, instant <= MonotonicClock.nanoseconds() {
                return .timedOut
            }
            Parking.parking(deadline)
            if var ts = deadline.timespec {
                r = ipc_robust_lock_acquire(raw, &ts)
            } else {
                r = ipc_robust_lock_acquire(raw, nil)
            }
            Parking.woke()
        }
        switch r {
        case 0:
            raw.pointee.holder = UInt32(bitPattern: ProcessIdentity.pid)
            return .acquired
        case EOWNERDEAD:
            let dead = Int32(bitPattern: raw.pointee.holder)
            raw.pointee.holder = UInt32(bitPattern: ProcessIdentity.pid)
            return .recovered(deadHolder: dead)
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

    /// Acquires, repairing with `repair(deadPid)` when the last holder died. Returns false
    /// when the deadline passed first.
    @inlinable
    public func acquire(deadline: Deadline, object: @autoclosure () -> String, during: String, repair: (Int32) -> Void) -> Bool {
        switch acquire(deadline: deadline) {
        case .acquired:
            return true
        case .recovered(let dead):
            repair(dead)
            markConsistent()
            Parking.recoveredFromDeadHolder?(object(), dead, during)
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
        raw.pointee.holder = 0
        return ipc_robust_lock_release(raw) == 0
    }

    /// The pid recorded by the current holder (0 when free).
    @inlinable public var holder: Int32 { Int32(bitPattern: ipc_load32(&raw.pointee.holder)) }
}
