import CSystemShim
import Glibc

/// The element types of `ipc.value` and `ipc.array`: Python's `array`/`ctypes` typecodes.
public enum ScalarType: UInt8, CaseIterable, Sendable {
    case int8, uint8, int16, uint16, int32, uint32, long, ulong, int64, uint64, float32, float64, char, bool

    public init?(typecode: String) {
        switch typecode {
        case "b": self = .int8
        case "B": self = .uint8
        case "h": self = .int16
        case "H": self = .uint16
        case "i": self = .int32
        case "I": self = .uint32
        case "l": self = .long
        case "L": self = .ulong
        case "q": self = .int64
        case "Q": self = .uint64
        case "f": self = .float32
        case "d": self = .float64
        case "c": self = .char
        case "?": self = .bool
        default: return nil
        }
    }

    public var typecode: String {
        ["b", "B", "h", "H", "i", "I", "l", "L", "q", "Q", "f", "d", "c", "?"][Int(rawValue)]
    }

    public var size: Int {
        switch self {
        case .int8, .uint8, .char, .bool: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .long, .ulong, .int64, .uint64, .float64: return 8
        }
    }

    public var isSigned: Bool { [.int8, .int16, .int32, .long, .int64].contains(self) }
    public var isUnsigned: Bool { [.uint8, .uint16, .uint32, .ulong, .uint64].contains(self) }
    public var isInteger: Bool { isSigned || isUnsigned }
    public var isFloat: Bool { self == .float32 || self == .float64 }

    /// The range of a signed type, as Int64.
    var signedRange: ClosedRange<Int64> {
        let bits = size * 8
        if bits == 64 { return Int64.min...Int64.max }
        return -(Int64(1) << (bits - 1))...((Int64(1) << (bits - 1)) - 1)
    }

    /// The maximum of an unsigned type.
    var unsignedMax: UInt64 { size == 8 ? UInt64.max : (UInt64(1) << (size * 8)) - 1 }

    public var rangeDescription: String {
        if isSigned { return "\(signedRange.lowerBound)..\(signedRange.upperBound)" }
        if isUnsigned { return "0..\(unsignedMax)" }
        return ""
    }
}

/// A value of one element.
public enum Scalar: Equatable, Sendable {
    case int(Int64)
    case uint(UInt64)
    case float(Double)
    case bool(Bool)
    /// A `c` element: one byte.
    case byte(UInt8)
}

/// `ipc.value` and `ipc.array`: `count` elements of one type in shared memory, with the
/// object's own (re-entrant) lock. Single elements are read and written atomically.
public final class SharedScalars {
    public let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_scalar_header>
    public let type: ScalarType
    public let count: Int
    let data: UnsafeMutableRawPointer
    public let lock: OwnedLock
    static let magic: UInt64 = 0x6970_6376_616C_7565
    static let dataOffset = 256

