import CSystemShim
import Glibc
import SystemPackage

/// One end of a pipe that carries messages (`ipc.pipe`).
///
/// A message travels as frames of at most PIPE_BUF bytes, each written with a single
/// `writev`, which the kernel makes atomic: a sender killed mid-message leaves whole
/// frames only. Frames carry FIRST/LAST flags, so a receiver drops the beginning of a
/// message whose sender died. Each direction has a robust send lock (frames of two
/// messages never interleave) and a robust receive lock (two receivers never split one
/// message); a receiver that dies mid-frame is detected through its lock, and the next
/// one resynchronises on the frame checksum, which is seeded per pipe.
///
/// Duplex connections are two pipes, one per direction, which keeps the throughput of a
/// pipe (a socketpair is several times slower on Linux).
public final class Connection {
    /// The locks of both directions, shared by both ends.
    public let channel: SharedRegion
    @usableFromInline let header: UnsafeMutablePointer<ipc_channel_header>
    public private(set) var readFD: Int32
    public private(set) var writeFD: Int32
    let readDirection: Int
    let writeDirection: Int
    /// True once this end is closed in this process.
    public private(set) var isClosed = false
    /// Set when a receiver died holding the lock: find the next frame boundary.
    var needsResync = false

    static let frameHeader = 16
    public static let maxFramePayload = Int(PIPE_BUF) - 16
    static let flagFirst: UInt32 = 1 << 24
    static let flagLast: UInt32 = 2 << 24
    static let flagRaw: UInt32 = 4 << 24
    static let lengthMask: UInt32 = 0x00FF_FFFF
    static let magic: UInt64 = 0x6970_6363_6F6E_6E00

    init(channel: SharedRegion, readFD: Int32, writeFD: Int32, readDirection: Int, writeDirection: Int) {
        self.channel = channel
        header = channel.header(ipc_channel_header.self)
        self.readFD = readFD
        self.writeFD = writeFD
        self.readDirection = readDirection
        self.writeDirection = writeDirection
    }

    deinit { close() }

    /// `pipe2(O_CLOEXEC)` once (simplex: `a` receives, `b` sends) or twice (duplex).
    public static func pair(duplex: Bool, name: String) throws(IPCError) -> (Connection, Connection) {
        let region = try SharedRegion(size: MemoryLayout<ipc_channel_header>.size)
        let h = region.header(ipc_channel_header.self)
        for i in 0..<2 {
            try Self.lock(h, \.send_lock, i).initialize()
            try Self.lock(h, \.recv_lock, i).initialize()
        }
        h.pointee.salt = UInt64.random(in: 1...UInt64.max)
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        h.pointee.magic = magic
        // Direction 0 carries b -> a, direction 1 a -> b.
        let p0 = try makePipe()
        if !duplex {
            return (Connection(channel: region, readFD: p0.read, writeFD: -1, readDirection: 0, writeDirection: -1),
                    Connection(channel: region, readFD: -1, writeFD: p0.write, readDirection: -1, writeDirection: 0))
        }
        let p1: (read: Int32, write: Int32)
        do { p1 = try makePipe() } catch {
            Glibc.close(p0.read); Glibc.close(p0.write)
            throw error
        }
        return (Connection(channel: region, readFD: p0.read, writeFD: p1.write, readDirection: 0, writeDirection: 1),
                Connection(channel: region, readFD: p1.read, writeFD: p0.write, readDirection: 1, writeDirection: 0))
    }

    static func makePipe() throws(IPCError) -> (read: Int32, write: Int32) {
        var fds: (Int32, Int32) = (-1, -1)
        let r = withUnsafeMutableBytes(of: &fds) { ipc_pipe($0.baseAddress!.assumingMemoryBound(to: Int32.self)) }
        if r < 0 { throw IPCError.resource("cannot create a pipe: \(Errno(rawValue: -r))") }
        return (fds.0, fds.1)
    }

    public var name: String { loadName(from: &header.pointee.name, capacity: Int(IPC_NAME_CAP)) }
    public var canReceive: Bool { readFD >= 0 }
    public var canSend: Bool { writeFD >= 0 }

