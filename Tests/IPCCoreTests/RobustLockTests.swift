import CSystemShim
import Glibc
@testable import IPCCore
import Testing

@Suite("A robust lock's spinning try")
struct RobustLockTests {
    /// A lock in memory of its own (process-private is enough within one process).
    func withLock(_ body: (UnsafeMutablePointer<ipc_robust_lock>) throws -> Void) throws {
        let raw = UnsafeMutablePointer<ipc_robust_lock>.allocate(capacity: 1)
        defer { raw.deallocate() }
        try RobustLock(raw).initialize()
        try body(raw)
    }

    @Test func takesAFreeLock() throws {
        try withLock { raw in
            #expect(ipc_robust_lock_try_spinning(raw, 0, IPC_OWNED_LOCK_MAX_GAP) == 0)
            #expect(ipc_robust_lock_release(raw) == 0)
        }
    }

    @Test func givesUpOnAHeldLockOnceItsBudgetIsSpent() throws {
        try withLock { raw in
            #expect(ipc_robust_lock_try(raw) == 0)
            // Held by this thread: every look finds it taken; the budget ends the spin.
            #expect(ipc_robust_lock_try_spinning(raw, 1_000, IPC_OWNED_LOCK_MAX_GAP) == EBUSY)
            #expect(ipc_robust_lock_try_spinning(raw, 0, IPC_OWNED_LOCK_MAX_GAP) == EBUSY)
            #expect(ipc_robust_lock_release(raw) == 0)
            #expect(ipc_robust_lock_try_spinning(raw, 1_000, IPC_OWNED_LOCK_MAX_GAP) == 0)
            #expect(ipc_robust_lock_release(raw) == 0)
        }
    }

    @Test func leavesAHolderThatDiedToTheCaller() throws {
        try withLock { raw in
            // A thread that exits holding a robust mutex leaves it as a dead process would.
            var thread = pthread_t()
            let taken = pthread_create(&thread, nil, { arg in
                _ = ipc_robust_lock_try(arg!.assumingMemoryBound(to: ipc_robust_lock.self))
                return nil
            }, raw)
            #expect(taken == 0)
            pthread_join(thread, nil)
            // Its word holds only the owner-died bit: it never looks free, so the spin
            // leaves the takeover to the caller's own trylock or blocking acquire.
            #expect(ipc_robust_lock_try_spinning(raw, 1_000, IPC_OWNED_LOCK_MAX_GAP) == EBUSY)
            #expect(ipc_robust_lock_available(raw) != 0)
            #expect(ipc_robust_lock_try(raw) == EOWNERDEAD)
            #expect(ipc_robust_lock_consistent(raw) == 0)
            #expect(ipc_robust_lock_release(raw) == 0)
            #expect(ipc_robust_lock_try_spinning(raw, 0, IPC_OWNED_LOCK_MAX_GAP) == 0)
            #expect(ipc_robust_lock_release(raw) == 0)
        }
    }
}
