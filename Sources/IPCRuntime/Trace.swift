import CRuntimeShim
import CSystemShim
import Glibc
import IPCCore

/// `--trace FILE`: the Chrome Trace Event format, which Perfetto (ui.perfetto.dev) and
/// chrome://tracing load.
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
        _ = write(f, "[\n", 2)
        ipc_trace_set_fd(f)
    }

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

    /// An instant event on the calling process's track (spawn, exit, error); `args`
    /// values are JSON already.
    public static func instant(_ name: String, args: [(String, String)] = []) {
        guard isOn else { return }
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

    /// One IPC call, from `start` until now: a complete event (`value` writes a JSON
    /// preview of the value moved, if any), with a flow arrow leaving it (`flowOut`, a
    /// message it sent) or arriving in it (`flowIn`).
    static func complete(_ name: String, object: String, start: Int64, bytes: Int = -1,
                         resultText: String? = nil, flowOut: UInt64 = 0, flowIn: UInt64 = 0,
                         value: ((ByteBuffer) -> Void)? = nil) {
        guard isOn else { return }
        let end = now()
        let dur = max(end - start, 0)
        open("X", name)
        ts(start)
        buffer.appendASCII(",\"dur\":")
        buffer.appendMicros(dur)
        ids()
        buffer.appendASCII(",\"args\":{\"object\":")
        buffer.appendJSONString(object)
        if let value {
            buffer.appendASCII(",\"value\":")
            value(buffer)
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
        guard isOn else { return }
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

    /// The trace's clock and step counter (see `TraceState`).
    static var clock: (() -> Int64)? {
        @inline(__always) get { Execution.current.trace.clock }
        set { Execution.current.trace.clock = newValue }
    }
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
    static func now() -> Int64 { clock?() ?? MonotonicClock.real() }

    // MARK: - Output

    /// Writes the buffered events (one write: never spliced with another process's).
    public static func flush() {
        guard isOn, buffer.count > 0 else { return }
        Syscall.writeAll(fd, buffer.base, buffer.count)
        buffer.count = 0
    }

    /// The host's end: flush and close the array.
    public static func finish() {
        guard isOn else { return }
        flush()
        ipc_trace_close()
        isOn = false
    }

    /// A JSON string literal.
    public static func json(_ s: String) -> String {
        let b = ByteBuffer(capacity: s.utf8.count + 8)
        b.appendJSONString(s)
        return String(decoding: b.bytes, as: UTF8.self)
    }
}