    /// The lock `index` of the pair at `field` (the header lives in shared memory, so
    /// the address is stable).
    static func lock(_ h: UnsafeMutablePointer<ipc_channel_header>, _ field: PartialKeyPath<ipc_channel_header>, _ index: Int) -> RobustLock {
        let offset = MemoryLayout<ipc_channel_header>.offset(of: field)!
        let first = (UnsafeMutableRawPointer(h) + offset).assumingMemoryBound(to: ipc_robust_lock.self)
        return RobustLock(first + index)
    }

    func sendLock(_ direction: Int) -> RobustLock { Self.lock(header, \.send_lock, direction) }
    func receiveLock(_ direction: Int) -> RobustLock { Self.lock(header, \.recv_lock, direction) }

    /// Closes this end in this process (other processes keep their copies).
    public func close() {
        if readFD >= 0 { Glibc.close(readFD); readFD = -1 }
        if writeFD >= 0 { Glibc.close(writeFD); writeFD = -1 }
        isClosed = true
    }

    // MARK: - Frame headers

    @inline(__always)
    func check(_ word: UInt32, _ id: UInt64) -> UInt32 {
        var x = header.pointee.salt ^ (UInt64(word) << 32 | UInt64(word)) ^ id
        x = (x ^ (x >> 33)) &* 0xff51_afd7_ed55_8ccd
        x = (x ^ (x >> 33)) &* 0xc4ce_b9fe_1a85_ec53
        return UInt32(truncatingIfNeeded: x ^ (x >> 33))
    }

    // MARK: - Sending

    public enum SendOutcome: Equatable { case done, closed }

    /// Sends one message (`raw`: bytes from `send_bytes`, not an encoded value).
    public func send(_ payload: UnsafeRawBufferPointer, raw: Bool, id: UInt64 = 0) -> SendOutcome {
        guard writeFD >= 0 else { return .closed }
        let lock = sendLock(writeDirection)
        _ = lock.acquire(deadline: .never, object: self.name, during: "connection:send") { _ in }
        defer { lock.release() }
        var offset = 0
        let total = payload.count
        repeat {
            let n = min(Self.maxFramePayload, total - offset)
            var word = UInt32(n)
            if offset == 0 { word |= Self.flagFirst }
            if offset + n == total { word |= Self.flagLast }
            if raw { word |= Self.flagRaw }
            var frameHeader = (check(word, id), word, id)
            let ok = withUnsafeBytes(of: &frameHeader) { hdr in
                writeFrame(hdr.baseAddress!, payload.baseAddress.map { $0 + offset }, n)
            }
            if !ok { return .closed }
            offset += n
        } while offset < total
        return .done
    }

    /// Writes one frame (at most PIPE_BUF bytes, so the kernel writes it whole): first
    /// without sleeping, then, if the pipe is full, parked until there is room.
    func writeFrame(_ hdr: UnsafeRawPointer, _ payload: UnsafeRawPointer?, _ n: Int) -> Bool {
        var r = ipc_write2(writeFD, hdr, Self.frameHeader, payload, n, 1)
        if r == -Int(EAGAIN) {
            Parking.parking()
            repeat { r = ipc_write2(writeFD, hdr, Self.frameHeader, payload, n, 0) } while r == -Int(EINTR)
            Parking.woke()
        }
        while r == -Int(EINTR) { r = ipc_write2(writeFD, hdr, Self.frameHeader, payload, n, 0) }
        if r < 0 { return false }  // EPIPE: every reader is gone
        if r < Self.frameHeader + n {
            // Only after a signal: finish the frame.
            var done = r
            while done < Self.frameHeader + n {
                let w: Int
                if done < Self.frameHeader {
                    w = ipc_write2(writeFD, hdr + done, Self.frameHeader - done, payload, n, 0)
                } else {
                    w = ipc_write2(writeFD, payload! + (done - Self.frameHeader), Self.frameHeader + n - done, nil, 0, 0)
                }
                if w == -Int(EINTR) { continue }
                if w < 0 { return false }
                done += w
            }
        }
        return true
    }

    // MARK: - Receiving

    public enum ReceiveOutcome: Equatable { case message(raw: Bool, id: UInt64), closed, timedOut }

