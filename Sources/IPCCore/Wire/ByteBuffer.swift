import Glibc

/// A growable byte buffer that a process reuses for every message it encodes or
/// receives, so that the hot paths allocate nothing once it has grown.
///
/// Growing never traps: when memory is refused (malloc fails, or the buffer would pass
/// `limit`), the buffer stops taking bytes and sets `overflowed`, which its users turn
/// into an error. From then on it only counts what it is asked to take (`requested`), so
/// that the error can say how large the message was. Creating one never traps either: a
/// buffer whose first allocation is refused starts empty and tries again when it grows.
public final class ByteBuffer {
    public private(set) var base: UnsafeMutableRawPointer
    public var count: Int = 0
    public private(set) var capacity: Int
    /// Set when a growth was refused; cleared by `reset()`.
    public var overflowed = false
    /// Bytes asked for after the buffer overflowed, which it did not take.
    public var refused = 0
    /// The largest size this buffer may reach.
    public var limit = Int.max
    /// Buffers that grew beyond this are shrunk back (`shrink()`, and `recycle()` once
    /// large messages stop coming), so that one 64 MiB message does not pin 64 MiB for
    /// the rest of the run.
    public static let retainedCapacity = 1 << 20
    /// `recycle()`s in a row that used little of a grown buffer before it shrinks.
    public static let idleLimit = 8
    /// Those `recycle()`s so far.
    var idleUses = 0

    /// Stands for the storage of a buffer that has none (its allocation was refused).
    /// A constant, not state (made once, never written, the same in every process): it
    /// needs no execution context.
    static let noStorage = NoStorage()

    /// `noStorage`'s memory, which nothing writes: sendable, as a constant is.
    struct NoStorage: @unchecked Sendable {
        let base = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)
    }

    public init(capacity: Int = 4096) {
        let wanted = max(capacity, 64)
        if let p = malloc(wanted) {
            base = p
            self.capacity = wanted
        } else {
            base = Self.noStorage.base
            self.capacity = 0
        }
    }

    deinit { if capacity > 0 { free(base) } }

    /// The bytes the buffer was asked to hold: `count`, plus what it refused once it
    /// overflowed (an estimate: a varint is counted at its longest).
    @inlinable public var requested: Int { count &+ refused }

    /// Empties the buffer (its memory stays).
    @inlinable
    public func reset() {
        count = 0
        overflowed = false
        refused = 0
    }

    /// Gives back memory beyond `retainedCapacity` (the buffer must be empty).
    public func shrink() {
        idleUses = 0
        if capacity > Self.retainedCapacity { _ = resize(to: Self.retainedCapacity) }
    }

    /// Empties the buffer at the end of a call. A buffer that a large message grew stays
    /// grown while large messages keep coming: growing it again costs a page fault per
    /// 4 KiB each time, more than the copy. It shrinks after `idleLimit` calls in a row
    /// that used at most an eighth of it.
    @inlinable
    public func recycle() {
        let used = requested
        reset()
        if capacity > Self.retainedCapacity { noteUse(used) }
    }

    @usableFromInline
    func noteUse(_ used: Int) {
        if used > capacity / 8 {
            idleUses = 0
        } else {
            idleUses += 1
            if idleUses >= Self.idleLimit { shrink() }
        }
    }

    /// Makes room for `extra` more bytes; false (and `overflowed`) when memory is refused.
    @inlinable @discardableResult
    public func reserve(_ extra: Int) -> Bool {
        if overflowed { return refuse(extra) }
        let (needed, o) = count.addingReportingOverflow(extra)
        if o || needed > limit { return refuse(extra) }
        if needed > capacity { return grow(to: needed, extra: extra) }
        return true
    }

    /// Refuses `extra` bytes (and all that follow, counted in `refused`): false.
    @usableFromInline @inline(never)
    func refuse(_ extra: Int) -> Bool {
        refused = overflowed ? (refused.addingReportingOverflow(extra).overflow ? Int.max : refused + extra) : extra
        overflowed = true
        return false
    }

    @usableFromInline
    func grow(to needed: Int, extra: Int) -> Bool {
        var c = max(capacity, 64)
        while c < needed { c = c > Int.max / 2 ? needed : c * 2 }
        if !resize(to: min(c, max(limit, needed))) && !resize(to: needed) { return refuse(extra) }
        return true
    }

    @usableFromInline
    func resize(to newCapacity: Int) -> Bool {
        guard let p = capacity == 0 ? malloc(newCapacity) : realloc(base, newCapacity) else { return false }
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
