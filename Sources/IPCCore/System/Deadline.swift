import CSystemShim
import Glibc

/// The monotonic clock, in nanoseconds: the one clock of ipcplay (the core's deadlines,
/// the runtime's hang board and traces, the command line's own bookkeeping).
///
/// Under a controlled scheduler, time is virtual: `nanoseconds()` reads the run's
/// virtual clock (a word in the run's shared board, moved only by the scheduler), so that
/// every deadline, `ipc.now` and `ipc.sleep` follow the schedule, not the machine; and
/// `traceNanoseconds()` adds a microsecond per step taken, so that a replay's trace draws
/// the same picture.
public enum MonotonicClock {
    /// The run's virtual clock, when one is in force (in the core's context).
    @inlinable public static var virtual: UnsafeMutablePointer<UInt64>? {
        get { CoreExecution.current.virtualClock }
        set { CoreExecution.current.virtualClock = newValue }
    }
    /// The steps the controlled scheduler has taken, when one runs (with `virtual`).
    @inlinable public static var steps: UnsafeMutablePointer<UInt64>? {
        get { CoreExecution.current.steps }
        set { CoreExecution.current.steps = newValue }
    }

    /// Now, on the run's clock (virtual under a controlled scheduler).
    @inlinable
    public static func nanoseconds() -> Int64 {
        if let v = virtual { return Int64(bitPattern: ipc_load64(v)) }
        return ipc_monotonic_ns()
    }

    /// Now, on the machine's clock, whatever the run's clock is (time actually spent:
    /// hang reports, a command's own timing).
    @inlinable
    public static func real() -> Int64 { ipc_monotonic_ns() }

    /// Now, for a trace: real time, or under a controlled scheduler the schedule's own
    /// (virtual time plus a microsecond per step).
    @inlinable
    public static func traceNanoseconds() -> Int64 {
        guard let v = virtual, let steps else { return ipc_monotonic_ns() }
        return Int64(bitPattern: ipc_load64(v)) &+ Int64(bitPattern: ipc_load64(steps)) &* 1000
    }

    /// `nanoseconds()` in seconds (the run's clock: `ipc.now`).
    @inlinable
    public static func seconds() -> Double {
        Double(nanoseconds()) / 1e9
    }

    /// `real()` in seconds.
    @inlinable
    public static func realSeconds() -> Double { Double(ipc_monotonic_ns()) / 1e9 }

    /// Sleeps `ns` nanoseconds of real time, resumed after signals with the time left.
    public static func sleep(nanoseconds ns: Int64) {
        guard ns > 0 else { return }
        let end = ipc_monotonic_ns() &+ ns
        Syscall.shim("clock_nanosleep") { ipc_sleep_until(end < 0 ? Int64.max : end) }
    }

    /// Sleeps `seconds` of real time.
    public static func sleep(seconds: Double) {
        sleep(nanoseconds: seconds >= 9e9 ? Int64.max : Int64(max(0, seconds) * 1e9))
    }
}

/// When a blocking call gives up: never, or an instant on the monotonic clock. Kept
/// absolute so that a wait interrupted by a signal resumes with the time left, not a new
/// timeout.
public struct Deadline: Sendable, Equatable {
    /// Nanoseconds on the run's clock, or nil for no deadline.
    public let instant: Int64?

    /// (Computed: a stored static would cost a once-check at every call that passes it.)
    @inlinable public static var never: Deadline { Deadline(instant: nil) }

    /// Already passed: the call must not block.
    public static var now: Deadline { Deadline(instant: MonotonicClock.nanoseconds()) }

    @inlinable
    public init(instant: Int64?) { self.instant = instant }

    /// `seconds` from now; zero or negative means "do not block".
    public static func after(seconds: Double) -> Deadline {
        let now = MonotonicClock.nanoseconds()
        if seconds <= 0 { return Deadline(instant: now) }
        let ns = seconds * 1e9
        if ns >= Double(Int64.max - now) { return .never }
        return Deadline(instant: now + Int64(ns))
    }

    public var isNever: Bool { instant == nil }

    public var hasExpired: Bool {
        guard let instant else { return false }
        return MonotonicClock.nanoseconds() >= instant
    }

    /// Nanoseconds left (0 when passed), nil when there is no deadline.
    public var remainingNanoseconds: Int64? {
        guard let instant else { return nil }
        return max(0, instant - MonotonicClock.nanoseconds())
    }

    /// The absolute deadline as a `timespec`, for futex and pthread calls.
    @inlinable
    public var timespec: Glibc.timespec? {
        guard let instant else { return nil }
        return Glibc.timespec(tv_sec: Int(instant / 1_000_000_000), tv_nsec: Int(instant % 1_000_000_000))
    }

    /// The time left in whole milliseconds rounded up, for poll(2); -1 for no deadline.
    public var pollMilliseconds: Int32 {
        guard let left = remainingNanoseconds else { return -1 }
        let ms = (left + 999_999) / 1_000_000
        return Int32(min(ms, Int64(Int32.max)))
    }

    /// The earlier of two deadlines.
    public func earlier(_ other: Deadline) -> Deadline {
        switch (instant, other.instant) {
        case (nil, _): return other
        case (_, nil): return self
        case let (a?, b?): return Deadline(instant: min(a, b))
        }
    }
}
