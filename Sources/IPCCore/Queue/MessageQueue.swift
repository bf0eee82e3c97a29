import CSystemShim
import Glibc
import SystemPackage

/// A FIFO of byte messages shared by every process forked after it is made: a ring of
/// frames in shared memory, guarded by a robust mutex, with futex parking.
///
/// Design notes:
/// - Every change to the ring's bookkeeping is journaled: the old fields are saved before
///   an update and the journal cleared after it, so that when a process is killed in the
///   middle, the next locker (told by EOWNERDEAD) restores the saved fields. Frame bytes
///   are written before the update that makes them visible.
/// - A message that fits in one frame is put and taken under the state lock alone.
///   Larger messages stream through the ring in frames: the producer holds `put_lock` for
///   the whole message and the consumer `get_lock`, so frames of two messages never mix,
///   and a process that dies mid-message is detected through those robust locks: a dead
///   producer's message is closed with an ABORT frame, a dead consumer's is skipped.
/// - Streamed frames are copied in and out without the state lock (the lock only places
///   and publishes them), so that producer and consumer copy at the same time, and they
///   cycle through the ring's first `hotZone` bytes, whose pages stay mapped: a fresh
///   page costs a fault in each process (and a trim), more than the copy. The producer
///   waits a moment for the consumer to make room there rather than run ahead into cold
///   pages, when a consumer of this queue is about.
/// - Waiters sleep on futex words (`data_seq`, `space_seq`, `join_seq`); a producer
///   wakes only when someone sleeps (`readers_waiting`), so an uncontended put is one
///   lock, one copy, one unlock.
/// - The C fast paths of `q:put` and `q:get` (ipc_fast.c) put and take an item of one
///   small frame by the same rules, when nothing is in the way; they leave the rest here.
public final class MessageQueue {
    public let region: SharedRegion
    let h: UnsafeMutablePointer<ipc_queue_header>
    let ring: UnsafeMutableRawPointer
    /// Signalled on put while some process waits on this queue in `ipc.wait`.
    public let eventFD: Int32
    public let isJoinable: Bool

    public static let defaultCapacity = 256 << 20
    public static let headerSpace = Int(IPC_QUEUE_HEADER_SPACE)
    static let frameHeader = Int(IPC_QUEUE_FRAME_HEADER)
    static let magic: UInt64 = 0x6970_6371_7565_7565  // "ipcqueue"
    /// Ring bytes below this offset are never given back to the kernel (they are hot).
    static let hotZone = Int(IPC_QUEUE_HOT_ZONE)
    static let trimBlock = 1 << 20
    /// Payload bytes of a streamed frame: four frames fill the hot zone. Larger messages
    /// stream; smaller ones go in one frame.
    static let streamFrame = hotZone / 4 - 64
    /// How long a producer waits for the consumer to make room in the hot zone before
    /// it writes beyond it (each sign of progress starts the wait again). Long enough for
    /// a consumer to turn a 64 MiB item into a Lua string in fresh memory (50-100 ms
    /// here): spilling into cold pages costs both sides a fault per page, and a trim.
    static let hotWaitNanoseconds: Int64 = 250_000_000

    // Frame flags.
    static let first = UInt16(IPC_FRAME_FIRST)
    static let last = UInt16(IPC_FRAME_LAST)
    static let wrap = UInt16(IPC_FRAME_WRAP)
    static let abort = UInt16(IPC_FRAME_ABORT)

    // Journal kinds.
    static let journalPut = UInt32(IPC_JOURNAL_PUT)
    static let journalGet = UInt32(IPC_JOURNAL_GET)

