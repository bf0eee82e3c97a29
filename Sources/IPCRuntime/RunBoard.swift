import CRuntimeShim
import CSystemShim
import Glibc
import IPCCore

/// The run's status board: one shared region, made by the host before the script runs,
/// in which every process publishes who it is and what it is blocked in, and in which
/// the socket files of the run are listed so that every way out can remove them.
public final class RunBoard {
    public let region: SharedRegion
    public let header: UnsafeMutablePointer<ipc_run_header>
    static let magic: UInt64 = 0x6970_6372_756E_0001

    init() throws(IPCError) {
        region = try SharedRegion(size: MemoryLayout<ipc_run_header>.size)
        header = region.header(ipc_run_header.self)
        header.pointee.host_pid = UInt32(bitPattern: ProcessIdentity.pid)
        header.pointee.start_ns = MonotonicClock.real()
        header.pointee.magic = Self.magic
    }

    /// The board of this run (set up by `Runtime.startHost`), in the execution context.
    public private(set) static var current: RunBoard? {
        get { Execution.current.board }
        set { Execution.current.board = newValue }
    }

    static func install() throws(IPCError) -> RunBoard {
        let board = try RunBoard()
        current = board
        return board
    }

    // MARK: - Names

    /// A fresh default name, unique across every process of the run.
    public func nextName(_ kind: ObjectKind) -> String {
        let counters = UnsafeMutableRawPointer(header) + MemoryLayout<ipc_run_header>.offset(of: \.name_counters)!
        let word = counters.assumingMemoryBound(to: UInt32.self) + kind.rawValue
        return "\(kind.namePrefix)#\(ipc_add32(word, 1))"
    }

    /// A fresh object id, unique across every process of the run (1, 2, ...).
    public func nextObjectID() -> UInt32 {
        ipc_add32(&header.pointee.object_counter, 1)
    }

    /// The next spawn index (1, 2, ...), unique across the run.
    public func nextSpawnIndex() -> Int {
        Int(ipc_add32(&header.pointee.spawn_counter, 1))
    }

    /// Bumped by every IPC call that can wake another process (deadlock detection).
    public func noteProgress() { _ = ipc_add64(&header.pointee.progress, 1) }

    // MARK: - Process slots

    /// How many process slots were ever claimed: scans stop there (the board's pages
    /// past it are never touched).
    var slotsUsed: Int { min(Int(ipc_load32(&header.pointee.slots_used)), Int(IPC_PROCESS_SLOTS)) }

    /// Raises the counter at `word` to at least `n`.
    static func raise(_ word: UnsafeMutablePointer<UInt32>, to n: Int) {
        var seen = ipc_load32(word)
        while seen < UInt32(n) && ipc_cas32(word, &seen, UInt32(n)) == 0 {}
    }

    func slot(_ i: Int) -> UnsafeMutablePointer<ipc_process_slot> {
        let base = UnsafeMutableRawPointer(header) + MemoryLayout<ipc_run_header>.offset(of: \.processes)!
        return base.assumingMemoryBound(to: ipc_process_slot.self) + i
    }

    /// Claims a slot for the calling process; nil when the board is full (the process
    /// then runs unlisted).
    func claimSlot(name: String, spawnIndex: Int, parent: Int32) -> Int? {
        guard let i = Self.claimFirstFree(Int(IPC_PROCESS_SLOTS), used: &header.pointee.slots_used, tryClaim: { i in
            var free: UInt32 = 0
            return ipc_cas32(&slot(i).pointee.state, &free, 1) != 0
        }) else { return nil }
        let s = slot(i)
        s.pointee.pid = UInt32(bitPattern: ProcessIdentity.pid)
        s.pointee.ppid = UInt32(bitPattern: parent)
        s.pointee.spawn_index = UInt32(spawnIndex)
        s.pointee.blocked = 0
        storeName(name, into: &s.pointee.name, capacity: Int(IPC_NAME_CAP))
        _ = ipc_add32(&header.pointee.live, 1)
        return i
    }

