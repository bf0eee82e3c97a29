/// Text formatting straight into a buffer, for traces: no intermediate strings.
extension ByteBuffer {
    @inlinable
    public func appendASCII(_ s: StaticString) {
        append(UnsafeRawPointer(s.utf8Start), count: s.utf8CodeUnitCount)
    }

    /// A decimal integer.
    @inlinable
    public func appendDecimal(_ v: Int64) {
        if v < 0 {
            append(UInt8(ascii: "-"))
            appendDecimal(UInt64(v.magnitude))
        } else {
            appendDecimal(UInt64(v))
        }
    }

    @inlinable
    public func appendDecimal(_ v: UInt64) {
        guard reserve(20) else { return }
        var digits: (UInt64, Int) = (v, 0)
        var tmp = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0),
                   UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        withUnsafeMutableBytes(of: &tmp) { t in
            repeat {
                t[19 - digits.1] = UInt8(ascii: "0") + UInt8(digits.0 % 10)
                digits.0 /= 10
                digits.1 += 1
            } while digits.0 > 0
            append(t.baseAddress! + 20 - digits.1, count: digits.1)
        }
    }

    /// Nanoseconds as microseconds with one decimal ("1234.5").
    @inlinable
    public func appendMicros(_ ns: Int64) {
        let v = max(ns, 0)
        appendDecimal(v / 1000)
        append(UInt8(ascii: "."))
        append(UInt8(ascii: "0") + UInt8((v % 1000) / 100))
    }

    /// A JSON string literal of `bytes` (at most `limit` bytes of it, then "..."):
    /// escapes quotes, backslashes and control characters; invalid UTF-8 becomes U+FFFD.
    public func appendJSONString(_ bytes: UnsafeRawBufferPointer, limit: Int = .max, quoted: Bool = false) {
        append(UInt8(ascii: "\""))
        if quoted { appendASCII("\\\"") }
        var n = min(bytes.count, limit)
        let p = bytes.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) }
        var ascii = true
        for k in 0..<n where p![k] >= 0x80 { ascii = false; break }
        if ascii {
            for k in 0..<n { appendEscaped(p![k]) }
        } else {
            if n < bytes.count {
                // Do not cut a character in two.
                while n > 0 && p![n] & 0xC0 == 0x80 { n -= 1 }
            }
            // Repairs invalid sequences with U+FFFD.
            let text = String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
            for b in text.utf8 { appendEscaped(b) }
        }
        if n < bytes.count { appendASCII("...") }
        if quoted { appendASCII("\\\"") }
        append(UInt8(ascii: "\""))
    }

    @inline(__always)
    func appendEscaped(_ b: UInt8) {
        switch b {
        case UInt8(ascii: "\""): appendASCII("\\\"")
        case UInt8(ascii: "\\"): appendASCII("\\\\")
        case 10: appendASCII("\\n")
        case 13: appendASCII("\\r")
        case 9: appendASCII("\\t")
        case 0..<32, 127:
            appendASCII("\\u00")
            let hex: StaticString = "0123456789abcdef"
            append(hex.utf8Start[Int(b >> 4)])
            append(hex.utf8Start[Int(b & 15)])
        default: append(b)
        }
    }

    public func appendJSONString(_ s: String) {
        var s = s
        s.withUTF8 { appendJSONString(UnsafeRawBufferPointer($0)) }
    }
}