    /// - Parameters:
    ///   - maxsize: item limit, 0 for none.
    ///   - capacity: ring bytes (reserved, paid for only as used); items larger than
    ///     `streamFrame` (or a quarter of the ring) stream through it.
    public init(maxsize: Int, capacity: Int = MessageQueue.defaultCapacity, joinable: Bool, name: String) throws(IPCError) {
        let cap = max(4096, (capacity + 7) & ~7)
        region = try SharedRegion(size: Self.headerSpace + cap, reserveOnly: true)
        h = region.header(ipc_queue_header.self)
        ring = region.base + Self.headerSpace
        isJoinable = joinable
        try RobustLock(&h.pointee.state_lock).initialize()
        try RobustLock(&h.pointee.put_lock).initialize()
        try RobustLock(&h.pointee.get_lock).initialize()
        h.pointee.capacity = UInt64(cap)
        h.pointee.max_frame = UInt64(min(cap / 4 - Self.frameHeader, Self.streamFrame))
        h.pointee.maxsize = UInt64(maxsize)
        storeName(name, into: &h.pointee.name, capacity: Int(IPC_NAME_CAP))
        let fd = ipc_eventfd()
        if fd < 0 { throw IPCError.resource("cannot create an eventfd: \(Errno(rawValue: -fd))") }
        eventFD = fd
        h.pointee.magic = Self.magic
    }

    deinit { close(eventFD) }

    /// The header in shared memory (the ring follows at `headerSpace`), for the C fast paths.
    public var header: UnsafeMutableRawPointer { UnsafeMutableRawPointer(h) }
    public var name: String { loadName(from: &h.pointee.name, capacity: Int(IPC_NAME_CAP)) }
    public var maxsize: Int { Int(h.pointee.maxsize) }
    public var capacity: Int { Int(h.pointee.capacity) }
    public var maxFrame: Int { Int(h.pointee.max_frame) }

    // MARK: - Snapshots

    public var count: Int { Int(ipc_load64(&h.pointee.items)) }
    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { maxsize > 0 && count >= maxsize }
    /// Ready when it holds an item (a get's probe).
    public var itemsProbe: Probe { Probe(&h.pointee.items, .notEqual, 0) }
    /// Ready when it has room for an item (a put's probe; never full without a maxsize).
    public var roomProbe: Probe { Probe(&h.pointee.items, .below, maxsize > 0 ? UInt64(maxsize) : .max) }
    /// Ready when every task is done (a join's probe).
    public var doneProbe: Probe { Probe(&h.pointee.unfinished, .equal, 0) }
    public var unfinishedTasks: Int { Int(ipc_load64(&h.pointee.unfinished)) }

    // MARK: - Locks and repair

    var stateLock: RobustLock { RobustLock(&h.pointee.state_lock) }
    var putLock: RobustLock { RobustLock(&h.pointee.put_lock) }
    var getLock: RobustLock { RobustLock(&h.pointee.get_lock) }

    func lockState(_ deadline: Deadline, _ during: String) -> Bool {
        stateLock.acquire(deadline: deadline, object: self.name, during: during) { _ in self.rollBackJournal() }
    }

    func unlockState() { stateLock.release() }

    /// Restores the fields saved before an update that a killed process left half done.
    func rollBackJournal() {
        let j = h.pointee.journal
        guard j.kind != 0 else { return }
        h.pointee.head = j.head
        h.pointee.tail = j.tail
        h.pointee.used = j.used
        h.pointee.items = j.items
        h.pointee.unfinished = j.unfinished
        h.pointee.stream_writer = j.stream_writer
        h.pointee.stream_reader = j.stream_reader
        h.pointee.skipping = j.skipping
        ipc_compiler_barrier()
        h.pointee.journal.kind = 0
    }

    func beginUpdate(_ kind: UInt32) {
        h.pointee.journal.head = h.pointee.head
        h.pointee.journal.tail = h.pointee.tail
        h.pointee.journal.used = h.pointee.used
        h.pointee.journal.items = h.pointee.items
        h.pointee.journal.unfinished = h.pointee.unfinished
        h.pointee.journal.stream_writer = h.pointee.stream_writer
        h.pointee.journal.stream_reader = h.pointee.stream_reader
        h.pointee.journal.skipping = h.pointee.skipping
        ipc_compiler_barrier()
        h.pointee.journal.kind = kind
        ipc_compiler_barrier()
    }

