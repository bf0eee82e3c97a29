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
        /// `probe`, when the wait has one, is `ready` as a test on shared memory that the
        /// deciding process evaluates itself (nil: only this process can tell).
        func park(until ready: () -> Bool, probe: Probe?, deadline: Deadline) -> Bool
    }

    // The state below lives in the core's execution context (`CoreExecution`).

    /// The probe of the last `Probe.wouldBlock()` evaluated in this process: a gate's
    /// `waits` predicate declares its probe so (see `Probe`). Read and cleared by the
    /// controlled scheduler right after it asks the predicate.
    @inlinable public static var declaredProbe: Probe? {
        get { CoreExecution.current.declaredProbe }
        set { CoreExecution.current.declaredProbe = newValue }
    }

    /// `declaredProbe`, cleared.
    @inlinable
    public static func takeDeclaredProbe() -> Probe? {
        defer { declaredProbe = nil }
        return declaredProbe
    }

    /// The controlled scheduler's, when one runs this process.
    @inlinable public static var controller: Controller? {
        get { CoreExecution.current.controller }
        set { CoreExecution.current.controller = newValue }
    }
    /// Told the deadline of the sleep that follows (`.never` for a wait with no end).
    @inlinable public static var willPark: ((Deadline) -> Void)? {
        get { CoreExecution.current.willPark }
        set { CoreExecution.current.willPark = newValue }
    }
    @inlinable public static var didWake: (() -> Void)? {
        get { CoreExecution.current.didWake }
        set { CoreExecution.current.didWake = newValue }
    }
    /// The process holding what the current call waits for (a lock's holder), for the
    /// hang and deadlock reports; 0 when unknown.
    @inlinable public static var awaitedHolder: Int32 {
        get { CoreExecution.current.awaitedHolder }
        set { CoreExecution.current.awaitedHolder = newValue }
    }
    /// Told when a lock is taken over from a process that died holding it. The runtime's
    /// warning names the call that took it over, which it reads from the gate: the core
    /// names no call.
    public static var recoveredFromDeadHolder: ((_ object: String, _ deadPid: Int32) -> Void)? {
        get { CoreExecution.current.recoveredFromDeadHolder }
        set { CoreExecution.current.recoveredFromDeadHolder = newValue }
    }

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
    /// may have become true. True when ready, false at the deadline. `probe`: `ready` as
    /// a test on shared memory, when it is one (a controlled run then never visits).
    @inlinable
    public static func wait(until ready: () -> Bool, futex word: UnsafeMutablePointer<UInt32>, deadline: Deadline,
                            probe: Probe? = nil) -> Bool {
        if ready() { return true }
        if deadline.hasExpired { return false }
        return parked(deadline) {
            if let c = controller { return c.park(until: ready, probe: probe, deadline: deadline) }
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
            let probe = Probe(word, .notEqual, expected)
            return c.park(until: { probe.holds }, probe: probe, deadline: deadline) ? .woken : .timedOut
        }
        return Futex.wait(word, expected: expected, deadline: deadline)
    }

    /// Waits until `fd` has any of `events` (POLLIN, POLLOUT). True when ready.
    public static func poll(_ fd: Int32, _ events: Int16, deadline: Deadline) -> Bool {
        if Poll.isReady(fd: fd, events: events) { return true }
        if deadline.hasExpired { return false }
        return parked(deadline) {
            // A descriptor's state is the kernel's: only a process that holds it can ask.
            if let c = controller { return c.park(until: { Poll.isReady(fd: fd, events: events) }, probe: nil, deadline: deadline) }
            return (try? Poll.wait(fd: fd, events: events, deadline: deadline)) ?? true
        }
    }

    /// Waits until any of `entries` is ready: their `revents` (all zero at the deadline).
    public static func poll(_ entries: [(fd: Int32, events: Int16)], deadline: Deadline) throws(SyscallError) -> [Int16] {
        let now = try Poll.wait(entries, deadline: .now)
        if now.contains(where: { $0 != 0 }) || deadline.hasExpired { return now }
        if let c = controller {
            _ = c.park(until: { (try? Poll.wait(entries, deadline: .now))?.contains { $0 != 0 } ?? true }, probe: nil, deadline: deadline)
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
                _ = c.park(until: { false }, probe: .never, deadline: deadline)
            } else {
                Syscall.shim("clock_nanosleep") { ipc_sleep_until(deadline.instant ?? Int64.max) }
            }
        }
    }

    /// Waits until `ready()` with nothing to sleep on but the controlled scheduler's turn
    /// (or, uncontrolled, short sleeps): for conditions no kernel object signals. `probe`
    /// as for `wait`.
    public static func poll(until ready: () -> Bool, deadline: Deadline, every interval: Int64 = 1_000_000,
                            probe: Probe? = nil) -> Bool {
        if ready() { return true }
        if deadline.hasExpired { return false }
        return parked(deadline) {
            if let c = controller { return c.park(until: ready, probe: probe, deadline: deadline) }
            while !ready() {
                if deadline.hasExpired { return false }
                MonotonicClock.sleep(nanoseconds: min(interval, deadline.remainingNanoseconds ?? interval))
            }
            return true
        }
    }
}

