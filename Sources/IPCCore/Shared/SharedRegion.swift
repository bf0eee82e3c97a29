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
    /// Names this mapping in every process that inherited it by fork (a region adopted from
    /// a descriptor is another mapping, with another identity).
    public let identity: UInt64

    /// The regions this process maps: where a process finds, at its own address, a word
    /// that another process of the run names by (identity, offset). A fork inherits them
    /// with the mappings; a region leaves it when this process unmaps it. Kept in the
    /// core's context (made at its first use), read and changed in place.
    static var registry: Registry {
        _read {
            if CoreExecution.current.regions == nil { CoreExecution.current.regions = Registry() }
            yield CoreExecution.current.regions!
        }
        _modify {
            if CoreExecution.current.regions == nil { CoreExecution.current.regions = Registry() }
            yield &CoreExecution.current.regions!
        }
    }

    struct Registry {
        /// By base address, for `identify`.
        var byBase: [UInt: (size: Int, identity: UInt64)] = [:]
        var byIdentity: [UInt64: UnsafeMutableRawPointer] = [:]
        var made: UInt64 = 0

        mutating func add(_ base: UnsafeMutableRawPointer, size: Int) -> UInt64 {
            // Unique among the run's processes: the maker's pid, the time, a count.
            made &+= 1
            var z = UInt64(UInt32(bitPattern: ProcessIdentity.pid)) << 40 ^ UInt64(bitPattern: MonotonicClock.real()) ^ made &* 0x9e37_79b9_7f4a_7c15
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            let identity = (z ^ (z >> 31)) | 1
            byBase[UInt(bitPattern: base)] = (size, identity)
            byIdentity[identity] = base
            return identity
        }

        mutating func remove(_ identity: UInt64) {
            guard let base = byIdentity.removeValue(forKey: identity) else { return }
            byBase[UInt(bitPattern: base)] = nil
        }
    }

    /// The region of this process that holds `address`: its identity and the offset there.
    /// Regions are page-aligned and probed words lie near their start (a header), so the
    /// pages just below come first; any other place, by a look at every region.
    public static func identify(_ address: UnsafeRawPointer) -> (identity: UInt64, offset: Int)? {
        let a = UInt(bitPattern: address)
        let page = UInt(Memory.pageSize)
        var base = a & ~(page - 1)
        for _ in 0..<16 {
            if let r = registry.byBase[base], a - base < UInt(r.size) { return (r.identity, Int(a - base)) }
            if base < page { break }
            base -= page
        }
        for (base, r) in registry.byBase where a >= base && a - base < UInt(r.size) { return (r.identity, Int(a - base)) }
        return nil
    }

    /// Where this process maps the word at `offset` of the region named `identity`; nil
    /// when it does not map that region.
    public static func locate(_ identity: UInt64, offset: Int) -> UnsafeMutableRawPointer? {
        registry.byIdentity[identity].map { $0 + offset }
    }

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
        identity = Self.registry.add(base, size: rounded)
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
        identity = Self.registry.add(base, size: rounded)
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
        identity = Self.registry.add(base, size: self.size)
    }

    deinit {
        Self.registry.remove(identity)
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
