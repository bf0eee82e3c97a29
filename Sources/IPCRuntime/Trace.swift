import CRuntimeShim
import CSystemShim
import Glibc
import IPCCore

/// `--trace FILE`: the Chrome Trace Event format, which Perfetto (ui.perfetto.dev) and
/// chrome://tracing load; and for `--timeline`, the same events as `TraceEvent` records,
/// which the timeline reads back as values (it never parses the JSON).
///
/// Every process appends its events, one JSON object per line, to the same file (opened
/// O_APPEND by the host, inherited by the forks), a batch per `write`: it flushes its
/// buffer before it parks, before it forks, when the buffer fills, and before it exits.
/// So a run that crashes or times out still leaves a loadable file (the JSON array
/// format tolerates a missing `]`, and the host closes it on every way out it controls).
/// A process SIGKILLed inside its `write` leaves a cut batch; the host's close removes
/// such fragments (`ipc_trace_cut_fragments`).
/// Events are formatted straight into that buffer (no intermediate strings). When
/// tracing is off, every hook is one predictable branch.
public enum Trace {
    // (Its state is the execution context's `trace`.)
    public static var isOn: Bool {
        @inline(__always) get { Execution.current.trace.isOn }
        @inline(__always) set { Execution.current.trace.isOn = newValue }
    }
    static var fd: Int32 {
        get { Execution.current.trace.fd }
        set { Execution.current.trace.fd = newValue }
    }
    public static var buffer: ByteBuffer {
        @inline(__always) get { Execution.current.trace.buffer ?? makeBuffer() }
    }

    @inline(never)
    static func makeBuffer() -> ByteBuffer {
        let b = ByteBuffer(capacity: 1 << 17)
        Execution.current.trace.buffer = b
        return b
    }
    static var origin: Int64 {
        get { Execution.current.trace.origin }
        set { Execution.current.trace.origin = newValue }
    }
    /// How long the current call has been parked.
    static var parkedSince: Int64 {
        get { Execution.current.trace.parkedSince }
        set { Execution.current.trace.parkedSince = newValue }
    }
    public static var parkedTotal: Int64 {
        get { Execution.current.trace.parkedTotal }
        set { Execution.current.trace.parkedTotal = newValue }
    }
    static var messageCounter: UInt64 {
        get { Execution.current.trace.messageCounter }
        set { Execution.current.trace.messageCounter = newValue }
    }
    static let flushThreshold = 96 << 10

