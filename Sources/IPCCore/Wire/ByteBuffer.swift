import Glibc

/// A growable byte buffer that a process reuses for every message it encodes or
/// receives, so that the hot paths allocate nothing once it has grown.
///
/// Growing never traps: when memory is refused (malloc fails, or the buffer would pass
/// `limit`), the buffer stops taking bytes and sets `overflowed`, which its users turn
/// into an error.
public final class ByteBuffer {
    public private(set) var base: UnsafeMutableRawPointer
    public var count: Int = 0
    public private(set) var capacity: Int
    /// Set when a growth was refused; cleared by `reset()`.
    public var overflowed = false
    /// The largest size this buffer may reach.
    public var limit = Int.max
    /// Buffers that grew beyond this are shrunk back by `reset()`, so that one 64 MiB
    /// message does not pin 64 MiB for the rest of the run.
    public static let retainedCapacity = 1 << 20

    public init(capacity: Int = 4096) {
        self.capacity = max(capacity, 64)
        base = malloc(self.capacity)!
    }

    deinit { free(base) }

    /// Empties the buffer, giving back memory beyond `retainedCapacity`.
    @inlinable
    public func reset() {
        count = 0
        overflowed = false
        if capacity > Self.retainedCapacity { _ = resize(to: Self.retainedCapacity) }
    }

    /// Makes room for `extra` more bytes; false (and `overflowed`) when memory is refused.
    @inlinable @discardableResult
    public func reserve(_ extra: Int) -> Bool {
        if overflowed { return false }
        let (needed, o) = count.addingReportingOverflow(extra)
        if o || needed > limit { overflowed = true; return false }
        if needed > capacity { return grow(to: needed) }
        return true
    }

    @usableFromInline
    func grow(to needed: Int) -> Bool {
        var c = capacity
        while c < needed { c = c > Int.max / 2 ? needed : c * 2 }
        if !resize(to: min(c, max(limit, needed))) { overflowed = true; return false }
        return true
    }

    @usableFromInline
    func resize(to newCapacity: Int) -> Bool {
        guard let p = realloc(base, newCapacity) else { return false }
        base = p
        capacity = newCapacity
        return true
    }

    @inlinable
    public func append(_ byte: UInt8) {
        if count == capacity && !reserve(1) { return }
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inlinable
    public func append(_ bytes: UnsafeRawPointer, count n: Int) {
        guard reserve(n) else { return }
        (base + count).copyMemory(from: bytes, byteCount: n)
        count += n
    }

    @inlinable
    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard let b = bytes.baseAddress, bytes.count > 0 else { return }
        append(b, count: bytes.count)
    }

    @inlinable
    public func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        guard reserve(MemoryLayout<T>.size) else { return }
        (base + count).storeBytes(of: value.littleEndian, as: T.self)
        count += MemoryLayout<T>.size
    }

    /// LEB128, at most 10 bytes.
    @inlinable
    public func appendVarint(_ value: UInt64) {
        guard reserve(10) else { return }
        var v = value
        let p = base.assumingMemoryBound(to: UInt8.self)
        while v >= 0x80 {
            p[count] = UInt8(truncatingIfNeeded: v) | 0x80
            count += 1
            v >>= 7
        }
        p[count] = UInt8(v)
        count += 1
    }

    @inlinable
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