    /// Claims the first free entry of a table of `count` in shared memory: `tryClaim`
    /// takes entry i if it is free (by compare-and-swap, so that two processes never take
    /// the same one). Raises the table's high-water mark `used` past it; nil when all are taken.
    static func claimFirstFree(_ count: Int, used: UnsafeMutablePointer<UInt32>, tryClaim: (Int) -> Bool) -> Int? {
        guard let i = (0..<count).first(where: tryClaim) else { return nil }
        raise(used, to: i + 1)
        return i
    }

    /// Marks the calling process's slot ended (it is about to exit).
    func endSlot(_ i: Int) {
        let s = slot(i)
        var running: UInt32 = 1
        if ipc_cas32(&s.pointee.state, &running, 2) != 0 {
            _ = ipc_sub32(&header.pointee.live, 1)
            tellSupervisorIfAllParked()
        }
    }

    /// Frees the slot of a process that has been reaped.
    public func releaseSlot(pid: Int32) {
        for i in 0..<slotsUsed {
            let s = slot(i)
            if ipc_load32(&s.pointee.state) != 0 && s.pointee.pid == UInt32(bitPattern: pid) {
                // Killed without ending: it no longer counts as running, nor as parked.
                if ipc_load32(&s.pointee.state) == 1 {
                    _ = ipc_sub32(&header.pointee.live, 1)
                    if s.pointee.blocked != 0 && s.pointee.deadline_ns == 0 && s.pointee.external == 0 {
                        _ = ipc_sub32(&header.pointee.parked, 1)
                    }
                    tellSupervisorIfAllParked()
                }
                s.pointee.pid = 0
                ipc_store32(&s.pointee.state, 0)
                return
            }
        }
    }

    // MARK: - Deadlock detection

    /// The calling process parks for ever on an object of the run. When every running
    /// process has, the supervisor is told (and started if there is none yet).
    func parkedForEver() {
        _ = ipc_add32(&header.pointee.parked, 1)
        if Runtime.this.isHost && Runtime.this.options.supervised && header.pointee.deadlock_check != 0
            && ipc_load32(&header.pointee.parked) >= ipc_load32(&header.pointee.live) {
            try? Supervisor.ensureStarted(board: self)
        }
        tellSupervisorIfAllParked()
    }

    /// Wakes the supervisor when every running process is parked for ever. Called wherever
    /// either count moves that way: a process parks, or one that was not parked ends (the
    /// others may all have parked before it: nobody else would tell).
    func tellSupervisorIfAllParked() {
        let live = ipc_load32(&header.pointee.live)
        guard header.pointee.deadlock_check != 0, live > 0, ipc_load32(&header.pointee.parked) >= live else { return }
        _ = ipc_add32(&header.pointee.supervisor_word, 1)
        Futex.wake(&header.pointee.supervisor_word, count: 1)
    }

    func unparked() {
        _ = ipc_sub32(&header.pointee.parked, 1)
        noteProgress()
    }

    // MARK: - Uncaught errors of children

    /// Records the calling process's uncaught error until its parent joins it.
    public func recordError(name: String, message: String) {
        guard let i = Self.claimFirstFree(Int(IPC_ERROR_SLOTS), used: &header.pointee.errors_used, tryClaim: { i in
            var free: UInt32 = 0
            return ipc_cas32(&errorRecord(i).pointee.state, &free, 3) != 0
        }) else { return }
        let r = errorRecord(i)
        r.pointee.pid = UInt32(bitPattern: ProcessIdentity.pid)
        storeName(name, into: &r.pointee.name, capacity: Int(IPC_NAME_CAP))
        storeName(message, into: &r.pointee.message, capacity: 208)
        ipc_store32(&r.pointee.state, 1)
    }

    /// The process `pid` was joined: its error, if any, has been looked at.
    public func markErrorSeen(pid: Int32) {
        for i in 0..<Int(ipc_load32(&header.pointee.errors_used)) {
            let r = errorRecord(i)
            if ipc_load32(&r.pointee.state) == 1 && r.pointee.pid == UInt32(bitPattern: pid) {
                ipc_store32(&r.pointee.state, 2)
            }
        }
    }

