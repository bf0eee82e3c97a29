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
/// - The ring's protocol (the journal, placing, writing and publishing a frame, taking
///   one, giving pages back, the wake-ups) is C, in one place (ipc_queue.h, ipc_queue.c),
///   which the Lua fast paths of `q:put` and `q:get` call too; this class adds what only
///   it does: the waits (through `Blocking`), streamed items, errors.
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

    /// Takes the state lock; when its holder died mid-update, its journal is rolled back.
    func lockState(_ deadline: Deadline) -> Bool {
        stateLock.acquire(deadline: deadline, object: self.name) { _ in ipc_queue_roll_back(self.h) }
    }

    func unlockState() { stateLock.release() }

    /// Takes `put_lock` (`get_lock` when `forGet`); when its holder died mid-message, the
    /// message is closed (ipc_queue_repair_put_lock: its rest is skipped,
    /// ipc_queue_repair_get_lock), under the state lock.
    func acquireStreamLock(_ deadline: Deadline, forGet: Bool) -> Bool {
        (forGet ? getLock : putLock).acquire(deadline: deadline, object: self.name) { dead in
            _ = self.lockState(.never)
            if forGet {
                ipc_queue_repair_get_lock(self.h, UInt32(bitPattern: dead))
            } else {
                ipc_queue_repair_put_lock(self.h, UInt32(bitPattern: dead), self.eventFD)
            }
            self.unlockState()
        }
    }

    func acquirePutLock(_ deadline: Deadline) -> Bool { acquireStreamLock(deadline, forGet: false) }
    func acquireGetLock(_ deadline: Deadline) -> Bool { acquireStreamLock(deadline, forGet: true) }

    // MARK: - Ring geometry (under the state lock; ipc_queue.h)

    static func frameSize(_ payload: Int) -> Int { Int(ipc_queue_frame_size(UInt64(payload))) }

    typealias Place = (offset: Int, padding: Int)

    /// Where a frame of `size` bytes goes (ipc_queue_placement; `hot`: one that ends within
    /// the hot zone, ipc_queue_hot_placement), or nil when it does not fit now.
    func placement(size: Int, hot: Bool = false) -> Place? {
        var offset: UInt64 = 0, padding: UInt64 = 0
        let fits = hot ? ipc_queue_hot_placement(h, UInt64(size), &offset, &padding) : ipc_queue_placement(h, UInt64(size), &offset, &padding)
        return fits != 0 ? (Int(offset), Int(padding)) : nil
    }

    /// Writes bytes `from..<from+n` of `message` as a frame at `offset` (not yet visible).
    func writeFrame(_ message: MessageParts, from: Int, count n: Int, flags: UInt16, id: UInt64, at offset: Int) {
        ipc_queue_write_frame_header(h, UInt64(offset), UInt32(n), flags, id)
        message.copy(from: from, count: n, to: ring + offset + Self.frameHeader)
    }

    /// Makes a written frame of `size` bytes visible (journaled). The caller holds the
    /// state lock.
    func commit(size: Int, flags: UInt16, at place: Place) {
        ipc_queue_commit(h, UInt64(size), flags, UInt64(place.offset), UInt64(place.padding), UInt32(bitPattern: ProcessIdentity.pid))
    }

    /// Consumes the frame at `head`, its bytes first appended to `out` when given.
    func consumeFrame(into out: ByteBuffer?, itemTaken: Bool, streamReader: UInt32?, skipping: UInt32?, taskDropped: Bool) {
        if let out {
            let head = Int(h.pointee.head)
            let length = Int((ring + head).load(as: UInt32.self))
            if length > 0 { out.append(ring + head + Self.frameHeader, count: length) }
        }
        ipc_queue_consume_frame(h, itemTaken ? 1 : 0, streamReader.map { Int64($0) } ?? -1, skipping.map { Int64($0) } ?? -1,
                                taskDropped ? 1 : 0, isJoinable ? 1 : 0)
    }

    // MARK: - Waking

    func wakeReaders(all: Bool) { ipc_queue_wake_readers(h, eventFD, all ? 1 : 0) }

    func wakeWriters() { ipc_queue_wake_writers(h) }

    /// Waits with the state lock released, and returns with it held again: first spins
    /// while `ready` (read without the lock) says nothing changed, then sleeps on `word`.
    func sleep(on word: UnsafeMutablePointer<UInt32>, counter: UnsafeMutablePointer<UInt32>, deadline: Deadline,
               ready: () -> Bool) -> Futex.WaitResult {
        unlockState()
        let changed = Spin.until(Spin.waitSpins, ready)
        _ = lockState(.never)
        // Checked again under the lock: a change between the spin and here would not
        // wake us, as we were not yet counted as a sleeper.
        if changed || ready() { return .woken }
        _ = ipc_add32(counter, 1)
        let seq = ipc_load32(word)
        unlockState()
        let r = Blocking.parked(deadline) { Blocking.sleep(on: word, while: seq, deadline: deadline) }
        _ = lockState(.never)
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
        guard lockState(deadline) else { return .timedOut }
        let me = UInt32(bitPattern: ProcessIdentity.pid)
        let size = Self.frameSize(message.count)
        var waited = false
        while true {
            let maxsize = h.pointee.maxsize
            switch ipc_queue_put_single(h, message.head.baseAddress, message.head.count, message.body.baseAddress, message.body.count, id, me) {
            case 1:
                let more = waited && h.pointee.writers_waiting > 0 && (maxsize == 0 || h.pointee.items < maxsize)
                unlockState()
                wakeReaders(all: false)
                if more { wakeWriters() }
                return .done
            case -1:
                // A streamed item is going in; its producer holds put_lock until it is done.
                unlockState()
                guard acquirePutLock(deadline) else { return .timedOut }
                putLock.release()
                guard lockState(deadline) else { return .timedOut }
                continue
            default:
                break
            }
            if deadline.hasExpired { unlockState(); return .timedOut }
            let r = sleep(on: &h.pointee.space_seq, counter: &h.pointee.writers_waiting, deadline: deadline) {
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
        guard lockState(deadline) else { return .timedOut }
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
                    if let place = placement(size: size, hot: true) { chosen = place; break }
                    if let place = placement(size: size) {
                        if spilling || !consumerAbout() { chosen = place; break }
                        coldRoom = true
                    }
                }
                if deadline.hasExpired {
                    if !isFirst { ipc_queue_append_abort(h, eventFD) }
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
                _ = sleep(on: &h.pointee.space_seq, counter: &h.pointee.writers_waiting, deadline: until) {
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
                ipc_queue_begin_update(h, Self.journalPut)
                h.pointee.stream_writer = UInt32(bitPattern: ProcessIdentity.pid)
                ipc_queue_end_update(h)
            }
            // The bytes go in without the lock: the place is ours (only put_lock's holder
            // places frames now), and nobody trims the whole ring meanwhile.
            h.pointee.copying = UInt64(place.offset + size)
            unlockState()
            writeFrame(message, from: offset, count: n, flags: flags, id: id, at: place.offset)
            _ = lockState(.never)
            commit(size: size, flags: flags, at: place)
            h.pointee.copying = 0
            unlockState()
            wakeReaders(all: !isFirst)
            if !isLast { _ = lockState(.never) }
            offset += n
        }
        return .done
    }

    // MARK: - get

    public enum GetOutcome: Equatable { case item(id: UInt64), timedOut }

    /// Takes the next message into `out` (which is reset first), waiting until `deadline`.
    public func get(into out: ByteBuffer, deadline: Deadline) -> GetOutcome {
        guard lockState(deadline) else { return .timedOut }
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
                guard lockState(deadline) else { return .timedOut }
                continue
            }
            if h.pointee.used == 0 {
                if reader == me {
                    // Mid-item: the rest is coming, unless its producer died.
                    let writer = Int32(bitPattern: h.pointee.stream_writer)
                    if writer == 0 || !ProcessControl.exists(writer) {
                        ipc_queue_begin_update(h, Self.journalGet)
                        h.pointee.stream_writer = 0
                        h.pointee.stream_reader = 0
                        if isJoinable && h.pointee.unfinished > 0 { h.pointee.unfinished -= 1 }
                        ipc_queue_end_update(h)
                        out.reset()
                        continue
                    }
                    _ = sleep(on: &h.pointee.data_seq, counter: &h.pointee.readers_waiting, deadline: Deadline.after(seconds: 1)) {
                        ipc_load64(&h.pointee.used) > 0
                    }
                    continue
                }
                if deadline.hasExpired { unlockState(); return .timedOut }
                let r = sleep(on: &h.pointee.data_seq, counter: &h.pointee.readers_waiting, deadline: deadline) {
                    ipc_load64(&h.pointee.used) > 0
                }
                if r == .timedOut && h.pointee.used == 0 { unlockState(); return .timedOut }
                continue
            }
            ipc_queue_skip_padding(h)
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
                guard lockState(deadline) else { return .timedOut }
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
        _ = lockState(.never)
    }

    // MARK: - Joinable

    /// Marks one item done. False when there is no unfinished item (a misuse).
    public func taskDone() -> Bool {
        _ = lockState(.never)
        let done = ipc_queue_task_done(h)
        unlockState()
        if done == Int32(IPC_TASK_DONE_WAKE_JOINERS) { ipc_queue_wake_joiners(h) }
        return done != Int32(IPC_TASK_NONE_UNFINISHED)
    }

    /// Waits until every item put has been marked done. False on timeout.
    public func join(deadline: Deadline) -> Bool {
        guard lockState(deadline) else { return false }
        while h.pointee.unfinished > 0 {
            if deadline.hasExpired { unlockState(); return false }
            let r = sleep(on: &h.pointee.join_seq, counter: &h.pointee.joiners_waiting, deadline: deadline) {
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