    func endUpdate() {
        ipc_compiler_barrier()
        h.pointee.journal.kind = 0
        ipc_compiler_barrier()
    }

    /// Takes `put_lock`; when its holder died mid-message, closes that message.
    func acquirePutLock(_ deadline: Deadline) -> Bool {
        putLock.acquire(deadline: deadline, object: self.name, during: "queue:put") { dead in
            _ = self.lockState(.never, "queue:put")
            let writer = Int32(bitPattern: self.h.pointee.stream_writer)
            if writer != 0 && (writer == dead || !ProcessControl.exists(writer)) {
                self.appendAbort()
            }
            self.h.pointee.copying = 0  // the dead holder's frame was never published
            self.unlockState()
        }
    }

    /// Takes `get_lock`; when its holder died mid-message, the rest of it is skipped.
    func acquireGetLock(_ deadline: Deadline) -> Bool {
        getLock.acquire(deadline: deadline, object: self.name, during: "queue:get") { dead in
            _ = self.lockState(.never, "queue:get")
            let reader = Int32(bitPattern: self.h.pointee.stream_reader)
            if reader != 0 && (reader == dead || !ProcessControl.exists(reader)) {
                self.beginUpdate(Self.journalGet)
                self.h.pointee.stream_reader = 0
                self.h.pointee.skipping = 1
                self.endUpdate()
            }
            self.unlockState()
        }
    }

    // MARK: - Ring geometry (under the state lock)

    static func frameSize(_ payload: Int) -> Int { frameHeader + ((payload + 7) & ~7) }

    /// Where a frame of `size` bytes goes, keeping 16 contiguous free bytes after it (room
    /// for an ABORT frame), or nil when it does not fit now. Back to the front, where the
    /// pages are warm, as soon as the frame fits there and not before the hot zone's end.
    func placement(size: Int) -> (offset: Int, padding: Int)? {
        let cap = Int(h.pointee.capacity)
        let used = Int(h.pointee.used)
        let need = size + Self.frameHeader
        if used == 0 { return need <= cap ? (0, 0) : nil }
        let head = Int(h.pointee.head)
        let tail = Int(h.pointee.tail)
        if tail > head {
            if tail + need > Self.hotZone && need <= head { return (0, cap - tail) }
            if need <= cap - tail { return (tail, 0) }
            return nil
        }
        return need <= head - tail ? (tail, 0) : nil
    }

    /// A place for a frame of `size` bytes that ends within the hot zone, or nil.
    func hotPlacement(size: Int) -> (offset: Int, padding: Int)? {
        let cap = Int(h.pointee.capacity)
        let hot = min(cap, Self.hotZone)
        let need = size + Self.frameHeader
        if h.pointee.used == 0 { return need <= hot ? (0, 0) : nil }
        let head = Int(h.pointee.head)
        let tail = Int(h.pointee.tail)
        if tail > head {
            if tail + need <= hot { return (tail, 0) }
            return need <= min(head, hot) ? (0, cap - tail) : nil
        }
        return need <= head - tail && tail + need <= hot ? (tail, 0) : nil
    }

    func writeFrameHeader(at offset: Int, length: Int, flags: UInt16, id: UInt64) {
        let p = ring + offset
        p.storeBytes(of: UInt32(length), as: UInt32.self)
        p.storeBytes(of: flags, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: 0, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: id, toByteOffset: 8, as: UInt64.self)
    }

    /// Writes bytes `from..<from+n` of `message` as a frame at `offset` (not yet visible).
    func writeFrame(_ message: MessageParts, from: Int, count n: Int, flags: UInt16, id: UInt64, at offset: Int) {
        writeFrameHeader(at: offset, length: n, flags: flags, id: id)
        message.copy(from: from, count: n, to: ring + offset + Self.frameHeader)
    }

