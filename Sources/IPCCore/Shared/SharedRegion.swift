import CSystemShim
import Glibc
import SystemPackage

/// Anonymous shared memory (`mmap(MAP_SHARED|MAP_ANONYMOUS)`): every process forked after
/// it is made sees the same bytes. No file names it, so no other user can map it.
///
/// Each process holds its own mapping: `deinit` unmaps it in this process only.
public final class SharedRegion {
    public let base: UnsafeMutableRawPointer
    public let size: Int
    /// The process that made the region.
    public let creator: Int32
    /// For a region that can be handed to another process over a Unix socket: its
    /// `memfd` (anonymous too: no path names it). -1 otherwise.
    public let fd: Int32

    /// Maps `size` bytes (rounded up to whole pages), zero-filled. With `reserveOnly`, the
    /// pages cost nothing until they are touched (MAP_NORESERVE).
    public init(size: Int, reserveOnly: Bool = false) throws(IPCError) {
        let page = Memory.pageSize
        guard size > 0, size <= Int.max - page else {
            throw IPCError.resource("cannot map \(size) bytes of shared memory")
        }
        let rounded = (size + page - 1) / page * page
        do {
            base = try Memory.mapShared(size: rounded, reserveOnly: reserveOnly)
        } catch {
            throw IPCError.resource("cannot map \(describeSize(rounded)) of shared memory: \(error)")
        }
        self.size = rounded
        creator = ProcessIdentity.pid
        fd = -1
    }

    /// A region backed by a `memfd`, so that its descriptor can be passed (SCM_RIGHTS)
    /// to a process that was not forked from this one.
    public init(passableSize size: Int, name: String) throws(IPCError) {
        let page = Memory.pageSize
        let rounded = (size + page - 1) / page * page
        let fd = ipc_memfd(name, rounded)
        guard fd >= 0 else { throw IPCError.resource("cannot create shared memory: \(Errno(rawValue: -fd))") }
        guard let p = ipc_map_fd(fd, rounded) else {
            let e = Syscall.lastError
            close(fd)
            throw IPCError.resource("cannot map shared memory: \(e)")
        }
        base = p
        self.size = rounded
        self.fd = fd
        creator = ProcessIdentity.pid
    }

    /// Maps a region received as a descriptor (takes ownership of `fd`).
    public init(adopting fd: Int32) throws(IPCError) {
        let size = ipc_fd_size(fd)
        guard size > 0, let p = ipc_map_fd(fd, Int(size)) else {
            close(fd)
            throw IPCError.malformed("the descriptor received is not a shared-memory region")
        }
        base = p
        self.size = Int(size)
        self.fd = fd
        creator = ProcessIdentity.pid
    }

    deinit {
        Memory.unmap(base, size: size)
        if fd >= 0 { close(fd) }
    }

    /// The header at the start of the region.
    @inlinable
    public func header<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        base.assumingMemoryBound(to: T.self)
    }
}

/// A size for messages: "512 bytes", "7 TiB", "900 MiB" (rounded to the unit).
public func describeSize(_ bytes: Int) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var v = Double(bytes)
    var i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(bytes) bytes" : "\(Int(v.rounded())) \(units[i])"
}

/// Copies `name` into a fixed C array of `capacity` bytes, NUL-terminated and truncated.
@inlinable
public func storeName<T>(_ name: String, into field: UnsafeMutablePointer<T>, capacity: Int) {
    let raw = UnsafeMutableRawPointer(field).assumingMemoryBound(to: UInt8.self)
    var name = name
    name.withUTF8 { utf8 in
        // Truncate on a character boundary (never split a UTF-8 sequence).
        var n = min(utf8.count, capacity - 1)
        while n > 0 && n < utf8.count && utf8[n] & 0xC0 == 0x80 { n -= 1 }
        if n > 0 { raw.update(from: utf8.baseAddress!, count: n) }
        raw[n] = 0
    }
}

/// Reads a NUL-terminated fixed C array of `capacity` bytes.
@inlinable
public func loadName<T>(from field: UnsafePointer<T>, capacity: Int) -> String {
    let raw = UnsafeRawPointer(field).assumingMemoryBound(to: UInt8.self)
    var n = 0
    while n < capacity && raw[n] != 0 { n += 1 }
    return String(decoding: UnsafeBufferPointer(start: raw, count: n), as: UTF8.self)
}