    public init(type: ScalarType, count: Int, name: String) throws(IPCError) {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: type.size)
        guard count >= 0, !overflow, bytes <= Int.max - Self.dataOffset - 4096 else {
            throw IPCError.resource("cannot allocate \(count) elements of typecode '\(type.typecode)': too large")
        }
        region = try SharedRegion(size: Self.dataOffset + max(bytes, 8))
        h = region.header(ipc_scalar_header.self)
        try RobustLock(&h.pointee.lock).initialize()
        h.pointee.count = UInt64(count)
        h.pointee.item_size = UInt32(type.size)
        h.pointee.typecode = type.rawValue
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        h.pointee.magic = Self.magic
        self.type = type
        self.count = count
        data = count == 1 ? UnsafeMutableRawPointer(h) + MemoryLayout<ipc_scalar_header>.offset(of: \.inline_value)!
                          : region.base + Self.dataOffset
        lock = OwnedLock(&h.pointee.lock, recursive: true, name: name)
    }

    public var name: String { lock.name }

    deinit { lock.abandon() }

    // MARK: - Bits

    @inline(__always)
    func address(_ i: Int) -> UnsafeMutableRawPointer { data + i * type.size }

    @inline(__always)
    func bits(_ i: Int) -> UInt64 { ipc_load_sized(address(i), Int32(type.size)) }

    /// The element's value from its bits.
    public func decode(_ bits: UInt64) -> Scalar {
        switch type {
        case .int8: return .int(Int64(Int8(truncatingIfNeeded: bits)))
        case .int16: return .int(Int64(Int16(truncatingIfNeeded: bits)))
        case .int32: return .int(Int64(Int32(truncatingIfNeeded: bits)))
        case .long, .int64: return .int(Int64(bitPattern: bits))
        case .uint8, .uint16, .uint32, .ulong, .uint64: return .uint(bits)
        case .float32: return .float(Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits))))
        case .float64: return .float(Double(bitPattern: bits))
        case .char: return .byte(UInt8(truncatingIfNeeded: bits))
        case .bool: return .bool(bits != 0)
        }
    }

    /// The bits of `value`, or the reason it does not fit this type.
    public func encode(_ value: Scalar) -> Result<UInt64, IPCError> { Self.encode(value, as: type) }

    /// The bits of `value` as an element of type `t`, or the reason it does not fit.
    public static func encode(_ value: Scalar, as t: ScalarType) -> Result<UInt64, IPCError> {
        func misfit(_ shown: String) -> Result<UInt64, IPCError> {
            .failure(.misuse("\(shown) does not fit typecode '\(t.typecode)' (\(t.rangeDescription))"))
        }
        switch (t, value) {
        case (_, .int(let v)) where t.isSigned:
            guard t.signedRange.contains(v) else { return misfit(String(v)) }
            return .success(UInt64(bitPattern: v))
        case (_, .int(let v)) where t.isUnsigned:
            guard v >= 0, UInt64(v) <= t.unsignedMax else { return misfit(String(v)) }
            return .success(UInt64(v))
        case (_, .uint(let v)) where t.isUnsigned:
            guard v <= t.unsignedMax else { return misfit(String(v)) }
            return .success(v)
        case (_, .uint(let v)) where t.isSigned:
            guard v <= UInt64(Int64.max), t.signedRange.contains(Int64(v)) else { return misfit(String(v)) }
            return .success(v)
        case (_, .float(let d)) where t.isInteger:
            return .failure(.misuse("\(d) is a float; typecode '\(t.typecode)' holds integers"))
        case (.float32, .float(let d)):
            if d.isFinite && abs(d) > Double(Float.greatestFiniteMagnitude) {
                return .failure(.misuse("\(d) does not fit typecode 'f' (32-bit float)"))
            }
            return .success(UInt64(Float(d).bitPattern))
        case (.float32, .int(let v)): return .success(UInt64(Float(v).bitPattern))
        case (.float32, .uint(let v)): return .success(UInt64(Float(v).bitPattern))
        case (.float64, .float(let d)): return .success(d.bitPattern)
        case (.float64, .int(let v)): return .success(Double(v).bitPattern)
        case (.float64, .uint(let v)): return .success(Double(v).bitPattern)
        case (.char, .byte(let b)): return .success(UInt64(b))
        case (.char, .int(let v)) where (0...255).contains(v): return .success(UInt64(v))
        case (.bool, .bool(let b)): return .success(b ? 1 : 0)
        case (.bool, .int(let v)) where v == 0 || v == 1: return .success(UInt64(v))
        case (.char, _):
            return .failure(.misuse("typecode 'c' holds one byte: a one-character string"))
        case (.bool, _):
            return .failure(.misuse("typecode '?' holds a boolean"))
        default:
            return .failure(.misuse("typecode '\(t.typecode)' holds numbers"))
        }
    }

    static func describe(_ v: Scalar) -> String {
        switch v {
        case .int(let x): return String(x)
        case .uint(let x): return String(x)
        case .float(let x): return String(x)
        case .bool(let b): return String(b)
        case .byte(let b): return String(b)
        }
    }

    // MARK: - Elements

    public func load(_ i: Int) -> Scalar { decode(bits(i)) }

    public func store(_ i: Int, bits: UInt64) { ipc_store_sized(address(i), Int32(type.size), bits) }

    /// Adds `delta` atomically (a compare-and-swap loop, for floats too); the new value,
    /// or why it does not fit.
    public func add(_ i: Int, _ delta: Scalar) -> Result<Scalar, IPCError> {
        let p = address(i)
        let size = Int32(type.size)
        var old = ipc_load_sized(p, size)
        while true {
            let next: Scalar
            switch (decode(old), delta) {
            case (.int(let a), .int(let d)):
                let (r, o) = a.addingReportingOverflow(d)
                if o { return .failure(.misuse("\(a) + \(d) does not fit typecode '\(type.typecode)' (\(type.rangeDescription))")) }
                next = .int(r)
            case (.uint(let a), .int(let d)):
                if d >= 0 {
                    let (r, o) = a.addingReportingOverflow(UInt64(d))
                    if o { return .failure(.misuse("\(a) + \(d) does not fit typecode '\(type.typecode)' (\(type.rangeDescription))")) }
                    next = .uint(r)
                } else {
                    let m = d.magnitude
                    if m > a { return .failure(.misuse("\(a) - \(m) does not fit typecode '\(type.typecode)' (\(type.rangeDescription))")) }
                    next = .uint(a - m)
                }
            case (.float(let a), .int(let d)): next = .float(a + Double(d))
            case (.float(let a), .float(let d)): next = .float(a + d)
            case (_, .float):
                return .failure(.misuse("cannot add a float to typecode '\(type.typecode)', which holds integers"))
            default:
                return .failure(.misuse("typecode '\(type.typecode)' is not numeric"))
            }
            let bits: UInt64
            switch encode(next) {
            case .success(let b): bits = b
            case .failure(let e):
                if case .int(let v) = next {
                    return .failure(.misuse("\(Self.describe(decode(old))) + \(Self.describe(delta)) = \(v) does not fit typecode '\(type.typecode)' (\(type.rangeDescription))"))
                }
                return .failure(e)
            }
            if ipc_cas_sized(p, size, &old, bits) != 0 { return .success(decode(bits)) }
        }
    }

    /// Stores `newBits` if the element's bits are `oldBits`, atomically. True when it
    /// swapped. (A NaN never equals anything.)
    public func compareSwap(_ i: Int, oldBits: UInt64, newBits: UInt64) -> Result<Bool, IPCError> {
        if type.isFloat, case .float(let d) = decode(oldBits), d.isNaN { return .success(false) }
        var expected = oldBits
        return .success(ipc_cas_sized(address(i), Int32(type.size), &expected, newBits) != 0)
    }
}