    /// Makes a written frame of `size` bytes visible (journaled). The caller holds the
    /// state lock. The ring may have emptied since the place was chosen (a frame written
    /// outside the lock): the frame then starts it, wherever it lies.
    func commit(size: Int, flags: UInt16, at place: (offset: Int, padding: Int)) {
        let cap = Int(h.pointee.capacity)
        let empty = h.pointee.used == 0
        let padding = empty ? 0 : place.padding
        if padding >= Self.frameHeader {
            writeFrameHeader(at: cap - padding, length: 0, flags: Self.wrap, id: 0)
        }
        beginUpdate(Self.journalPut)
        if empty { h.pointee.head = UInt64(place.offset) }
        h.pointee.tail = UInt64(place.offset + size)
        h.pointee.used += UInt64(padding + size)
        if flags & Self.first != 0 {
            h.pointee.items += 1
            h.pointee.unfinished += 1
            if flags & Self.last == 0 { h.pointee.stream_writer = UInt32(bitPattern: ProcessIdentity.pid) }
        }
        if flags & Self.last != 0 && flags & Self.first == 0 { h.pointee.stream_writer = 0 }
        endUpdate()
        let newTail = h.pointee.tail
        if newTail > h.pointee.high_water { h.pointee.high_water = newTail }
    }

    /// Writes one frame and publishes it. The caller holds the state lock.
    func publish(_ message: MessageParts, from: Int, count n: Int, flags: UInt16, id: UInt64, at place: (offset: Int, padding: Int)) {
        writeFrame(message, from: from, count: n, flags: flags, id: id, at: place.offset)
        commit(size: Self.frameSize(n), flags: flags, at: place)
    }

    /// Closes the current streamed message with an ABORT frame (there is always room).
    func appendAbort() {
        let cap = Int(h.pointee.capacity)
        var offset = Int(h.pointee.tail)
        var padding = 0
        if h.pointee.used == 0 {
            offset = 0
        } else if Int(h.pointee.tail) > Int(h.pointee.head) && cap - offset < Self.frameHeader {
            padding = cap - offset
            offset = 0
        }
        writeFrameHeader(at: offset, length: 0, flags: Self.abort, id: 0)
        beginUpdate(Self.journalPut)
        if h.pointee.used == 0 { h.pointee.head = 0 }
        h.pointee.tail = UInt64(offset + Self.frameHeader)
        h.pointee.used += UInt64(padding + Self.frameHeader)
        h.pointee.stream_writer = 0
        endUpdate()
        wakeReaders(all: true)
    }

    /// Moves `head` past wrap padding. The caller holds the state lock.
    func skipPadding() {
        let cap = Int(h.pointee.capacity)
        let head = Int(h.pointee.head)
        let pad: Int
        if cap - head < Self.frameHeader {
            pad = cap - head
        } else if (ring + head).load(fromByteOffset: 4, as: UInt16.self) & Self.wrap != 0 {
            pad = cap - head
        } else {
            return
        }
        beginUpdate(Self.journalGet)
        h.pointee.head = 0
        h.pointee.used -= UInt64(pad)
        endUpdate()
        trim(from: head, to: cap)
    }

    /// Consumes the frame at `head`: its bytes are appended to `out` when given.
    func consumeFrame(into out: ByteBuffer?, itemTaken: Bool, streamReader: UInt32?, skipping: UInt32?, taskDropped: Bool) {
        let head = Int(h.pointee.head)
        let length = Int((ring + head).load(as: UInt32.self))
        if let out, length > 0 { out.append(ring + head + Self.frameHeader, count: length) }
        let size = Self.frameSize(length)
        beginUpdate(Self.journalGet)
        h.pointee.used -= UInt64(size)
        if h.pointee.used == 0 {
            h.pointee.head = 0
            h.pointee.tail = 0
        } else {
            h.pointee.head = UInt64(head + size)
        }
        if itemTaken { h.pointee.items -= 1 }
        if let streamReader { h.pointee.stream_reader = streamReader }
        if let skipping { h.pointee.skipping = skipping }
        if taskDropped && isJoinable && h.pointee.unfinished > 0 { h.pointee.unfinished -= 1 }
        endUpdate()
        if h.pointee.used == 0 {
            trimAll()
        } else {
            trim(from: head, to: head + size)
        }
    }