    func errorRecord(_ i: Int) -> UnsafeMutablePointer<ipc_error_record> {
        let base = UnsafeMutableRawPointer(header) + MemoryLayout<ipc_run_header>.offset(of: \.errors)!
        return base.assumingMemoryBound(to: ipc_error_record.self) + i
    }

    func errorRecords() -> [(name: String, pid: Int32, message: String, seen: Bool)] {
        (0..<Int(ipc_load32(&header.pointee.errors_used))).compactMap { i in
            let r = errorRecord(i)
            let state = ipc_load32(&r.pointee.state)
            guard state == 1 || state == 2 else { return nil }
            return (loadName(from: &r.pointee.name, capacity: Int(IPC_NAME_CAP)), Int32(bitPattern: r.pointee.pid),
                    loadName(from: &r.pointee.message, capacity: 208), state == 2)
        }
    }

    /// True while the board lists `pid` as a live (not yet reaped) process of the run.
    public func lists(pid: Int32) -> Bool {
        for i in 0..<slotsUsed {
            let s = slot(i)
            if ipc_load32(&s.pointee.state) == 1 && s.pointee.pid == UInt32(bitPattern: pid) { return true }
        }
        return false
    }

    // MARK: - Who holds what a process waits for

    /// Who holds what a blocked call waits for, as far as the process that waits can tell.
    public enum Awaited: Equatable, Sendable {
        /// Nobody can be named: a queue, an event, a barrier, a semaphore (whose release may
        /// come from any process: a semaphore has no owner).
        case unknown
        /// These processes: a lock's owner, the child a join waits for.
        case processes([Int32])
        /// Whoever still has the write end of this pipe (the kernel's end of stream comes
        /// only when every copy is closed). Read from /proc when a report needs it.
        case writeEnd(device: UInt64, inode: UInt64)
    }

    /// Tells who holds what the call in progress waits for (set by the Lua layer, which
    /// knows the call's object), in the execution context.
    public static var awaitedHolders: (() -> Awaited)? {
        get { Execution.current.awaitedHolders }
        set { Execution.current.awaitedHolders = newValue }
    }

    /// What the current call waits for, from `awaitedHolders`, or from the runtime's own
    /// records for a join at a process's end.
    static func currentAwaited() -> Awaited {
        if let call = Gate.current, call.object.kind == .process,
           let child = Runtime.this.children.first(where: { $0.ref.id == call.object.id }), child.pid > 0 {
            return .processes([child.pid])
        }
        return awaitedHolders?() ?? .unknown
    }

    /// Publishes in slot `i` who holds what its current call waits for (done when it parks,
    /// and under a controlled scheduler whenever its pending call is found to wait).
    func publishAwaited(slot i: Int, _ awaited: Awaited) {
        let s = slot(i)
        _ = ipc_add32(&s.pointee.seq, 1)
        storeAwaited(s, awaited)
        _ = ipc_add32(&s.pointee.seq, 1)
    }

    func storeAwaited(_ s: UnsafeMutablePointer<ipc_process_slot>, _ awaited: Awaited) {
        switch awaited {
        case .unknown:
            s.pointee.awaited = UInt32(IPC_AWAITED_UNKNOWN)
            s.pointee.holder_count = 0
        case .processes(let pids):
            s.pointee.awaited = UInt32(IPC_AWAITED_PROCESSES)
            let kept = pids.prefix(Int(IPC_HOLDERS_CAP))
            withUnsafeMutableBytes(of: &s.pointee.holders) { raw in
                let words = raw.bindMemory(to: UInt32.self)
                for (k, pid) in kept.enumerated() { words[k] = UInt32(bitPattern: pid) }
            }
            s.pointee.holder_count = UInt32(kept.count)
        case .writeEnd(let device, let inode):
            s.pointee.awaited = UInt32(IPC_AWAITED_WRITE_END)
            s.pointee.holder_count = 0
            s.pointee.pipe_dev = device
            s.pointee.pipe_ino = inode
        }
    }

