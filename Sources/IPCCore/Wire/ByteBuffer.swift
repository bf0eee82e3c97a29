/// A growable byte buffer that a process reuses for every message it encodes or
/// receives, so that the hot paths allocate nothing once it has grown.
public final class ByteBuffer {
    public private(set) var base: UnsafeMutableRawPointer
    public var count: Int = 0
    public private(set) var capacity: Int
    /// Buffers that grew beyond this are shrunk back by `reset()`, so that one 64 MiB
    /// message does not pin 64 MiB for the rest of the run.
    public static let retainedCapacity = 1 << 20

    public init(capacity: Int = 4096) {
        self.capacity = max(capacity, 64)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// Empties the buffer, giving back memory beyond `retainedCapacity`.
    @inlinable
    public func reset() {
        count = 0
        if capacity > Self.retainedCapacity { resize(to: Self.retainedCapacity) }
    }

    /// Makes room for `extra` more bytes. Throws when the total would exceed `limit`.
    @inlinable
    public func reserve(_ extra: Int) {
        let needed = count + extra
        if needed > capacity { grow(to: needed) }
    }

    @usableFromInline
    func grow(to needed: Int) {
        var c = capacity
        while c < needed { c = c > Int.max / 2 ? needed : c * 2 }
        resize(to: c)
    }

    @usableFromInline
    func resize(to newCapacity: Int) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        p.copyMemory(from: base, byteCount: min(count, newCapacity))
        base.deallocate()
        base = p
        capacity = newCapacity
    }

    @inlinable
    public func append(_ byte: UInt8) {
        if count == capacity { grow(to: count + 1) }
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inlinable
    public func append(_ bytes: UnsafeRawPointer, count n: Int) {
        reserve(n)
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
        reserve(MemoryLayout<T>.size)
        (base + count).storeBytes(of: value.littleEndian, as: T.self)
        count += MemoryLayout<T>.size
    }

    /// LEB128, at most 10 bytes.
    @inlinable
    public func appendVarint(_ value: UInt64) {
        reserve(10)
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