/// A blocked call's readiness as a test on shared memory: one or two words, each compared
/// (under a mask) with a value; ready when any clause holds, never with none. A controlled
/// run's deciding process evaluates it where the state is, in its own mapping of the same
/// region (`SharedRegion.locate`), instead of handing the turn to the blocked process and
/// back to ask it (a *visit*: two context switches).
///
/// A gate's `waits` predicate declares its probe by evaluating it through `wouldBlock()`.
/// What it tests besides must not change while the call waits (its own end's state: a
/// closed end, a lock it holds itself); when such a part decides alone, no probe is
/// declared, and the scheduler visits.
public struct Probe: @unchecked Sendable {
    public enum Test: UInt8, Sendable {
        /// Ready when the word differs from the value.
        case notEqual
        /// Ready when the word equals the value.
        case equal
        /// Ready when the word is below the value (unsigned).
        case below
    }

    public struct Clause: @unchecked Sendable {
        public let word: UnsafeRawPointer
        /// A 64-bit word (else 32).
        public let wide: Bool
        public let mask: UInt64
        public let test: Test
        public let value: UInt64

        @inlinable
        public init(word: UnsafeRawPointer, wide: Bool, mask: UInt64, test: Test, value: UInt64) {
            self.word = word
            self.wide = wide
            self.mask = mask
            self.test = test
            self.value = value
        }

        @inlinable
        public var holds: Bool {
            let w = (wide ? ipc_load64(UnsafeMutablePointer(mutating: word.assumingMemoryBound(to: UInt64.self)))
                : UInt64(ipc_load32(UnsafeMutablePointer(mutating: word.assumingMemoryBound(to: UInt32.self))))) & mask
            return Clause.compare(w, test, value)
        }

        @inlinable
        public static func compare(_ w: UInt64, _ test: Test, _ value: UInt64) -> Bool {
            switch test {
            case .notEqual: return w != value
            case .equal: return w == value
            case .below: return w < value
            }
        }
    }

    public let first: Clause?
    public let second: Clause?

    /// A wait that only its deadline ends (a sleep).
    public static let never = Probe(first: nil, second: nil)

    @usableFromInline
    init(first: Clause?, second: Clause?) {
        self.first = first
        self.second = second
    }

    /// Ready when `*word & mask` passes `test` against `value`.
    @inlinable
    public init(_ word: UnsafeMutablePointer<UInt32>, _ test: Test, _ value: UInt32, mask: UInt32 = .max) {
        self.init(first: Clause(word: UnsafeRawPointer(word), wide: false, mask: UInt64(mask), test: test, value: UInt64(value & mask)), second: nil)
    }

    @inlinable
    public init(_ word: UnsafeMutablePointer<UInt64>, _ test: Test, _ value: UInt64) {
        self.init(first: Clause(word: UnsafeRawPointer(word), wide: true, mask: .max, test: test, value: value), second: nil)
    }

    /// Ready when this or `other` is.
    @inlinable
    public func or(_ other: Probe) -> Probe {
        precondition(second == nil && other.second == nil, "a probe has at most two clauses")
        return Probe(first: first ?? other.first, second: first == nil ? nil : other.first)
    }

    /// True when the call can go now.
    @inlinable
    public var holds: Bool { (first?.holds ?? false) || (second?.holds ?? false) }

    /// The waits predicate's answer (true: the call would wait), declaring this probe as the
    /// pending call's.
    @inlinable
    public func wouldBlock() -> Bool {
        Blocking.declaredProbe = self
        return !holds
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
