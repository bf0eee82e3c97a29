import CSystemShim
import Glibc

/// `ipc.condition([lock])`: waiters park on their own slot, so that `notify(n)` wakes
/// exactly `n` of them, oldest first (a shared sequence word cannot promise that). Every
/// operation happens with the condition's lock held, which orders the slot updates.
public final class SharedCondition {
    public let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_condition_header>
    /// The lock object (kept alive with the condition) and its lock.
    public let lockObject: AnyObject
    public let lock: OwnedLock
    public let name: String
    static let magic: UInt64 = 0x6970_6363_6F6E_6400
    /// How many processes can wait at once.
    public static let maxWaiters = Int(IPC_CONDITION_SLOTS)

    public init(lock: OwnedLock, owner: AnyObject, name: String) throws(IPCError) {
        region = try SharedRegion(size: MemoryLayout<ipc_condition_header>.size)
        h = region.header(ipc_condition_header.self)
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        h.pointee.magic = Self.magic
        self.lock = lock
        lockObject = owner
        self.name = name
    }

    func slot(_ i: Int) -> UnsafeMutablePointer<ipc_condition_slot> {
        let offset = MemoryLayout<ipc_condition_header>.offset(of: \.slots)!
        return (UnsafeMutableRawPointer(h) + offset).assumingMemoryBound(to: ipc_condition_slot.self) + i
    }

    public enum WaitOutcome: Equatable { case notified, timedOut, notHeld, tooManyWaiters }

    /// Releases the lock, waits for a notify (or `deadline`), takes the lock back.
    public func wait(deadline: Deadline) -> WaitOutcome {
        guard lock.isHeldByMe else { return .notHeld }
        var mine: UnsafeMutablePointer<ipc_condition_slot>?
        for i in 0..<Int(IPC_CONDITION_SLOTS) {
            let s = slot(i)
            let ticket = s.pointee.ticket
            if ticket == 0 || !ProcessControl.exists(Int32(bitPattern: s.pointee.pid)) {
                s.pointee.pid = UInt32(bitPattern: ProcessIdentity.pid)
                ipc_store32(&s.pointee.word, 0)
                h.pointee.next_ticket += 1
                ipc_store64(&s.pointee.ticket, h.pointee.next_ticket)
                mine = s
                break
            }
        }
        guard let s = mine else { return .tooManyWaiters }
        let depth = lock.releaseFully()
        _ = Blocking.wait(until: { ipc_load32(&s.pointee.word) != 0 }, futex: &s.pointee.word, deadline: deadline,
                          probe: Probe(&s.pointee.word, .notEqual, 0))
        lock.reacquire(depth: depth)
        // Under the lock again: a notify that raced with the timeout still counts.
        let notified = ipc_load32(&s.pointee.word) != 0
        ipc_store64(&s.pointee.ticket, 0)
        return notified ? .notified : .timedOut
    }

    /// Wakes up to `n` waiters, oldest first. False when the lock is not held.
    public func notify(_ n: Int) -> Bool {
        guard lock.isHeldByMe else { return false }
        var waiting: [(ticket: UInt64, slot: UnsafeMutablePointer<ipc_condition_slot>)] = []
        for i in 0..<Int(IPC_CONDITION_SLOTS) {
            let s = slot(i)
            let ticket = s.pointee.ticket
            guard ticket != 0, ipc_load32(&s.pointee.word) == 0 else { continue }
            if !ProcessControl.exists(Int32(bitPattern: s.pointee.pid)) {
                ipc_store64(&s.pointee.ticket, 0)  // its waiter died
                continue
            }
            waiting.append((ticket, s))
        }
        waiting.sort { $0.ticket < $1.ticket }
        for (_, s) in waiting.prefix(max(0, n)) {
            ipc_store32(&s.pointee.word, 1)
            Futex.wake(&s.pointee.word, count: 1)
        }
        return true
    }

    /// How many processes wait (a snapshot).
    public var waiterCount: Int {
        (0..<Int(IPC_CONDITION_SLOTS)).filter { slot($0).pointee.ticket != 0 && ipc_load32(&slot($0).pointee.word) == 0 }.count
    }
}
