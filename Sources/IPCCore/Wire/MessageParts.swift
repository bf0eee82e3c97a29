/// A message given in two pieces and sent as one: an encoded head and the bytes that
/// follow it. A large string goes out as its tag and length, then the Lua string's own
/// bytes, without being copied into an encoding buffer first.
public struct MessageParts {
    public let head: UnsafeRawBufferPointer
    public let body: UnsafeRawBufferPointer

    @inlinable
    public init(_ whole: UnsafeRawBufferPointer) {
        head = whole
        body = UnsafeRawBufferPointer(start: nil, count: 0)
    }

    @inlinable
    public init(head: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) {
        self.head = head
        self.body = body
    }

    @inlinable public var count: Int { head.count + body.count }

    /// Copies `n` bytes of the message, from `offset`, to `destination`.
    @inlinable
    public func copy(from offset: Int, count n: Int, to destination: UnsafeMutableRawPointer) {
        guard n > 0 else { return }
        var at = offset
        var out = destination
        var left = n
        if at < head.count {
            let k = min(left, head.count - at)
            out.copyMemory(from: head.baseAddress! + at, byteCount: k)
            out += k
            at += k
            left -= k
        }
        if left > 0 { out.copyMemory(from: body.baseAddress! + (at - head.count), byteCount: left) }
    }

    /// The `n` bytes from `offset` when they lie in one piece; nil when they span both.
    @inlinable
    public func contiguous(from offset: Int, count n: Int) -> UnsafeRawPointer? {
        if offset + n <= head.count { return head.baseAddress.map { $0 + offset } }
        if offset >= head.count { return body.baseAddress.map { $0 + (offset - head.count) } }
        return nil
    }
}
