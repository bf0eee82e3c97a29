/// The encoding of values that travel through queues and pipes.
///
/// One tag byte per value, then its payload, little-endian:
///
/// | tag | value |
/// | --- | --- |
/// | `0x00` | nil |
/// | `0x01` / `0x02` | false / true |
/// | `0x03` + zigzag varint | integer (64-bit, stays an integer) |
/// | `0x04` + 8 bytes | float, IEEE 754 bit pattern (NaN payloads, infinities and -0.0 kept) |
/// | `0x05` + varint length + bytes | string (any bytes) |
/// | `0x06` + varint n + varint m + n values + m key/value pairs | table: array part 1..n, then the rest |
/// | `0x80...0xBF` | integer 0...63 in one byte |
/// | `0xC0...0xDF` + bytes | string of 0...31 bytes |
///
/// A decoder trusts nothing: every length is checked against the bytes that remain, so a
/// malformed message is an error, never a crash or an allocation beyond its own size.
public enum WireTag {
    public static let `nil`: UInt8 = 0x00
    public static let `false`: UInt8 = 0x01
    public static let `true`: UInt8 = 0x02
    public static let integer: UInt8 = 0x03
    public static let float: UInt8 = 0x04
    public static let string: UInt8 = 0x05
    public static let table: UInt8 = 0x06
    public static let fixIntBase: UInt8 = 0x80
    public static let fixIntMax: Int64 = 63
    public static let fixStringBase: UInt8 = 0xC0
    public static let fixStringMax = 31
}

/// Zigzag: small negative numbers become small unsigned ones.
@inlinable public func zigzagEncode(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
@inlinable public func zigzagDecode(_ u: UInt64) -> Int64 { Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1))) }

extension ByteBuffer {
    @inlinable
    public func appendInteger(_ v: Int64) {
        if v >= 0 && v <= WireTag.fixIntMax {
            append(WireTag.fixIntBase | UInt8(v))
        } else {
            append(WireTag.integer)
            appendVarint(zigzagEncode(v))
        }
    }

    @inlinable
    public func appendFloat(_ v: Double) {
        append(WireTag.float)
        appendLittleEndian(v.bitPattern)
    }

    @inlinable
    public func appendString(_ bytes: UnsafeRawPointer?, count n: Int) {
        if n <= WireTag.fixStringMax {
            append(WireTag.fixStringBase | UInt8(n))
        } else {
            append(WireTag.string)
            appendVarint(UInt64(n))
        }
        if n > 0, let bytes { append(bytes, count: n) }
    }

    @inlinable
    public func appendTableHeader(arrayCount: Int, hashCount: Int) {
        append(WireTag.table)
        appendVarint(UInt64(arrayCount))
        appendVarint(UInt64(hashCount))
    }
}

/// A bounds-checked cursor over received bytes.
public struct WireReader {
    public let base: UnsafeRawPointer
    public let end: Int
    public var offset: Int = 0

    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer) {
        base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!
        end = bytes.count
    }

    @inlinable public var remaining: Int { end - offset }
    @inlinable public var isAtEnd: Bool { offset >= end }

    @inlinable
    public mutating func byte() throws(IPCError) -> UInt8 {
        guard offset < end else { throw IPCError.malformed("message ends early") }
        let b = base.load(fromByteOffset: offset, as: UInt8.self)
        offset += 1
        return b
    }

    @inlinable
    public mutating func varint() throws(IPCError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            if shift == 63 && b > 1 { throw IPCError.malformed("varint overflows 64 bits") }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw IPCError.malformed("varint longer than 10 bytes") }
        }
    }

    /// A count that must be backed by at least `minimumBytesEach` bytes per element.
    @inlinable
    public mutating func count(minimumBytesEach: Int) throws(IPCError) -> Int {
        let v = try varint()
        guard v <= UInt64(remaining / max(minimumBytesEach, 1)) else {
            throw IPCError.malformed("count \(v) exceeds the \(remaining) bytes left")
        }
        return Int(v)
    }

    @inlinable
    public mutating func littleEndian64() throws(IPCError) -> UInt64 {
        guard remaining >= 8 else { throw IPCError.malformed("message ends early") }
        let v = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset += 8
        return UInt64(littleEndian: v)
    }

    /// `n` bytes in place.
    @inlinable
    public mutating func bytes(_ n: Int) throws(IPCError) -> UnsafeRawPointer {
        guard n >= 0, n <= remaining else { throw IPCError.malformed("string of \(n) bytes exceeds the \(remaining) left") }
        let p = base + offset
        offset += n
        return p
    }
}