    /// Gives back pages of the ring consumed beyond the hot zone.
    func trim(from start: Int, to end: Int) {
        let lo = max(start, Self.hotZone)
        let loBlock = (lo + Self.trimBlock - 1) / Self.trimBlock * Self.trimBlock
        let hiBlock = end / Self.trimBlock * Self.trimBlock
        if hiBlock > loBlock { Memory.release(ring + loBlock, size: hiBlock - loBlock) }
    }

    func trimAll() {
        // A producer may be writing a frame beyond the hot zone, outside the lock (unless
        // it died doing so: then nobody writes there, and the next producer closes its item).
        if h.pointee.copying != 0 {
            let writer = Int32(bitPattern: h.pointee.stream_writer)
            if writer != 0 && ProcessControl.exists(writer) { return }
            h.pointee.copying = 0
        }
        let high = Int(h.pointee.high_water)
        if high > Self.hotZone {
            let top = min(Int(h.pointee.capacity), (high + Memory.pageSize - 1) / Memory.pageSize * Memory.pageSize)
            Memory.release(ring + Self.hotZone, size: top - Self.hotZone)
            h.pointee.high_water = UInt64(Self.hotZone)
        }
    }

    // MARK: - Waking

    func wakeReaders(all: Bool) {
        if ipc_load32(&h.pointee.readers_waiting) > 0 {
            _ = ipc_add32(&h.pointee.data_seq, 1)
            Futex.wake(&h.pointee.data_seq, count: all ? Int32.max : 1)
        }
        if ipc_load32(&h.pointee.selectors) > 0 {
            var one: UInt64 = 1
            _ = write(eventFD, &one, 8)
        }
    }

    func wakeWriters() {
        if ipc_load32(&h.pointee.writers_waiting) > 0 {
            _ = ipc_add32(&h.pointee.space_seq, 1)
            Futex.wake(&h.pointee.space_seq, count: 1)
        }
    }

    /// Waits with the state lock released, and returns with it held again: first spins
    /// while `ready` (read without the lock) says nothing changed, then sleeps on `word`.
    func sleep(on word: UnsafeMutablePointer<UInt32>, counter: UnsafeMutablePointer<UInt32>, deadline: Deadline, during: String,
               ready: () -> Bool) -> Futex.WaitResult {
        unlockState()
        let changed = Spin.until(Spin.waitSpins, ready)
        _ = lockState(.never, during)
        // Checked again under the lock: a change between the spin and here would not
        // wake us, as we were not yet counted as a sleeper.
        if changed || ready() { return .woken }
        _ = ipc_add32(counter, 1)
        let seq = ipc_load32(word)
        unlockState()
        let r = Blocking.parked(deadline) { Blocking.sleep(on: word, while: seq, deadline: deadline) }
        _ = lockState(.never, during)
        _ = ipc_sub32(counter, 1)
        return r
    }

    // MARK: - put

    public enum PutOutcome: Equatable { case done, timedOut }

    /// Appends one message, waiting for room until `deadline`.
    public func put(_ payload: UnsafeRawBufferPointer, id: UInt64 = 0, deadline: Deadline) -> PutOutcome {
        put(MessageParts(payload), id: id, deadline: deadline)
    }

    /// Appends one message given in two pieces.
    public func put(_ message: MessageParts, id: UInt64 = 0, deadline: Deadline) -> PutOutcome {
        if message.count <= maxFrame { return putSingle(message, id: id, deadline: deadline) }
        return putStreamed(message, id: id, deadline: deadline)
    }