    /// Slot `s`'s published `Awaited`.
    func loadAwaited(_ s: UnsafeMutablePointer<ipc_process_slot>) -> Awaited {
        switch Int(s.pointee.awaited) {
        case Int(IPC_AWAITED_PROCESSES):
            let n = min(Int(s.pointee.holder_count), Int(IPC_HOLDERS_CAP))
            return .processes(withUnsafeBytes(of: &s.pointee.holders) { raw in
                raw.bindMemory(to: UInt32.self).prefix(n).map { Int32(bitPattern: $0) }
            })
        case Int(IPC_AWAITED_WRITE_END):
            return .writeEnd(device: s.pointee.pipe_dev, inode: s.pointee.pipe_ino)
        default:
            return .unknown
        }
    }

    /// Publishes what the process in slot `i` is blocked in (nil: not blocked).
    func publishBlocked(slot i: Int, call: String?, object: String, location: String, deadline: Deadline, external: Bool,
                        holder: Int32 = 0, awaited: Awaited = .unknown) {
        let s = slot(i)
        _ = ipc_add32(&s.pointee.seq, 1)
        if let call {
            storeAwaited(s, awaited)
            storeName(call, into: &s.pointee.call, capacity: Int(IPC_CALL_CAP))
            storeName(object, into: &s.pointee.object, capacity: Int(IPC_NAME_CAP))
            storeName(location, into: &s.pointee.where, capacity: Int(IPC_WHERE_CAP))
            s.pointee.since_ns = MonotonicClock.real()
            s.pointee.deadline_ns = deadline.instant ?? 0
            s.pointee.external = external ? 1 : 0
            s.pointee.holder = UInt32(bitPattern: holder)
            s.pointee.blocked = 1
        } else {
            s.pointee.blocked = 0
        }
        _ = ipc_add32(&s.pointee.seq, 1)
    }

    /// A consistent copy of every listed process.
    public struct ProcessStatus: Sendable {
        public var pid: Int32
        public var name: String
        public var blocked: Bool
        public var call: String
        public var object: String
        public var location: String
        public var sinceNanoseconds: Int64
        public var deadlineNanoseconds: Int64
        public var external: Bool
        /// Who holds what it waits for, as it published it.
        public var awaited: Awaited
        /// The lock owner its line names (0: none).
        public var holder: Int32
    }

    public func snapshot() -> [ProcessStatus] {
        var result: [ProcessStatus] = []
        for i in 0..<slotsUsed {
            let s = slot(i)
            guard ipc_load32(&s.pointee.state) == 1 else { continue }
            for _ in 0..<100 {
                let before = ipc_load32(&s.pointee.seq)
                if before & 1 != 0 { continue }
                let status = ProcessStatus(
                    pid: Int32(bitPattern: s.pointee.pid),
                    name: loadName(from: &s.pointee.name, capacity: Int(IPC_NAME_CAP)),
                    blocked: s.pointee.blocked != 0,
                    call: loadName(from: &s.pointee.call, capacity: Int(IPC_CALL_CAP)),
                    object: loadName(from: &s.pointee.object, capacity: Int(IPC_NAME_CAP)),
                    location: loadName(from: &s.pointee.where, capacity: Int(IPC_WHERE_CAP)),
                    sinceNanoseconds: s.pointee.since_ns,
                    deadlineNanoseconds: s.pointee.deadline_ns,
                    external: s.pointee.external != 0,
                    awaited: loadAwaited(s),
                    holder: Int32(bitPattern: s.pointee.holder))
                if ipc_load32(&s.pointee.seq) == before {
                    result.append(status)
                    break
                }
            }
        }
        return result
    }

    // MARK: - Socket files

    func socketSlot(_ i: Int) -> UnsafeMutablePointer<ipc_socket_slot> {
        let base = UnsafeMutableRawPointer(header) + MemoryLayout<ipc_run_header>.offset(of: \.sockets)!
        return base.assumingMemoryBound(to: ipc_socket_slot.self) + i
    }

