import CSystemShim
import Glibc
import SystemPackage

/// One end of a pipe that carries messages (`ipc.pipe`).
///
/// A message travels as frames of at most PIPE_BUF bytes, each written with a single
/// `write`, which the kernel makes atomic: a sender killed mid-message leaves whole
/// frames only. Frames carry FIRST/LAST flags, so a receiver drops the beginning of a
/// message whose sender died. Each direction has a robust send lock (frames of two
/// messages never interleave) and a robust receive lock (two receivers never split one
/// message); a receiver that dies mid-frame is detected through its lock, and the next
/// one resynchronises on the frame checksum, which is seeded per pipe, and takes back the
/// frames the dead one had read ahead (frames are numbered in pipe order).
///
/// Duplex connections are two pipes, one per direction, which keeps the throughput of a
/// pipe (a socketpair is several times slower on Linux).
///
/// A large message (more than `laneAt` bytes) does not go through the pipe in frames of
/// 4 KiB, two kernel copies each: its parts go through the direction's lane, slots of
/// 1 MiB in the channel's shared memory, and the pipe carries a small frame per part
/// that names its slot (ipc_layouts.h, `ipc_channel_lane`). Everything else about frames
/// holds for those frames: their order, their numbers, a sender's or a receiver's death.
///
/// The pipe's protocol (frame headers and numbers, counted writes, the inbox, the direct
/// put, the repairs after a dead holder) is C, in one place (ipc_channel.h,
/// ipc_channel.c), which the Lua fast paths of `send` and `recv` call too; this class adds
/// what only it does: the waits (through `Blocking`), messages of several frames, the
/// lane, errors.
public final class Connection {
    /// The locks of both directions, shared by both ends.
    public let channel: SharedRegion
    @usableFromInline let header: UnsafeMutablePointer<ipc_channel_header>
    public private(set) var readFD: Int32
    public private(set) var writeFD: Int32
    public let readDirection: Int
    public let writeDirection: Int
    /// The channel's header in shared memory, for the C fast paths.
    public var sharedHeader: UnsafeMutableRawPointer { UnsafeMutableRawPointer(header) }
    /// True once this end is closed in this process.
    public private(set) var isClosed = false
    /// This process has asked for the larger pipe (`largePipe`), once.
    var grown = false

    /// A message larger than `growAt` bytes has the pipe grown to `largePipe` bytes first
    /// (F_SETPIPE_SZ, once): with the default 64 KiB the sender and the receiver take turns
    /// sleeping and waking every 16 frames. The kernel allocates the pages only while bytes
    /// are in the pipe; it may refuse (the user's pipe budget), and then nothing changes.
    static let growAt = 256 << 10
    static let largePipe = Int32(1 << 20)

    /// Messages longer than this go through the lane, unless a controlled scheduler runs
    /// the processes (then a message's frames are all in the pipe, as a wait for a slot
    /// is not one a step can see coming).
    static let laneAt = Int(IPC_LANE_MIN)
    static let laneSlots = Int(IPC_LANE_SLOTS)
    static let laneSlot = Int(IPC_LANE_SLOT)
    /// Where the slots start in the channel's region, and the region's whole size.
    static let laneOffset = (MemoryLayout<ipc_channel_header>.size + 4095) & ~4095
    static let regionSize = laneOffset + 2 * laneSlots * laneSlot
    static let flagLane = UInt32(IPC_PIPE_LANE)
    /// The payload of a lane frame: u32 slot, u32 length.
    static let laneFramePayload = 8
    /// How long a sender waits for its next slot to come free (a spin, then a sleep that
    /// the receiver which consumes the slot's frame ends) before it sends a part of
    /// `pipePart` bytes through the pipe itself. A variable for the tests, which make it
    /// long: a lost wake-up then shows (kept in the core's context).
    static var slotWaitSeconds: Double {
        get { CoreExecution.current.slotWaitSeconds > 0 ? CoreExecution.current.slotWaitSeconds : defaultSlotWait }
        set { CoreExecution.current.slotWaitSeconds = newValue }
    }
    static let defaultSlotWait = 0.05
    static let pipePart = 64 << 10