    func putSingle(_ message: MessageParts, id: UInt64, deadline: Deadline) -> PutOutcome {
        guard lockState(deadline, "queue:put") else { return .timedOut }
        let me = UInt32(bitPattern: ProcessIdentity.pid)
        let size = Self.frameSize(message.count)
        var waited = false
        while true {
            let writer = h.pointee.stream_writer
            if writer != 0 && writer != me {
                // A streamed item is going in; its producer holds put_lock until it is done.
                unlockState()
                guard acquirePutLock(deadline) else { return .timedOut }
                putLock.release()
                guard lockState(deadline, "queue:put") else { return .timedOut }
                continue
            }
            let maxsize = h.pointee.maxsize
            if maxsize == 0 || h.pointee.items < maxsize, let place = placement(size: size) {
                publish(message, from: 0, count: message.count, flags: Self.first | Self.last, id: id, at: place)
                let more = waited && h.pointee.writers_waiting > 0 && (maxsize == 0 || h.pointee.items < maxsize)
                unlockState()
                wakeReaders(all: false)
                if more { wakeWriters() }
                return .done
            }
            if deadline.hasExpired { unlockState(); return .timedOut }
            let r = sleep(on: &h.pointee.space_seq, counter: &h.pointee.writers_waiting, deadline: deadline, during: "queue:put") {
                (maxsize == 0 || ipc_load64(&h.pointee.items) < maxsize) && ipc_load64(&h.pointee.used) + UInt64(size) * 2 + 64 < h.pointee.capacity
            }
            waited = true
            if r == .timedOut {
                // One last look: a wake may have raced with the timeout.
                if (maxsize == 0 || h.pointee.items < maxsize) && placement(size: size) != nil && h.pointee.stream_writer == 0 { continue }
                unlockState()
                return .timedOut
            }
        }
    }

    /// Is a consumer about that will make room in the hot zone soon? The last process that
    /// took an item, if it is another one and alive, and no producer gave up waiting for
    /// it since (then, until a consumer takes a streamed frame again, nobody waits).
    func consumerAbout() -> Bool {
        if Blocking.isControlled || h.pointee.spill != 0 { return false }
        let reader = Int32(bitPattern: h.pointee.last_reader)
        return reader != 0 && reader != ProcessIdentity.pid && ProcessControl.exists(reader)
    }

    func putStreamed(_ message: MessageParts, id: UInt64, deadline: Deadline) -> PutOutcome {
        guard acquirePutLock(deadline) else { return .timedOut }
        defer { putLock.release() }
        guard lockState(deadline, "queue:put") else { return .timedOut }
        let total = message.count
        let frame = maxFrame
        var offset = 0
        // The end of the current wait for room in the hot zone (nil: not waiting).
        var hotWaitEnd: Int64?
        var spilling = false
        while offset < total {
            let n = min(frame, total - offset)
            let isFirst = offset == 0
            let isLast = offset + n == total
            let size = Self.frameSize(n)
            var flags: UInt16 = 0
            if isFirst { flags |= Self.first }
            if isLast { flags |= Self.last }
            var chosen: (offset: Int, padding: Int)?
            while true {
                let maxsize = h.pointee.maxsize
                let roomForItem = !isFirst || maxsize == 0 || h.pointee.items < maxsize
                var coldRoom = false
                if roomForItem {
                    if let place = hotPlacement(size: size) { chosen = place; break }
                    if let place = placement(size: size) {
                        if spilling || !consumerAbout() { chosen = place; break }
                        coldRoom = true
                    }
                }
                if deadline.hasExpired {
                    if !isFirst { appendAbort() }
                    unlockState()
                    return .timedOut
                }
                var until = deadline
                if coldRoom {
                    let now = MonotonicClock.nanoseconds()
                    if hotWaitEnd == nil { hotWaitEnd = now + Self.hotWaitNanoseconds }
                    until = deadline.earlier(Deadline(instant: hotWaitEnd))
                }
                let usedBefore = h.pointee.used
                _ = sleep(on: &h.pointee.space_seq, counter: &h.pointee.writers_waiting, deadline: until, during: "queue:put") {
                    ipc_load64(&h.pointee.used) < usedBefore
                }
                if h.pointee.used < usedBefore {
                    hotWaitEnd = nil  // the consumer is there: wait for it again if need be
                } else if coldRoom, let end = hotWaitEnd, MonotonicClock.nanoseconds() >= end {
                    // It did not come: write beyond the hot zone, and tell the next producers.
                    spilling = true
                    h.pointee.spill = 1
                }
            }
            guard let place = chosen else { break }
            if isFirst {
                // From now on the other producers wait for put_lock (journaled: a producer
                // killed before its first frame is published leaves only a stray ABORT).
                beginUpdate(Self.journalPut)
                h.pointee.stream_writer = UInt32(bitPattern: ProcessIdentity.pid)
                endUpdate()
            }
            // The bytes go in without the lock: the place is ours (only put_lock's holder
            // places frames now), and nobody trims the whole ring meanwhile.
            h.pointee.copying = UInt64(place.offset + size)
            unlockState()
            writeFrame(message, from: offset, count: n, flags: flags, id: id, at: place.offset)
            _ = lockState(.never, "queue:put")
            commit(size: size, flags: flags, at: place)
            h.pointee.copying = 0
            unlockState()
            wakeReaders(all: !isFirst)
            if !isLast { _ = lockState(.never, "queue:put") }
            offset += n
        }
        return .done
    }

