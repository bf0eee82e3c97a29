import CSystemShim

/// `ipc.event()`: a flag that processes wait for.
public final class SharedEvent {
    public let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_event_header>
    public let name: String
    static let magic: UInt64 = 0x6970_6365_7665_6E74

    public init(name: String) throws(IPCError) {
        region = try SharedRegion(size: MemoryLayout<ipc_event_header>.size)
        h = region.header(ipc_event_header.self)
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        h.pointee.magic = Self.magic
        self.name = name
    }

    public var isSet: Bool { ipc_load32(&h.pointee.flag) != 0 }

    public func set() {
        ipc_store32(&h.pointee.flag, 1)
        if ipc_load32(&h.pointee.waiters) > 0 { Futex.wakeAll(&h.pointee.flag) }
    }

    public func clear() { ipc_store32(&h.pointee.flag, 0) }

    /// Waits until the flag is set or `deadline` passes; returns the flag.
    public func wait(deadline: Deadline) -> Bool {
        if isSet { return true }
        if deadline.hasExpired { return false }
        if Spin.until(Spin.waitSpins, { isSet }) { return true }
        _ = ipc_add32(&h.pointee.waiters, 1)
        defer { _ = ipc_sub32(&h.pointee.waiters, 1) }
        return Blocking.wait(until: { isSet }, futex: &h.pointee.flag, deadline: deadline)
    }
}
