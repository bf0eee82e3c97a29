import CSystemShim
import Glibc
import IPCCore

/// What the calling process is doing, for the board and the tools that read it (hang
/// reports, deadlock detection), and the hooks every IPC call passes through: jitter
/// (`--jitter`) now, tracing later. All cheap when their options are off.
public enum Calls {
    /// The call in progress and its object, e.g. ("queue:get", "jobs").
    nonisolated(unsafe) public static var call = ""
    nonisolated(unsafe) public static var object = ""
    /// True when an outside program could end the wait (sockets).
    nonisolated(unsafe) public static var external = false
    /// Nanoseconds of jitter at most, 0 when off.
    nonisolated(unsafe) static var jitterNanoseconds: UInt64 = 0
    nonisolated(unsafe) static var random = SplitMix64(seed: 0)

    /// Every IPC call starts here.
    @inline(__always)
    public static func enter(_ call: String, _ object: String, external: Bool = false) {
        self.call = call
        self.object = object
        self.external = external
        if jitterNanoseconds != 0 { jitter() }
        if Trace.isOn {
            Trace.callStart = MonotonicClock.nanoseconds()
            Trace.parkedTotal = 0
        }
    }

    /// A random delay before the call, reproducible from the seed.
    static func jitter() {
        let ns = random.next() % (jitterNanoseconds + 1)
        MonotonicClock.sleep(nanoseconds: Int64(ns))
    }

    /// Seeds this process's generator from the run's seed and the process's spawn path
    /// ("" for the main process, "2:1" for the first child of its second child), so that
    /// each process draws the same delays on a replay, whatever the scheduling.
    static func seedJitter(runSeed: UInt64, identity: String) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in identity.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        random = SplitMix64(seed: runSeed ^ h)
    }
}

/// SplitMix64: small, fast, and good enough to shake schedules.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