    // MARK: - get

    public enum GetOutcome: Equatable { case item(id: UInt64), timedOut }

    /// Takes the next message into `out` (which is reset first), waiting until `deadline`.
    public func get(into out: ByteBuffer, deadline: Deadline) -> GetOutcome {
        guard lockState(deadline, "queue:get") else { return .timedOut }
        let me = UInt32(bitPattern: ProcessIdentity.pid)
        var holdingGetLock = false
        var streamID: UInt64 = 0
        defer { if holdingGetLock { getLock.release() } }
        while true {
            let reader = h.pointee.stream_reader
            if !holdingGetLock && (reader != 0 || h.pointee.skipping != 0) {
                // Another consumer is in the middle of a streamed item (or skipping one).
                unlockState()
                guard acquireGetLock(deadline) else { return .timedOut }
                holdingGetLock = true
                guard lockState(deadline, "queue:get") else { return .timedOut }
                continue
            }
            if h.pointee.used == 0 {
                if reader == me {
                    // Mid-item: the rest is coming, unless its producer died.
                    let writer = Int32(bitPattern: h.pointee.stream_writer)
                    if writer == 0 || !ProcessControl.exists(writer) {
                        beginUpdate(Self.journalGet)
                        h.pointee.stream_writer = 0
                        h.pointee.stream_reader = 0
                        if isJoinable && h.pointee.unfinished > 0 { h.pointee.unfinished -= 1 }
                        endUpdate()
                        out.reset()
                        continue
                    }
                    _ = sleep(on: &h.pointee.data_seq, counter: &h.pointee.readers_waiting, deadline: Deadline.after(seconds: 1), during: "queue:get") {
                        ipc_load64(&h.pointee.used) > 0
                    }
                    continue
                }
                if deadline.hasExpired { unlockState(); return .timedOut }
                let r = sleep(on: &h.pointee.data_seq, counter: &h.pointee.readers_waiting, deadline: deadline, during: "queue:get") {
                    ipc_load64(&h.pointee.used) > 0
                }
                if r == .timedOut && h.pointee.used == 0 { unlockState(); return .timedOut }
                continue
            }
            skipPadding()
            let head = Int(h.pointee.head)
            let flags = (ring + head).load(fromByteOffset: 4, as: UInt16.self)
            if h.pointee.skipping != 0 {
                // Leftovers of an item whose consumer died: drop them.
                let ends = flags & (Self.last | Self.abort) != 0
                consumeFrame(into: nil, itemTaken: false, streamReader: ends ? 0 : nil, skipping: ends ? 0 : nil, taskDropped: ends)
                wakeWriters()
                continue
            }
            if reader == me {
                if flags & Self.abort != 0 {
                    consumeFrame(into: nil, itemTaken: false, streamReader: 0, skipping: nil, taskDropped: true)
                    out.reset()
                    wakeWriters()
                    continue
                }
                let isLast = flags & Self.last != 0
                copyOut(head, into: out)
                consumeFrame(into: nil, itemTaken: false, streamReader: isLast ? 0 : nil, skipping: nil, taskDropped: false)
                h.pointee.spill = 0  // a consumer is about
                if isLast {
                    unlockState()
                    wakeWriters()
                    return .item(id: streamID)
                }
                wakeWriters()
                continue
            }
            if flags & Self.first == 0 {
                // A stray continuation or abort (its item was dropped): discard.
                consumeFrame(into: nil, itemTaken: false, streamReader: nil, skipping: nil, taskDropped: false)
                wakeWriters()
                continue
            }
            let id = (ring + head).load(fromByteOffset: 8, as: UInt64.self)
            if flags & Self.last != 0 {
                out.reset()
                consumeFrame(into: out, itemTaken: true, streamReader: nil, skipping: nil, taskDropped: false)
                if h.pointee.last_reader != me { h.pointee.last_reader = me }  // a read, mostly
                let more = h.pointee.items > 0 && h.pointee.readers_waiting > 0
                unlockState()
                wakeWriters()
                if more { wakeReaders(all: false) }
                return .item(id: id)
            }
            // The first frame of a streamed item: take it only while holding get_lock.
            if !holdingGetLock {
                unlockState()
                guard acquireGetLock(deadline) else { return .timedOut }
                holdingGetLock = true
                guard lockState(deadline, "queue:get") else { return .timedOut }
                continue
            }
            out.reset()
            streamID = id
            copyOut(head, into: out)
            consumeFrame(into: nil, itemTaken: true, streamReader: me, skipping: nil, taskDropped: false)
            h.pointee.last_reader = me
            h.pointee.spill = 0
            wakeWriters()
        }
    }

