import CSystemShim
import Glibc

/// `ipc.semaphore(n)` and `ipc.bounded_semaphore(n)`: a counter on a futex word.
///
/// A counter has no owner, so there is nothing for a dead process to leave locked: a
/// process killed inside `acquire` either took a unit or did not.
public final class SharedSemaphore {
    public let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_semaphore_header>
    public let name: String
    /// The bounded semaphore's maximum, or nil.
    public let bound: UInt32?
    public static let maximum: UInt32 = UInt32(Int32.max)
    static let magic: UInt64 = 0x6970_6373_656D_6100

    public init(value: UInt32, bound: UInt32?, name: String) throws(IPCError) {
        region = try SharedRegion(size: MemoryLayout<ipc_semaphore_header>.size)
        h = region.header(ipc_semaphore_header.self)
        h.pointee.value = value
        h.pointee.bound = bound.map { Int64($0) } ?? -1
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        h.pointee.magic = Self.magic
        self.name = name
        self.bound = bound
    }

    public var value: UInt32 { ipc_load32(&h.pointee.value) }
    /// Ready when a unit is there to take.
    public var availableProbe: Probe { Probe(&h.pointee.value, .notEqual, 0) }

    /// Takes one unit if one is there, without waiting (ipc_sync.h).
    func tryTake() -> Bool { ipc_semaphore_try_take(h) != 0 }

    /// Takes one unit, waiting until `deadline`. False on timeout.
    public func acquire(deadline: Deadline) -> Bool {
        if tryTake() { return true }
        if deadline.hasExpired { return false }
        if Spin.until(Spin.waitSpins, { ipc_load32(&h.pointee.value) > 0 && tryTake() }) { return true }
        _ = ipc_add32(&h.pointee.waiters, 1)
        defer { _ = ipc_sub32(&h.pointee.waiters, 1) }
        while true {
            if tryTake() { return true }
            guard Blocking.wait(until: { ipc_load32(&h.pointee.value) > 0 }, futex: &h.pointee.value, deadline: deadline,
                                probe: availableProbe) else {
                return tryTake()
            }
        }
    }

    public enum ReleaseOutcome: Equatable { case released, overBound }

    /// Adds `n` units (bounded: refused when the value would exceed the bound).
    public func release(_ n: UInt32) -> ReleaseOutcome { ipc_semaphore_release(h, n) != 0 ? .released : .overBound }
}
