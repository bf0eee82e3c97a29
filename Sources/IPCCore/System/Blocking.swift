import CSystemShim
import Glibc
import SystemPackage

/// The one place where an IPC call may sleep in the kernel.
///
/// Every blocking wait of the core says what it waits for (a condition it can check
/// without side effects) and what to sleep on (a futex word, a mutex, a descriptor, the
/// clock). The runtime watches the sleeps (what each process is blocked in, for hang
/// reports and deadlock detection), and a controlled scheduler replaces them: instead of
/// sleeping, the process hands its turn to another one and gets it back when its
/// condition may hold or its deadline is the earliest (see IPCRuntime's `Schedule`).
public enum Blocking {
    /// What a wait does instead of sleeping, under a controlled scheduler.
    public protocol Controller: AnyObject {
        /// Returns true once `ready()` holds, false when `deadline` (virtual) passes first.
        func park(until ready: () -> Bool, deadline: Deadline) -> Bool
    }

    /// The controlled scheduler's, when one runs this process.
    nonisolated(unsafe) public static var controller: Controller?
    /// Told the deadline of the sleep that follows (`.never` for a wait with no end).
    nonisolated(unsafe) public static var willPark: ((Deadline) -> Void)?
    nonisolated(unsafe) public static var didWake: (() -> Void)?
    /// The process holding what the current call waits for (a lock's holder), for the
    /// hang and deadlock reports; 0 when unknown.
    nonisolated(unsafe) public static var awaitedHolder: Int32 = 0
    /// Told when a lock is taken over from a process that died holding it. The runtime's
    /// warning names the call that took it over, which it reads from the gate: the core
    /// names no call.
    nonisolated(unsafe) public static var recoveredFromDeadHolder: ((_ object: String, _ deadPid: Int32) -> Void)?

    /// True under a controlled scheduler: waits never spin (the process they wait for
    /// cannot run meanwhile) and never sleep in the kernel.
    @inlinable public static var isControlled: Bool { controller != nil }

    /// Brackets a stretch in which the caller may sleep (one or more waits), so that the
    /// runtime sees it as one park.
    @inlinable
    public static func parked<T>(_ deadline: Deadline, _ body: () -> T) -> T {
        willPark?(deadline)
        defer { didWake?() }
        return body()
    }

    /// Waits until `ready()`, sleeping on the futex `word`, which changes whenever `ready`
    /// may have become true. True when ready, false at the deadline.
    @inlinable
    public static func wait(until ready: () -> Bool, futex word: UnsafeMutablePointer<UInt32>, deadline: Deadline) -> Bool {
        if ready() { return true }
        if deadline.hasExpired { return false }
        return parked(deadline) {
            if let c = controller { return c.park(until: ready, deadline: deadline) }
            while true {
                let seen = ipc_load32(word)
                if ready() { return true }
                if Futex.wait(word, expected: seen, deadline: deadline) == .timedOut { return ready() }
            }
        }
    }

    /// One futex sleep while `*word == expected` (the caller loops and parks).
    @inlinable
    public static func sleep(on word: UnsafeMutablePointer<UInt32>, while expected: UInt32, deadline: Deadline) -> Futex.WaitResult {
        if let c = controller {
            return c.park(until: { ipc_load32(word) != expected }, deadline: deadline) ? .woken : .timedOut
        }
        return Futex.wait(word, expected: expected, deadline: deadline)
    }

    /// Waits until `fd` has any of `events` (POLLIN, POLLOUT). True when ready.
    public static func poll(_ fd: Int32, _ events: Int16, deadline: Deadline) -> Bool {
        if Poll.isReady(fd: fd, events: events) { return true }
        if deadline.hasExpired { return false }
        return parked(deadline) {
            if let c = controller { return c.park(until: { Poll.isReady(fd: fd, events: events) }, deadline: deadline) }
            return (try? Poll.wait(fd: fd, events: events, deadline: deadline)) ?? true
        }
    }

    /// Waits until any of `entries` is ready: their `revents` (all zero at the deadline).
    public static func poll(_ entries: [(fd: Int32, events: Int16)], deadline: Deadline) throws(SyscallError) -> [Int16] {
        let now = try Poll.wait(entries, deadline: .now)
        if now.contains(where: { $0 != 0 }) || deadline.hasExpired { return now }
        if let c = controller {
            _ = c.park(until: { (try? Poll.wait(entries, deadline: .now))?.contains { $0 != 0 } ?? true }, deadline: deadline)
            return try Poll.wait(entries, deadline: .now)
        }
        return try Poll.wait(entries, deadline: deadline)
    }

    /// Sleeps until `deadline` (an `ipc.sleep`, or a wait that can only time out); with
    /// no deadline, for ever.
    public static func sleep(until deadline: Deadline) {
        if deadline.hasExpired { return }
        parked(deadline) {
            if let c = controller {
                _ = c.park(until: { false }, deadline: deadline)
            } else {
                Syscall.shim("clock_nanosleep") { ipc_sleep_until(deadline.instant ?? Int64.max) }
            }
        }
    }

    /// Waits until `ready()` with nothing to sleep on but the controlled scheduler's turn
    /// (or, uncontrolled, short sleeps): for conditions no kernel object signals.
    public static func poll(until ready: () -> Bool, deadline: Deadline, every interval: Int64 = 1_000_000) -> Bool {
        if ready() { return true }
        if deadline.hasExpired { return false }
        return parked(deadline) {
            if let c = controller { return c.park(until: ready, deadline: deadline) }
            while !ready() {
                if deadline.hasExpired { return false }
                MonotonicClock.sleep(nanoseconds: min(interval, deadline.remainingNanoseconds ?? interval))
            }
            return true
        }
    }
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
    /// time slice to end; when it runs elsewhere, a yield returns at once. Under a
    /// controlled scheduler nothing else runs meanwhile: one look, no spin.
    @inlinable
    public static func until(_ budget: Int = waitSpins, _ ready: () -> Bool) -> Bool {
        if Blocking.isControlled { return ready() }
        var i = 0
        while i < budget {
            if ready() { return true }
            if i % yieldEvery == yieldEvery - 1 { sched_yield() } else { ipc_pause() }
            i += 1
        }
        return false
    }
}