    /// check (over the rest of the header), length and flags, payload CRC-32C, sequence
    /// number, trace id.
    static let frameHeader = Int(IPC_PIPE_FRAME_HEADER)
    /// `ipc_channel_inbox.bytes` follows the inbox's counters (Swift does not import a C
    /// array this large as a field; the C header asserts the offset).
    static let inboxBytesOffset = 160
    public static let maxFramePayload = Int(PIPE_BUF) - 24
    static let flagFirst = UInt32(IPC_PIPE_FIRST)
    static let flagLast = UInt32(IPC_PIPE_LAST)
    static let flagRaw = UInt32(IPC_PIPE_RAW)
    static let lengthMask = UInt32(IPC_PIPE_LENGTH_MASK)
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
        // The lanes' slots are paid for only once a large message touches them.
        let region = try SharedRegion(passableSize: regionSize, name: "ipcplay-pipe")
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
        do { return try Pipe.make() } catch { throw IPCError.resource("cannot create a pipe: \(error)") }
    }

    public var name: String { loadName(from: &header.pointee.name, capacity: Int(IPC_NAME_CAP)) }

    /// What travels with a Connection handed to another process: the channel's shared
    /// memory, this end's pipe descriptors, and which directions they serve.
    public var handle: (descriptors: [Int32], readDirection: Int, writeDirection: Int) {
        var fds = [channel.fd]
        if readFD >= 0 { fds.append(readFD) }
        if writeFD >= 0 { fds.append(writeFD) }
        return (fds, readDirection, writeDirection)
    }

    /// Rebuilds an end received from another process (takes ownership of the descriptors).
    public static func adopt(channelFD: Int32, readFD: Int32, writeFD: Int32, readDirection: Int, writeDirection: Int) throws(IPCError) -> Connection {
        let region: SharedRegion
        do { region = try SharedRegion(adopting: channelFD) } catch {
            if readFD >= 0 { Glibc.close(readFD) }
            if writeFD >= 0 { Glibc.close(writeFD) }
            throw error
        }
        guard region.size >= regionSize,
              region.header(ipc_channel_header.self).pointee.magic == magic,
              (readFD >= 0) == (readDirection >= 0), (writeFD >= 0) == (writeDirection >= 0),
              readDirection < 2, writeDirection < 2 else {
            if readFD >= 0 { Glibc.close(readFD) }
            if writeFD >= 0 { Glibc.close(writeFD) }
            throw IPCError.malformed("the descriptors received are not a Connection")
        }
        // The flag belongs to the open file, so it came along; set it in case it did not.
        for fd in [readFD, writeFD] where fd >= 0 { _ = ipc_set_nonblocking(fd, 1) }
        return Connection(channel: region, readFD: readFD, writeFD: writeFD, readDirection: readDirection, writeDirection: writeDirection)
    }
    public var canReceive: Bool { readFD >= 0 }
    public var canSend: Bool { writeFD >= 0 }

    /// The lock `index` of the pair at `field` (the header lives in shared memory, so
    /// the address is stable).
    static func lock(_ h: UnsafeMutablePointer<ipc_channel_header>, _ field: PartialKeyPath<ipc_channel_header>, _ index: Int) -> RobustLock {
        let offset = MemoryLayout<ipc_channel_header>.offset(of: field)!
        let line = UnsafeMutableRawPointer(h) + offset + index * MemoryLayout<ipc_line_lock>.stride
        return RobustLock(line.assumingMemoryBound(to: ipc_robust_lock.self))
    }

    func sendLock(_ direction: Int) -> RobustLock { Self.lock(header, \.send_lock, direction) }
    func receiveLock(_ direction: Int) -> RobustLock { Self.lock(header, \.recv_lock, direction) }

    /// Closes this end in this process (other processes keep their copies).
    public func close() {
        if readFD >= 0 {
            leaveDirectPuts()
            Glibc.close(readFD); readFD = -1
        }
        if writeFD >= 0 { Glibc.close(writeFD); writeFD = -1 }
        isClosed = true
    }

    // MARK: - Sending

    public enum SendOutcome: Equatable { case done, closed }

    /// Sends one message (`raw`: bytes from `send_bytes`, not an encoded value).
    public func send(_ payload: UnsafeRawBufferPointer, raw: Bool, id: UInt64 = 0) -> SendOutcome {
        guard writeFD >= 0 else { return .closed }
        let lock = sendLock(writeDirection)
        // Taken over from a dead sender: it may have named a slot in a frame it never wrote.
        _ = lock.acquire(deadline: .never, object: self.name) { _ in ipc_channel_fence(header, Int32(writeDirection)) }
        defer { lock.release() }
        let total = payload.count
        if total > Self.laneAt && !Blocking.isControlled, let bytes = payload.baseAddress {
            return sendThroughLane(bytes, total, raw: raw, id: id)
        }
        return writeFrames(payload.baseAddress, 0..<total, of: total, raw: raw, id: id) ? .done : .closed
    }

    /// Writes the bytes `range` of a message of `total` bytes as frames in the pipe (the
    /// first and the last flagged as such). A full pipe parks the sender in `poll` until
    /// there is room, or until no reader is left (then false, as for EPIPE).
    func writeFrames(_ payload: UnsafeRawPointer?, _ range: Range<Int>, of total: Int, raw: Bool, id: UInt64) -> Bool {
        if range.count > Self.growAt && !grown {
            grown = true
            _ = ipc_pipe_grow(writeFD, Self.largePipe)
        }
        var offset = range.lowerBound
        repeat {
            let n = min(Self.maxFramePayload, range.upperBound - offset)
            let word = Self.frameWord(UInt32(n), part: offset, n, of: total, raw: raw)
            guard writeNumberedFrame(word, payload.map { $0 + offset }, id: id) else { return false }
            offset += n
        } while offset < range.upperBound
        return true
    }

    /// Sends a large message through the lane (the send lock held): per part, the next
    /// slot once it is free, the part copied into it, and a frame that names it. A slot
    /// that does not come free within `slotWaitSeconds` (no receiver is taking parts, or
    /// none is left) has the next part go through the pipe itself: the sender never waits
    /// for a slot without a deadline, and waits for ever only as a sender on a pipe does,
    /// in `poll` on a full pipe, which the last reader's exit ends (EPIPE: "closed").
    func sendThroughLane(_ payload: UnsafeRawPointer, _ total: Int, raw: Bool, id: UInt64) -> SendOutcome {
        let lane = self.lane(writeDirection)
        if ipc_load32(&lane.pointee.fenced) != 0 {
            guard fenceLane() else { return .closed }
        }
        var offset = 0
        repeat {
            let slot = Int(lane.pointee.next % UInt32(Self.laneSlots))
            guard slotComesFree(slot) else {
                let n = min(Self.pipePart, total - offset)
                guard writeFrames(payload, offset..<(offset + n), of: total, raw: raw, id: id) else { return .closed }
                offset += n
                continue
            }
            lane.pointee.next &+= 1
            let n = min(Self.laneSlot, total - offset)
            laneBytes(writeDirection, slot).copyMemory(from: payload + offset, byteCount: n)
            let word = Self.frameWord(UInt32(Self.laneFramePayload) | Self.flagLane, part: offset, n, of: total, raw: raw)
            var body = (UInt32(slot), UInt32(n))
            guard withUnsafeBytes(of: &body, { writeNumberedFrame(word, $0.baseAddress, id: id, slot: slot) }) else { return .closed }
            offset += n
        } while offset < total
        return .done
    }

    /// A frame's word for the part of `n` bytes at `offset` in a message of `total`:
    /// `base` (its length, and the lane flag) with FIRST, LAST and RAW as they apply.
    static func frameWord(_ base: UInt32, part offset: Int, _ n: Int, of total: Int, raw: Bool) -> UInt32 {
        var word = base
        if offset == 0 { word |= flagFirst }
        if offset + n == total { word |= flagLast }
        if raw { word |= flagRaw }
        return word
    }

    /// Writes a frame of `word` (length and flags) with `payload`, numbered next; the
    /// number is also the slot's, when the frame names one. False when no reader is left.
    func writeNumberedFrame(_ word: UInt32, _ payload: UnsafeRawPointer?, id: UInt64, slot: Int? = nil) -> Bool {
        let length = Int(word & Self.lengthMask)
        // Reserved before the write (a slot named by a frame never written is what the
        // fence is for).
        var frameHeader: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &frameHeader) { hdr in
            let sequence = ipc_channel_number_frame(header, Int32(writeDirection), hdr.baseAddress, word, payload, length, id)
            if let slot { slotSequence(writeDirection, slot).pointee = sequence }
            guard writeFrame(hdr.baseAddress!, payload, length) else { return false }
            ipc_store32_release(&inbox(writeDirection).pointee.written, sequence)
            return true
        }
    }

    /// After a dead sender: an empty frame (part of no message), and no slot is reused
    /// until it is consumed, with every frame before it.
    func fenceLane() -> Bool {
        guard writeNumberedFrame(0, nil, id: 0) else { return false }
        let sequence = inbox(writeDirection).pointee.sequence
        for slot in 0..<Self.laneSlots { slotSequence(writeDirection, slot).pointee = sequence }
        ipc_store32(&lane(writeDirection).pointee.fenced, 0)
        return true
    }

    /// True when the frame that last named `slot` is consumed, now or within
    /// `slotWaitSeconds`. Consumed when `consumed` lies between the slot's frame and the
    /// last frame written, counted back from the last one (the numbers wrap: a slot unused
    /// for 2^31 frames is as free as one used a moment ago).
    func slotComesFree(_ slot: Int) -> Bool {
        let box = inbox(writeDirection)
        let target = slotSequence(writeDirection, slot).pointee
        let consumed = Self.word(box, \.consumed)
        let last = box.pointee.sequence  // stable: we hold the send lock
        let free = { last &- ipc_load32(consumed) <= last &- target }
        if free() || Spin.until(Spin.waitSpins, free) { return true }
        let lane = self.lane(writeDirection)
        defer { ipc_store32(&lane.pointee.waiting, 0) }
        let deadline = Deadline.after(seconds: Self.slotWaitSeconds)
        return Blocking.parked(deadline) {
            while true {
                // Said before each look: receivers store `consumed`, then read this, and
                // wake the sender for every frame consumed while it is set.
                ipc_store32(&lane.pointee.waiting, 1)
                let seen = ipc_load32(consumed)
                if free() { return true }
                if Blocking.sleep(on: consumed, while: seen, deadline: deadline) == .timedOut { return free() }
            }
        }
    }

    /// A word of `box` that other processes change, for the atomic calls (the inbox lives
    /// in shared memory, so the address is stable).
    static func word<T>(_ box: UnsafeMutablePointer<ipc_channel_inbox>, _ field: KeyPath<ipc_channel_inbox, T>) -> UnsafeMutablePointer<T> {
        (UnsafeMutableRawPointer(box) + MemoryLayout<ipc_channel_inbox>.offset(of: field)!).assumingMemoryBound(to: T.self)
    }

    /// Writes one frame (at most PIPE_BUF bytes, so the kernel writes it whole or not at
    /// all; ipc_channel_write_frame counts it first): the pipe is non-blocking, so when it
    /// is full the sender parks in `poll` until there is room.
    func writeFrame(_ hdr: UnsafeRawPointer, _ payload: UnsafeRawPointer?, _ n: Int) -> Bool {
        while true {
            switch Syscall.shim("write", { ipc_channel_write_frame(header, Int32(writeDirection), writeFD, hdr, Self.frameHeader, payload, n) }) {
            case .success(let written):
                // A short write cannot happen: a write of at most PIPE_BUF bytes to a
                // non-blocking pipe is all or nothing.
                return written == Self.frameHeader + n
            case .failure(.resourceTemporarilyUnavailable):
                _ = Blocking.poll(writeFD, Int16(POLLOUT), deadline: .never)
            case .failure:
                return false  // EPIPE: every reader is gone
            }
        }
    }

    // MARK: - Receiving

    public enum ReceiveOutcome: Equatable { case message(raw: Bool, id: UInt64), closed, timedOut }

    func inbox(_ direction: Int) -> UnsafeMutablePointer<ipc_channel_inbox> { Self.inbox(header, direction) }

    func lane(_ direction: Int) -> UnsafeMutablePointer<ipc_channel_lane> {
        let offset = MemoryLayout<ipc_channel_header>.offset(of: \.lane)!
        return (UnsafeMutableRawPointer(header) + offset).assumingMemoryBound(to: ipc_channel_lane.self) + direction
    }

    /// The number of the frame that last named `slot` of `direction`'s lane.
    func slotSequence(_ direction: Int, _ slot: Int) -> UnsafeMutablePointer<UInt32> {
        let offset = MemoryLayout<ipc_channel_lane>.offset(of: \.slot_sequence)!
        return (UnsafeMutableRawPointer(lane(direction)) + offset).assumingMemoryBound(to: UInt32.self) + slot
    }

    func laneBytes(_ direction: Int, _ slot: Int) -> UnsafeMutableRawPointer {
        channel.base + Self.laneOffset + (direction * Self.laneSlots + slot) * Self.laneSlot
    }

    static func inbox(_ header: UnsafeMutablePointer<ipc_channel_header>, _ direction: Int) -> UnsafeMutablePointer<ipc_channel_inbox> {
        let offset = MemoryLayout<ipc_channel_header>.offset(of: \.inbox)!
        return (UnsafeMutableRawPointer(header) + offset).assumingMemoryBound(to: ipc_channel_inbox.self) + direction
    }

    enum Fill { case ok, closed, timedOut }

    /// The inbox's (active half, start, end), read as one word (ipc_inbox_load).
    @inline(__always)
    func state(_ box: UnsafeMutablePointer<ipc_channel_inbox>) -> ipc_inbox_state { ipc_inbox_load(box) }

    /// Reads into the inbox until it holds at least `minimum` unconsumed bytes. Waits
    /// until `deadline`; in the middle of a message, in slices, giving up on the message
    /// (`.timedOut`) when its sender has died.
    func fill(_ box: UnsafeMutablePointer<ipc_channel_inbox>, minimum: Int, deadline: Deadline, midMessage: Bool) -> Fill {
        while true {
            var seen: UInt32 = 0
            switch ipc_inbox_fill(box, readFD, UInt64(minimum), 0, &seen) {
            case Int32(IPC_FILL_READY): return .ok
            case Int32(IPC_FILL_CLOSED): return .closed
            default: break
            }
            // Nothing yet: the sender is usually about to write; watch its counter for a
            // moment rather than sleep in poll (a wake-up costs both sides a syscall).
            if Spin.until(Spin.waitSpins, { ipc_load32(&box.pointee.written) != seen }) { continue }
            leaveDirectPuts()
            if midMessage {
                if !Blocking.poll(readFD, Int16(POLLIN), deadline: .after(seconds: 1)) {
                    let sender = sendLock(readDirection).holder
                    if sender == 0 || !ProcessControl.exists(sender) { return .timedOut }
                }
                continue
            }
            if !Blocking.poll(readFD, Int16(POLLIN), deadline: deadline) { return .timedOut }
        }
    }

    /// This process no longer takes frames in C on this end (it sleeps, or closes it):
    /// senders stop putting frames straight into the inbox for it (ipc_channel_inbox).
    func leaveDirectPuts() {
        var me = UInt32(bitPattern: ProcessIdentity.pid)
        let receiver = Self.word(inbox(readDirection), \.receiver)
        _ = ipc_cas32(receiver, &me, 0)
        ipc_exit_forget_word(receiver)
    }

    /// Waits until a message arrives (or `deadline`), and reads it whole into `out`.
    public func receive(into out: ByteBuffer, deadline: Deadline) -> ReceiveOutcome {
        guard readFD >= 0 else { return .closed }
        let lock = receiveLock(readDirection)
        let box = inbox(readDirection)
        let direction = Int32(readDirection)
        guard lock.acquire(deadline: deadline, object: self.name, repair: { _ in ipc_inbox_recover(header, direction) }) else {
            return .timedOut
        }
        defer { lock.release() }
        var started = false
        var raw = false
        var id: UInt64 = 0
        out.reset()
        while true {
            switch fill(box, minimum: Self.frameHeader, deadline: deadline, midMessage: started) {
            case .ok: break
            case .closed: return .closed
            case .timedOut:
                if !started { return .timedOut }
                started = false  // its sender died mid-message: drop it
                out.reset()
                continue
            }
            var word: UInt32 = 0, crc: UInt32 = 0, sequence: UInt32 = 0, frameID: UInt64 = 0
            guard ipc_inbox_frame(header, box, &word, &crc, &sequence, &frameID) != 0 else {
                // Not a frame boundary: bytes lost by a receiver that died with them.
                // Slide to the next valid header.
                ipc_inbox_skip(box, 1)
                continue
            }
            let length = Int(word & Self.lengthMask)
            // A frame is written whole, so the rest of it is already in the pipe.
            switch fill(box, minimum: Self.frameHeader + length, deadline: .never, midMessage: true) {
            case .ok: break
            case .closed: return .closed
            case .timedOut: ipc_inbox_skip(box, 1); continue
            }
            let at = UnsafeRawPointer(ipc_inbox_front(box, state(box))!)
            guard ipc_crc32c(0, at + Self.frameHeader, length) == crc else {
                // A true header followed by bytes that are not its payload: the rest of
                // this frame went with a receiver that died after reading it. Slide on.
                ipc_inbox_skip(box, 1)
                continue
            }
            if word & Self.flagFirst != 0 {
                out.reset()
                started = true
                raw = word & Self.flagRaw != 0
                id = frameID
            }
            if word & Self.flagLane != 0 {
                // A part in a slot, copied out before the frame is consumed (until then the
                // slot is not written again). A frame already counted consumed is one a
                // receiver killed before it took the frame out of the inbox: its slot may
                // hold another part by now, so its message is dropped (the dead receiver's).
                let slot = Int(at.loadUnaligned(fromByteOffset: Self.frameHeader, as: UInt32.self))
                let n = Int(at.loadUnaligned(fromByteOffset: Self.frameHeader + 4, as: UInt32.self))
                let fresh = Int32(bitPattern: sequence &- ipc_load32(Self.word(box, \.consumed))) > 0
                if started && fresh && length == Self.laneFramePayload && slot < Self.laneSlots && n <= Self.laneSlot {
                    out.append(laneBytes(readDirection, slot), count: n)
                } else {
                    started = false
                }
            } else if started {
                out.append(at + Self.frameHeader, count: length)
            }
            ipc_inbox_consume_frame(header, direction, sequence, UInt32(length))
            if started && word & Self.flagLast != 0 { return .message(raw: raw, id: id) }
        }
    }

    /// True when a message (or the end of the stream) is ready to read.
    public func poll(deadline: Deadline) -> Bool {
        guard readFD >= 0 else { return false }
        beginSelect()
        defer { endSelect() }
        if ipc_inbox_has_bytes(inbox(readDirection)) != 0 { return true }
        return Blocking.poll(readFD, Int16(POLLIN), deadline: deadline)
    }

    /// Said before looking at the inbox and then sleeping in poll(2) on the pipe (and
    /// `endSelect` after): while it is said, senders put no frame straight into the inbox,
    /// and one that did in the meantime moves it to the pipe (see ipc_channel_inbox). A
    /// poller killed in between leaves the count high, which only keeps frames on the pipe.
    public func beginSelect() {
        guard readFD >= 0 else { return }
        _ = ipc_add32(&inbox(readDirection).pointee.pollers, 1)
    }

    public func endSelect() {
        guard readFD >= 0 else { return }
        _ = ipc_sub32(&inbox(readDirection).pointee.pollers, 1)
    }

    /// True when unconsumed bytes wait in this end's inbox (read ahead by some receiver).
    public var hasBufferedInput: Bool {
        guard readFD >= 0 else { return false }
        return ipc_inbox_has_bytes(inbox(readDirection)) != 0
    }
}