    /// Appends the payload of the streamed frame at `head` to `out`, without the state
    /// lock (held again on return): the frame stays where it is until it is consumed, as
    /// the other consumers wait for get_lock, which this one holds, and producers only
    /// write into free space.
    func copyOut(_ head: Int, into out: ByteBuffer) {
        let length = Int((ring + head).load(as: UInt32.self))
        unlockState()
        if length > 0 { out.append(ring + head + Self.frameHeader, count: length) }
        _ = lockState(.never, "queue:get")
    }

    // MARK: - Joinable

    /// Marks one item done. False when there is no unfinished item (a misuse).
    public func taskDone() -> Bool {
        _ = lockState(.never, "joinable_queue:task_done")
        guard h.pointee.unfinished > 0 else { unlockState(); return false }
        h.pointee.unfinished -= 1
        let wake = h.pointee.unfinished == 0 && h.pointee.joiners_waiting > 0
        unlockState()
        if wake {
            _ = ipc_add32(&h.pointee.join_seq, 1)
            Futex.wakeAll(&h.pointee.join_seq)
        }
        return true
    }

    /// Waits until every item put has been marked done. False on timeout.
    public func join(deadline: Deadline) -> Bool {
        guard lockState(deadline, "joinable_queue:join") else { return false }
        while h.pointee.unfinished > 0 {
            if deadline.hasExpired { unlockState(); return false }
            let r = sleep(on: &h.pointee.join_seq, counter: &h.pointee.joiners_waiting, deadline: deadline, during: "joinable_queue:join") {
                ipc_load64(&h.pointee.unfinished) == 0
            }
            if r == .timedOut && h.pointee.unfinished > 0 { unlockState(); return false }
        }
        unlockState()
        return true
    }

    // MARK: - Waiting on several things

    /// Registers interest for `ipc.wait`: puts signal `eventFD` while registered.
    public func beginSelect() { _ = ipc_add32(&h.pointee.selectors, 1) }
    public func endSelect() { _ = ipc_sub32(&h.pointee.selectors, 1) }

    /// Empties the eventfd counter (non-blocking).
    public func drainEvent() {
        var v: UInt64 = 0
        _ = read(eventFD, &v, 8)
    }
}