    /// Lists a socket file that the calling process just bound, so that every way out of
    /// the run removes it. Returns its slot, or nil when the list is full.
    public func registerSocketFile(path: String) -> Int? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        // Kept absolute: the process that removes it may run elsewhere.
        var path = path
        if !path.hasPrefix("/") {
            var buf = [CChar](repeating: 0, count: 4096)
            if getcwd(&buf, buf.count) != nil {
                let end = buf.firstIndex(of: 0) ?? buf.count
                let cwd = String(decoding: buf[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                path = (cwd.hasSuffix("/") ? cwd : cwd + "/") + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
            }
        }
        guard path.utf8.count < 108 else { return nil }
        for i in 0..<Int(IPC_SOCKET_SLOTS) {
            let s = socketSlot(i)
            var expected: UInt32 = 0
            if ipc_cas32(&s.pointee.state, &expected, 1) != 0 {
                Self.raise(&header.pointee.sockets_used, to: i + 1)
                s.pointee.owner = UInt32(bitPattern: ProcessIdentity.pid)
                s.pointee.dev = UInt64(st.st_dev)
                s.pointee.ino = UInt64(st.st_ino)
                storeName(path, into: &s.pointee.path, capacity: 108)
                ipc_store32(&s.pointee.state, 2)
                return i
            }
        }
        return nil
    }

    /// Removes the socket file of `slot` (if it is still the one bound) and frees the slot.
    public func removeSocketFile(slot: Int) {
        ipc_remove_socket_slot(header, Int32(slot))
    }
}

extension RunBoard {
    /// What every live process of the run is doing, one entry each, with who holds what it
    /// waits for: the blocked list of the deadlock and hang reports.
    public func blockedEntries() -> [BlockedProcess] {
        let now = MonotonicClock.real()
        let live = snapshot().filter { ProcessControl.exists($0.pid) }
        return live.map { p in
            guard p.blocked else { return BlockedProcess(name: p.name, pid: p.pid, state: .running) }
            let holder = p.holder == 0 ? nil : BlockedProcess.Holder(name: live.first { $0.pid == p.holder }?.name ?? "", pid: p.holder)
            return BlockedProcess(name: p.name, pid: p.pid, state: .blocked, call: p.call, object: p.object, location: p.location,
                                  waitedNanoseconds: now - p.sinceNanoseconds, holder: holder,
                                  holders: holders(p.awaited, among: live))
        }
    }

    /// The processes among `live` that hold what `awaited` names.
    func holders(_ awaited: Awaited, among live: [ProcessStatus]) -> [BlockedProcess.Holder] {
        switch awaited {
        case .unknown:
            return []
        case .processes(let pids):
            return pids.map { pid in BlockedProcess.Holder(name: live.first { $0.pid == pid }?.name ?? "", pid: pid) }
        case .writeEnd(let device, let inode):
            return live.filter { Self.hasWriteEnd(pid: $0.pid, device: device, inode: inode) }
                .map { BlockedProcess.Holder(name: $0.name, pid: $0.pid) }
        }
    }

    /// The name of the live process `pid`, if the board lists it.
    public func processName(pid: Int32) -> String? {
        snapshot().first { $0.pid == pid }?.name
    }

    /// True when process `pid` has a descriptor open for writing on the pipe `inode`: the
    /// kernel's own record (/proc/PID/fd), so a copy inherited by fork, or received in a
    /// message, counts until that process closes it or ends. A link's mode in /proc/PID/fd
    /// says how the descriptor was opened (w: for writing).
    static func hasWriteEnd(pid: Int32, device: UInt64, inode: UInt64) -> Bool {
        let folder = "/proc/\(pid)/fd"
        guard let dir = opendir(folder) else { return false }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.first?.isNumber == true else { continue }
            var link = stat(), target = stat()
            let path = folder + "/" + name
            guard lstat(path, &link) == 0, link.st_mode & S_IWUSR != 0, stat(path, &target) == 0 else { continue }
            if UInt64(target.st_ino) == inode && UInt64(target.st_dev) == device && (target.st_mode & S_IFMT) == S_IFIFO { return true }
        }
        return false
    }
}