    /// Waits until a message arrives (or `deadline`), and reads it whole into `out`.
    public func receive(into out: ByteBuffer, deadline: Deadline) -> ReceiveOutcome {
        guard readFD >= 0 else { return .closed }
        let lock = receiveLock(readDirection)
        let acquired = lock.acquire(deadline: deadline, object: self.name, during: "connection:recv") { _ in
            self.needsResync = true
        }
        guard acquired else { return .timedOut }
        defer { lock.release() }
        var started = false
        var raw = false
        var id: UInt64 = 0
        out.reset()
        var frame = (UInt32(0), UInt32(0), UInt64(0))
        while true {
            // The fast path reads a header without sleeping; otherwise wait for one: until
            // the caller's deadline between messages, and in the middle of a message in
            // slices, watching that its sender is still alive.
            let got = withUnsafeMutableBytes(of: &frame) { ipc_read_nowait(readFD, $0.baseAddress!, Self.frameHeader) }
            if got == 0 { return .closed }
            if got == -Int(EINTR) { continue }
            if got == -Int(EAGAIN) {
                if started {
                    let ready = (try? Poll.wait(fd: readFD, events: Int16(POLLIN), deadline: .after(seconds: 1))) ?? false
                    if !ready {
                        let sender = sendLock(readDirection).holder
                        if sender == 0 || !ProcessControl.exists(sender) {
                            started = false  // its sender died mid-message: drop it
                            out.reset()
                        }
                    }
                    continue
                }
                if deadline.hasExpired { return .timedOut }
                Parking.parking()
                let ready = (try? Poll.wait(fd: readFD, events: Int16(POLLIN), deadline: deadline)) ?? true
                Parking.woke()
                if !ready { return .timedOut }
                continue
            }
            if got < 0 { return .closed }
            if got < Self.frameHeader {
                let ok = withUnsafeMutableBytes(of: &frame) { readExactly($0.baseAddress! + got, Self.frameHeader - got) }
                if !ok { return .closed }
            }
            if needsResync || frame.0 != check(frame.1, frame.2) || Int(frame.1 & Self.lengthMask) > Self.maxFramePayload {
                guard let found = resynchronise(from: &frame) else { return .closed }
                frame = found
            }
            let word = frame.1
            let length = Int(word & Self.lengthMask)
            if word & Self.flagFirst != 0 {
                out.reset()
                started = true
                raw = word & Self.flagRaw != 0
                id = frame.2
            }
            if started {
                out.reserve(length)
                guard readExactly(out.base + out.count, length) else { return .closed }
                out.count += length
                if word & Self.flagLast != 0 { return .message(raw: raw, id: id) }
            } else {
                // The tail of a message whose head went to a receiver that died.
                guard discard(length) else { return .closed }
            }
        }
    }

    /// Finds the next frame boundary after a receiver died part way through a frame:
    /// slides a byte at a time until the header checksum holds. Nil at end of stream.
    func resynchronise(from frame: inout (UInt32, UInt32, UInt64)) -> (UInt32, UInt32, UInt64)? {
        var window = withUnsafeBytes(of: &frame) { Array($0) }
        while true {
            let (c, word, id) = window.withUnsafeBytes { b in
                (b.load(as: UInt32.self), b.load(fromByteOffset: 4, as: UInt32.self), b.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
            if c == check(word, id) && Int(word & Self.lengthMask) <= Self.maxFramePayload {
                needsResync = false
                return (c, word, id)
            }
            window.removeFirst()
            var next: UInt8 = 0
            guard readExactly(&next, 1) else { return nil }
            window.append(next)
        }
    }

    /// Blocking read of exactly `n` bytes; false at end of stream or on error.
    func readExactly(_ p: UnsafeMutableRawPointer, _ n: Int) -> Bool {
        var got = 0
        while got < n {
            let r = read(readFD, p + got, n - got)
            if r > 0 { got += r; continue }
            if r < 0 && Glibc.errno == EINTR { continue }
            return false
        }
        return true
    }

    func discard(_ n: Int) -> Bool {
        var scratch = [UInt8](repeating: 0, count: max(n, 1))
        return scratch.withUnsafeMutableBytes { readExactly($0.baseAddress!, n) }
    }

    /// True when a message (or the end of the stream) is ready to read.
    public func poll(deadline: Deadline) -> Bool {
        guard readFD >= 0 else { return false }
        return (try? Poll.wait(fd: readFD, events: Int16(POLLIN), deadline: deadline)) ?? false
    }
}
