import Glibc
import IPCCore

/// One event of a run as the timeline draws it (`--timeline`): what `Trace` records,
/// as a value. Every process appends its events to the run's event file (opened O_APPEND
/// by the host, inherited by the forks), a batch per `write`, beside or without the JSON
/// trace (which is for Perfetto); the host reads them back as values when the run ends.
public struct TraceEvent: Equatable, Sendable {
    public enum Kind: UInt32, Sendable {
        /// A process's lane: its name, and its place (`index`) among the lanes.
        case lane = 1
        /// One IPC call, from `start` to `end`.
        case call = 2
        /// An instant on a lane (spawn, exit, error).
        case mark = 3
    }

    public var kind: Kind
    public var pid: Int32
    /// A lane's place; a mark's exit code (or -1).
    public var index: Int64 = -1
    /// Nanoseconds since the run's origin (its virtual clock's zero under a scheduler).
    public var start: Int64 = 0
    public var end: Int64 = 0
    /// How long the call was parked, in nanoseconds.
    public var waited: Int64 = 0
    /// Under a controlled scheduler, the steps made when it was recorded (-1: none).
    public var step: Int64 = -1
    /// The trace ids of a message the call received and sent (0: none).
    public var flowIn: UInt64 = 0
    public var flowOut: UInt64 = 0
    /// A lane's process name; a call's name (`queue:put`); a mark's text.
    public var name: String
    /// The call's object, or a mark's message.
    public var object: String = ""
    /// A short preview of the value the call moved, and what its result says.
    public var value: String?
    public var result: String?

    public init(kind: Kind, pid: Int32, name: String) {
        self.kind = kind
        self.pid = pid
        self.name = name
    }

    /// The fixed part of a record in the file, then its four strings' bytes.
    struct Header {
        static let magic: UInt32 = 0x7472_7069  // "iptr"
        var magic = Header.magic
        var length: UInt32 = 0  // the whole record's bytes
        var kind: UInt32 = 0
        var pid: Int32 = 0
        var index: Int64 = 0, start: Int64 = 0, end: Int64 = 0, waited: Int64 = 0, step: Int64 = 0
        var flowIn: UInt64 = 0, flowOut: UInt64 = 0
        /// The strings' lengths: name, object, value, result (`absent`: nil).
        var lengths: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
        static let absent = UInt32.max
    }

    /// Appends the event to `buffer` as a record (strings given as bytes: nothing is
    /// built on the recording side).
    static func append(_ kind: Kind, pid: Int32, index: Int64 = -1, start: Int64 = 0, end: Int64 = 0, waited: Int64 = 0,
                       step: Int64 = -1, flowIn: UInt64 = 0, flowOut: UInt64 = 0, name: UnsafeRawBufferPointer,
                       object: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                       value: UnsafeRawBufferPointer?, result: UnsafeRawBufferPointer?, into buffer: ByteBuffer) {
        var h = Header()
        h.kind = kind.rawValue
        h.pid = pid
        (h.index, h.start, h.end, h.waited, h.step, h.flowIn, h.flowOut) = (index, start, end, waited, step, flowIn, flowOut)
        func length(_ b: UnsafeRawBufferPointer?) -> UInt32 { b.map { UInt32($0.count) } ?? Header.absent }
        h.lengths = (length(name), length(object), length(value), length(result))
        h.length = UInt32(MemoryLayout<Header>.size + name.count + object.count + (value?.count ?? 0) + (result?.count ?? 0))
        withUnsafeBytes(of: &h) { buffer.append($0) }
        buffer.append(name)
        buffer.append(object)
        if let value { buffer.append(value) }
        if let result { buffer.append(result) }
    }

    /// Appends this event to `buffer` as a record (as `Trace` records one).
    public func record(into buffer: ByteBuffer) {
        var (name, object, value, result) = (name, object, value, result)
        name.withUTF8 { n in
            object.withUTF8 { o in
                func strings(_ v: UnsafeRawBufferPointer?, _ r: UnsafeRawBufferPointer?) {
                    TraceEvent.append(kind, pid: pid, index: index, start: start, end: end, waited: waited, step: step,
                                      flowIn: flowIn, flowOut: flowOut, name: UnsafeRawBufferPointer(n), object: UnsafeRawBufferPointer(o),
                                      value: v, result: r, into: buffer)
                }
                func withResult(_ v: UnsafeRawBufferPointer?) {
                    if result == nil { strings(v, nil) } else { result!.withUTF8 { strings(v, UnsafeRawBufferPointer($0)) } }
                }
                if value == nil { withResult(nil) } else { value!.withUTF8 { withResult(UnsafeRawBufferPointer($0)) } }
            }
        }
    }

    /// The events of a file of records. A record cut short (a process killed in its
    /// write) is skipped: reading resumes at the next record's mark.
    public static func read(path: String) -> [TraceEvent] {
        guard let bytes = fileContents(path) else { return [] }
        return bytes.withUnsafeBytes { decode($0) }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) -> [TraceEvent] {
        var events: [TraceEvent] = []
        let size = MemoryLayout<Header>.size
        var i = 0
        while i + size <= bytes.count {
            let h = bytes.loadUnaligned(fromByteOffset: i, as: Header.self)
            let lengths = [h.lengths.0, h.lengths.1, h.lengths.2, h.lengths.3]
            let strings = lengths.reduce(0) { $0 + ($1 == Header.absent ? 0 : Int($1)) }
            guard h.magic == Header.magic, let kind = Kind(rawValue: h.kind), Int(h.length) == size + strings,
                  i + Int(h.length) <= bytes.count, lengths.allSatisfy({ $0 == Header.absent || $0 <= h.length }) else {
                i += 1  // not a record's start: look for the next one
                continue
            }
            var at = i + size
            func text(_ n: UInt32) -> String? {
                guard n != Header.absent else { return nil }
                defer { at += Int(n) }
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<at + Int(n)]), as: UTF8.self)
            }
            var e = TraceEvent(kind: kind, pid: h.pid, name: text(lengths[0]) ?? "")
            e.object = text(lengths[1]) ?? ""
            e.value = text(lengths[2])
            e.result = text(lengths[3])
            (e.index, e.start, e.end, e.waited, e.step, e.flowIn, e.flowOut) = (h.index, h.start, h.end, h.waited, h.step, h.flowIn, h.flowOut)
            events.append(e)
            i += Int(h.length)
        }
        return events
    }
}