    /// Opens `path` (truncated) in the host and writes the array's opening.
    public static func start(path: String, origin: Int64) throws(IPCError) {
        // Read and write: its end cuts out what killed writers left (`ipc_trace_close`).
        // A file that can only be written is traced still, without that repair.
        var f = Glibc.open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        if f < 0 && errno == EACCES { f = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644) }
        guard f >= 0 else { throw IPCError.resource("cannot write the trace \(path): \(String(cString: strerror(errno)))") }
        fd = f
        self.origin = origin
        isOn = true
        Execution.current.trace.writesJSON = true
        _ = write(f, "[\n", 2)
        ipc_trace_set_fd(f)
    }

    /// Opens `path` (truncated) in the host for the timeline's event records.
    public static func startEvents(path: String, origin: Int64) throws(IPCError) {
        let f = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
        guard f >= 0 else { throw IPCError.resource("cannot write the timeline's events \(path): \(String(cString: strerror(errno)))") }
        self.origin = origin
        isOn = true
        Execution.current.trace.recordsEvents = true
        Execution.current.trace.eventsFD = f
        Execution.current.trace.events = ByteBuffer(capacity: 1 << 16)
    }

    static var writesJSON: Bool { Execution.current.trace.writesJSON }
    /// The timeline's records, when they are kept.
    static var events: ByteBuffer? { Execution.current.trace.recordsEvents ? Execution.current.trace.events : nil }

    /// `,"step":N` for JSON; the step for a record (-1: none).
    static var currentStep: Int64 { step?() ?? -1 }

    static var pid: Int64 { Int64(ProcessIdentity.pid) }

    // MARK: - Event pieces

    /// `{"ph":"<ph>","name":<name>,` then `"pid":P,"tid":P` later.
    @inline(__always)
    static func open(_ ph: StaticString, _ name: String) {
        let b = buffer
        b.appendASCII("{\"ph\":\"")
        b.appendASCII(ph)
        b.appendASCII("\",\"name\":")
        b.appendJSONString(name)
    }

    @inline(__always)
    static func ids() {
        buffer.appendASCII(",\"pid\":")
        buffer.appendDecimal(pid)
        buffer.appendASCII(",\"tid\":")
        buffer.appendDecimal(pid)
    }

    @inline(__always)
    static func ts(_ ns: Int64) {
        buffer.appendASCII(",\"ts\":")
        buffer.appendMicros(ns - origin)
    }

    @inline(__always)
    static func close() {
        buffer.appendASCII("},\n")
        if buffer.count >= flushThreshold { flush() }
    }

    // MARK: - Events

    /// The track of the calling process: `process_name` (and a sort index).
    public static func processStarted(name: String, index: Int) {
        guard isOn else { return }
        if let events {
            var name = name
            name.withUTF8 { TraceEvent.append(.lane, pid: Int32(pid), index: Int64(index), name: UnsafeRawBufferPointer($0), value: nil, result: nil, into: events) }
            flushIfFull(events)
        }
        guard writesJSON else { return }
        for meta: StaticString in ["process_name", "thread_name"] {
            buffer.appendASCII("{\"ph\":\"M\",\"name\":\"")
            buffer.appendASCII(meta)
            buffer.appendASCII("\"")
            ids()
            buffer.appendASCII(",\"args\":{\"name\":")
            buffer.appendJSONString(name)
            buffer.append(UInt8(ascii: "}"))
            close()
        }
        buffer.appendASCII("{\"ph\":\"M\",\"name\":\"process_sort_index\"")
        ids()
        buffer.appendASCII(",\"args\":{\"sort_index\":")
        buffer.appendDecimal(Int64(index))
        buffer.append(UInt8(ascii: "}"))
        close()
    }

    /// An instant event on the calling process's track (spawn, exit, error).
    public static func instant(_ name: String, pid child: Int32? = nil, exitcode: Int32? = nil, message: String? = nil) {
        guard isOn else { return }
        if let events {
            var text = name
            if let exitcode { text += " (\(exitcode))" }
            if let message { text += ": " + message }
            text.withUTF8 {
                TraceEvent.append(.mark, pid: Int32(pid), index: Int64(exitcode ?? -1), start: now() - origin, step: currentStep,
                                  name: UnsafeRawBufferPointer($0), value: nil, result: nil, into: events)
            }
            flushIfFull(events)
        }
        guard writesJSON else { return }
        var args: [(String, String)] = []
        if let child { args.append(("pid", String(child))) }
        if let exitcode { args.append(("exitcode", String(exitcode))) }
        if let message { args.append(("message", json(message))) }
        open("i", name)
        buffer.appendASCII(",\"s\":\"t\",\"cat\":\"process\"")
        ts(now())
        ids()
        buffer.appendASCII(",\"args\":{")
        for (i, (k, v)) in args.enumerated() {
            if i > 0 { buffer.append(UInt8(ascii: ",")) }
            buffer.appendJSONString(k)
            buffer.append(UInt8(ascii: ":"))
            var v = v
            v.withUTF8 { buffer.append(UnsafeRawBufferPointer($0)) }
        }
        if let step {
            if !args.isEmpty { buffer.append(UInt8(ascii: ",")) }
            buffer.appendASCII("\"step\":")
            buffer.appendDecimal(step())
        }
        buffer.append(UInt8(ascii: "}"))
        close()
    }

    /// One IPC call, from `start` until now: a complete event (`value` writes a text
    /// preview of the value moved, if any), with a flow arrow leaving it (`flowOut`, a
    /// message it sent) or arriving in it (`flowIn`).
    static func complete(_ name: String, object: String, start: Int64, bytes: Int = -1,
                         resultText: String? = nil, flowOut: UInt64 = 0, flowIn: UInt64 = 0,
                         value: ((ByteBuffer) -> Void)? = nil) {
        guard isOn else { return }
        let end = now()
        let dur = max(end - start, 0)
        var preview: ByteBuffer?
        if let value {
            let b = Execution.current.trace.preview ?? ByteBuffer(capacity: 256)
            Execution.current.trace.preview = b
            b.count = 0
            value(b)
            preview = b
        }
        if let events {
            var (name, object, result) = (name, object, resultText)
            name.withUTF8 { n in
                object.withUTF8 { o in
                    func record(_ r: UnsafeRawBufferPointer?) {
                        TraceEvent.append(.call, pid: Int32(pid), start: start - origin, end: start + dur - origin, waited: parkedTotal,
                                          step: currentStep, flowIn: flowIn, flowOut: flowOut, name: UnsafeRawBufferPointer(n),
                                          object: UnsafeRawBufferPointer(o), value: preview?.bytes, result: r, into: events)
                    }
                    if result == nil { record(nil) } else { result!.withUTF8 { record(UnsafeRawBufferPointer($0)) } }
                }
            }
            flushIfFull(events)
        }
        guard writesJSON else { return }
        open("X", name)
        ts(start)
        buffer.appendASCII(",\"dur\":")
        buffer.appendMicros(dur)
        ids()
        buffer.appendASCII(",\"args\":{\"object\":")
        buffer.appendJSONString(object)
        if let preview {
            buffer.appendASCII(",\"value\":")
            buffer.appendJSONString(preview.bytes)
        }
        if bytes >= 0 {
            buffer.appendASCII(",\"bytes\":")
            buffer.appendDecimal(Int64(bytes))
        }
        if let resultText {
            buffer.appendASCII(",\"result\":")
            buffer.appendJSONString(resultText)
        }
        buffer.appendASCII(",\"waited_us\":")
        buffer.appendDecimal(parkedTotal / 1000)
        stepArg()
        buffer.append(UInt8(ascii: "}"))
        close()
        let middle = start + dur / 2
        for (ph, id) in [("s" as StaticString, flowOut), ("f", flowIn)] where id != 0 {
            buffer.appendASCII("{\"ph\":\"")
            buffer.appendASCII(ph)
            buffer.appendASCII("\",\"name\":\"message\",\"cat\":\"message\",\"id\":")
            buffer.appendDecimal(id)
            if ph.utf8Start.pointee == UInt8(ascii: "f") { buffer.appendASCII(",\"bp\":\"e\"") }
            ts(middle)
            ids()
            close()
        }
    }

    /// A counter sample (a queue's depth, a semaphore's value): `<object> <what>`.
    public static func counter(_ object: String, _ what: StaticString, _ value: Int) {
        guard writesJSON else { return }
        buffer.appendASCII("{\"ph\":\"C\",\"name\":")
        buffer.appendJSONString(object)
        buffer.count -= 1  // reopen the string: "<object> <what>"
        buffer.append(UInt8(ascii: " "))
        buffer.appendASCII(what)
        buffer.append(UInt8(ascii: "\""))
        ts(now())
        buffer.appendASCII(",\"pid\":")
        buffer.appendDecimal(pid)
        buffer.appendASCII(",\"args\":{\"value\":")
        buffer.appendDecimal(Int64(value))
        buffer.append(UInt8(ascii: "}"))
        close()
    }

    /// A run-wide unique id for a message (carried by its frames).
    public static func newMessageID() -> UInt64 {
        messageCounter += 1
        return UInt64(UInt32(truncatingIfNeeded: pid)) << 32 | messageCounter
    }

    // MARK: - Parking

    static func parked() { if isOn { parkedSince = now() } }
    static func woke() {
        if isOn && parkedSince != 0 {
            parkedTotal += now() - parkedSince
            parkedSince = 0
        }
    }

    /// The trace's step counter (see `TraceState`).
    static var step: (() -> Int64)? {
        get { Execution.current.trace.step }
        set { Execution.current.trace.step = newValue }
    }

    /// `,"step":N` in an event's args, under a controlled scheduler.
    static func stepArg() {
        guard let step else { return }
        buffer.appendASCII(",\"step\":")
        buffer.appendDecimal(step())
    }

    @inline(__always)
    static func now() -> Int64 { MonotonicClock.traceNanoseconds() }

    // MARK: - Output

    /// Writes the buffered events (one write each: never spliced with another process's).
    public static func flush() {
        guard isOn else { return }
        if writesJSON && buffer.count > 0 {
            Syscall.writeAll(fd, buffer.base, buffer.count)
            buffer.count = 0
        }
        if let events, events.count > 0 {
            Syscall.writeAll(Execution.current.trace.eventsFD, events.base, events.count)
            events.count = 0
        }
    }

    @inline(__always)
    static func flushIfFull(_ events: ByteBuffer) {
        if events.count >= flushThreshold { flush() }
    }

    /// The host's end: flush, close the JSON array and the events' file.
    public static func finish() {
        guard isOn else { return }
        flush()
        if writesJSON { ipc_trace_close() }
        if Execution.current.trace.eventsFD >= 0 { _ = Glibc.close(Execution.current.trace.eventsFD) }
        Execution.current.trace.eventsFD = -1
        isOn = false
    }

    /// A JSON string literal.
    public static func json(_ s: String) -> String {
        let b = ByteBuffer(capacity: s.utf8.count + 8)
        b.appendJSONString(s)
        return String(decoding: b.bytes, as: UTF8.self)
    }
}
