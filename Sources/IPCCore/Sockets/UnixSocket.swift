import CSystemShim
import Glibc
import SystemPackage

/// A Unix domain socket: a stream server, a connected stream socket, or a datagram
/// socket. Plain bytes, so any program (socat, Python, nc -U) can be the peer.
public final class UnixSocket {
    public enum Kind: Equatable { case server, stream, datagram }

    public let kind: Kind
    public private(set) var fd: Int32
    /// The file this socket is bound to (servers and bound datagram sockets), as given.
    public let path: String?
    /// The process that bound `path`: only it removes the file.
    public let owner: Int32
    /// Called once when the socket file should be removed (the run's registry).
    var onRemovePath: (() -> Void)?

    init(kind: Kind, fd: Int32, path: String?, onRemovePath: (() -> Void)? = nil) {
        self.kind = kind
        self.fd = fd
        self.path = path
        owner = ProcessIdentity.pid
        self.onRemovePath = onRemovePath
    }

    deinit { close() }

    public var isClosed: Bool { fd < 0 }

    /// Closes it in this process; a bound file is removed when this process made it.
    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        if owner == ProcessIdentity.pid, let remove = onRemovePath {
            onRemovePath = nil
            remove()
        }
    }

    /// Drops this process's claim on the socket file (a descriptor was passed away).
    public func forgetPath() { onRemovePath = nil }

    // MARK: - Paths

    /// The longest path a socket address holds (sun_path, without its NUL).
    public static let maxPathLength = Int(ipc_sun_path_cap()) - 1

    static func checkPathLength(_ path: String) throws(IPCError) {
        let n = path.utf8.count
        if n == 0 { throw IPCError.misuse("the socket path is empty") }
        if n > maxPathLength {
            throw IPCError.misuse("the socket path is \(n) bytes; a Unix socket path holds at most \(maxPathLength) (\(path.prefix(40))...)")
        }
    }

    /// Makes `path` free for a new socket: nothing there, or a stale socket file (one
    /// nobody listens on), which is removed. A live socket or any other file is an error.
    /// Never follows a symlink, never removes anything that is not a socket.
    static func clearStale(_ path: String, datagram: Bool) throws(IPCError) {
        var st = stat()
        if case .failure(let e) = Syscall.glibc("lstat", { lstat(path, &st) }) {
            if e.errno == .noSuchFileOrDirectory { return }
            throw IPCError.system("cannot inspect \(path): \(e.errno)")
        }
        guard st.st_mode & S_IFMT == S_IFSOCK else {
            throw IPCError.misuse("\(path) exists and is not a socket; not touching it")
        }
        // Live or stale? Try to reach it.
        let probe = try newSocket(datagram: datagram)
        defer { Glibc.close(probe) }
        _ = ipc_set_nonblocking(probe, 1)
        let r = ipc_unix_connect(probe, path)
        if r == 0 || r == -EAGAIN || r == -EINPROGRESS {
            throw IPCError.misuse("something is already listening at \(path)")
        }
        if r != -ECONNREFUSED {
            throw IPCError.system("cannot check \(path): \(Errno(rawValue: -r))")
        }
        // Stale: remove it (re-checked, still not following links).
        var again = stat()
        if lstat(path, &again) == 0 && again.st_mode & S_IFMT == S_IFSOCK && again.st_ino == st.st_ino {
            unlink(path)
        }
    }

    // MARK: - Servers and clients

    /// A new Unix socket's descriptor, stream or datagram.
    static func newSocket(datagram: Bool) throws(IPCError) -> Int32 {
        let fd = ipc_unix_socket(datagram ? 1 : 0)
        guard fd >= 0 else { throw IPCError.resource("cannot create a socket: \(Errno(rawValue: -fd))") }
        return fd
    }

    /// Binds the new socket `fd` to `path` and gives the file `mode` (when given; otherwise
    /// the umask decides). On failure the socket is closed, and its file, once made, removed.
    static func bind(_ fd: Int32, kind: Kind, path: String, mode: mode_t?,
                     register: (String) -> (() -> Void)?) throws(IPCError) -> UnixSocket {
        let b = ipc_unix_bind(fd, path)
        guard b == 0 else {
            Glibc.close(fd)
            if b == -EADDRINUSE && kind == .server { throw IPCError.misuse("something is already listening at \(path)") }
            throw IPCError.system("cannot bind \(path): \(Errno(rawValue: -b))")
        }
        let socket = UnixSocket(kind: kind, fd: fd, path: path, onRemovePath: register(path))
        if let mode, case .failure(let e) = Syscall.glibc("chmod", { chmod(path, mode) }) {
            socket.close()
            throw IPCError.system("cannot set the mode of \(path): \(e.errno)")
        }
        return socket
    }

    /// `socket`, `bind` and `listen`: a stream server at `path`. `mode` (when given) sets
    /// the file's permissions; otherwise the umask decides.
    public static func listen(path: String, backlog: Int32, mode: mode_t?, register: (String) -> (() -> Void)?) throws(IPCError) -> UnixSocket {
        try checkPathLength(path)
        try clearStale(path, datagram: false)
        let fd = try newSocket(datagram: false)
        let socket = try bind(fd, kind: .server, path: path, mode: mode, register: register)
        // Several processes may accept on it: waits happen in poll, and an accept that
        // loses the race must not block.
        _ = ipc_set_nonblocking(fd, 1)
        if case .failure(let e) = Syscall.glibc("listen", { Glibc.listen(fd, backlog) }) {
            socket.close()
            throw IPCError.system("cannot listen on \(path): \(e.errno)")
        }
        return socket
    }

    /// Waits for a connection until `deadline`; nil on timeout.
    public func accept(deadline: Deadline) throws(IPCError) -> UnixSocket? {
        while true {
            switch Syscall.shim("accept", { ipc_accept(fd) }) {
            case .success(let c): return UnixSocket(kind: .stream, fd: c, path: nil)
            case .failure(.resourceTemporarilyUnavailable): break
            case .failure(.connectionAbort): continue
            case .failure(let e) where e.errno == .tooManyOpenFiles || e.errno == .tooManyOpenFilesInSystem:
                throw IPCError.resource("no descriptor left for a new connection (\(e))")
            case .failure(let e): throw IPCError.system("accept failed: \(e.errno)")
            }
            if !Blocking.poll(fd, Int16(POLLIN), deadline: deadline) { return nil }
        }
    }

    public enum ConnectOutcome { case connected(UnixSocket), refused(String) }

    /// Connects to the server at `path`; `.refused(reason)` when nothing listens there.
    public static func connect(path: String, deadline: Deadline) throws(IPCError) -> ConnectOutcome {
        try checkPathLength(path)
        let fd = try newSocket(datagram: false)
        // A full backlog makes connect wait: bound that wait by the deadline.
        if let left = deadline.remainingNanoseconds { _ = ipc_set_send_timeout(fd, max(left, 1)) }
        let r = Blocking.parked(deadline) { Syscall.shim("connect") { ipc_unix_connect(fd, path) } }
        _ = ipc_set_send_timeout(fd, 0)
        guard case .failure(let e) = r else { return .connected(UnixSocket(kind: .stream, fd: fd, path: nil)) }
        Glibc.close(fd)
        switch e.errno.rawValue {
        case ENOENT: return .refused("no such socket: \(path)")
        case ECONNREFUSED: return .refused("nothing listens at \(path)")
        case EAGAIN, ETIMEDOUT: return .refused("timeout")
        case EACCES: return .refused("permission denied: \(path)")
        case ENOTSOCK: return .refused("\(path) is not a socket")
        default: return .refused("cannot connect to \(path): \(e)")
        }
    }

    /// Two connected stream sockets.
    public static func pair() throws(IPCError) -> (UnixSocket, UnixSocket) {
        var fds: (Int32, Int32) = (-1, -1)
        let r = withUnsafeMutableBytes(of: &fds) { ipc_unix_socketpair($0.baseAddress!.assumingMemoryBound(to: Int32.self)) }
        guard r == 0 else { throw IPCError.resource("cannot create a socket pair: \(Errno(rawValue: -r))") }
        return (UnixSocket(kind: .stream, fd: fds.0, path: nil), UnixSocket(kind: .stream, fd: fds.1, path: nil))
    }

    /// True when `fd` is a socket (fstat).
    public static func isSocket(_ fd: Int32) -> Bool { ipc_fd_kind(fd) == 1 }

    /// Wraps a descriptor received from another process.
    public static func adopt(fd: Int32, kind: Kind, path: String?) -> UnixSocket {
        UnixSocket(kind: kind, fd: fd, path: path)
    }

    // MARK: - Streams

    public enum SendOutcome: Equatable { case sent(Int), closed }

    /// Sends every byte (partial writes and EINTR handled); `.closed` when the peer is gone.
    public func send(_ bytes: UnsafeRawBufferPointer) -> SendOutcome {
        guard fd >= 0 else { return .closed }
        var off = 0
        while off < bytes.count {
            switch Syscall.shim("send", { ipc_send(fd, bytes.baseAddress! + off, bytes.count - off, 1) }) {
            case .success(let n): off += n
            case .failure(.resourceTemporarilyUnavailable): _ = Blocking.poll(fd, Int16(POLLOUT), deadline: .never)
            case .failure: return .closed  // EPIPE, ECONNRESET, ...
            }
        }
        return .sent(bytes.count)
    }

    public enum ReceiveOutcome: Equatable { case data(Int), closed, timedOut }

    /// Up to `count` bytes into `out` (appended), waiting until `deadline` for the first.
    public func receive(upTo count: Int, into out: ByteBuffer, deadline: Deadline) -> ReceiveOutcome {
        guard fd >= 0 else { return .closed }
        guard out.reserve(count) else { return .closed }
        var tries = Blocking.isControlled ? Spin.socketTries : 0
        while true {
            switch Syscall.shim("recv", { ipc_recv(fd, out.base + out.count, count, 1) }) {
            case .success(0): return count == 0 ? .data(0) : .closed
            case .success(let n): out.count += n; return .data(n)
            case .failure(.resourceTemporarilyUnavailable): break
            case .failure: return .closed  // ECONNRESET
            }
            if deadline.hasExpired { return .timedOut }
            // A reply often comes within microseconds: look again a few times (yielding,
            // in case the peer shares our CPU) before paying for a sleep and a wake-up.
            if tries < Spin.socketTries {
                tries += 1
                if tries % 4 == 0 { sched_yield() } else { for _ in 0..<32 { ipc_pause() } }
                continue
            }
            if !Blocking.poll(fd, Int16(POLLIN), deadline: deadline) { return .timedOut }
        }
    }

    // MARK: - Datagrams

    /// A datagram socket bound to `path` (nil: unbound, it can only send).
    public static func datagram(path: String?, mode: mode_t?, register: (String) -> (() -> Void)?) throws(IPCError) -> UnixSocket {
        if let path {
            try checkPathLength(path)
            try clearStale(path, datagram: true)
        }
        let fd = try newSocket(datagram: true)
        guard let path else { return UnixSocket(kind: .datagram, fd: fd, path: nil) }
        return try bind(fd, kind: .datagram, path: path, mode: mode, register: register)
    }

    public enum SendToOutcome: Equatable { case sent(Int), refused(String) }

    /// One datagram to the socket bound at `path`.
    public func send(_ bytes: UnsafeRawBufferPointer, to path: String) throws(IPCError) -> SendToOutcome {
        try Self.checkPathLength(path)
        guard fd >= 0 else { return .refused("closed") }
        while true {
            switch Syscall.shim("sendto", { ipc_unix_sendto(fd, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, bytes.count, path) }) {
            case .success(let n): return .sent(n)
            case .failure(.resourceTemporarilyUnavailable):
                // The receiver's queue is full: wait for room (a bound wait: a datagram
                // socket signals room only loosely).
                _ = Blocking.poll(fd, Int16(POLLOUT), deadline: .after(seconds: 1))
            case .failure(.noSuchFileOrDirectory): return .refused("no such socket: \(path)")
            case .failure(.connectionRefused): return .refused("nothing is bound at \(path)")
            case .failure(.messageTooLong): throw IPCError.misuse("a datagram of \(bytes.count) bytes is too large for a Unix datagram socket")
            case .failure(let e): return .refused("cannot send to \(path): \(e.errno)")
            }
        }
    }

    public enum ReceiveFromOutcome: Equatable { case datagram(from: String), timedOut, closed }

    /// The next datagram into `out` (reset first), and the sender's path ("" if unbound).
    public func receiveFrom(into out: ByteBuffer, deadline: Deadline) -> ReceiveFromOutcome {
        guard fd >= 0 else { return .closed }
        while true {
            switch Syscall.shim("recv", { ipc_next_datagram_size(fd) }) {
            case .success(let size):
                out.count = 0
                guard out.reserve(max(size, 1)) else { return .closed }
                var from = [CChar](repeating: 0, count: 110)
                switch Syscall.shim("recvfrom", { ipc_unix_recvfrom(fd, out.base, max(size, 1), &from, from.count) }) {
                case .success(let n):
                    out.count = n
                    let end = from.firstIndex(of: 0) ?? from.count
                    return .datagram(from: String(decoding: from[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self))
                case .failure(.resourceTemporarilyUnavailable): continue
                case .failure: return .closed
                }
            case .failure(.resourceTemporarilyUnavailable):
                if !Blocking.poll(fd, Int16(POLLIN), deadline: deadline) { return .timedOut }
            case .failure:
                return .closed
            }
        }
    }

    // MARK: - Passing descriptors

    /// Sends descriptors (SCM_RIGHTS) with a small message describing them.
    public func sendDescriptors(_ fds: [Int32], message: [UInt8]) -> SendOutcome {
        guard fd >= 0 else { return .closed }
        var payload = message.isEmpty ? [0] : message
        while true {
            let r = Syscall.shim("sendmsg") {
                fds.withUnsafeBufferPointer { f in
                    payload.withUnsafeMutableBytes { m in ipc_send_fds(fd, f.baseAddress, Int32(f.count), m.baseAddress, m.count) }
                }
            }
            switch r {
            case .success(let n): return .sent(n)
            case .failure(.resourceTemporarilyUnavailable): _ = Blocking.poll(fd, Int16(POLLOUT), deadline: .never)
            case .failure: return .closed
            }
        }
    }

    public enum ReceiveDescriptorsOutcome: Equatable { case received(fds: [Int32], message: [UInt8]), closed, timedOut }

    /// Receives descriptors sent by `sendDescriptors`.
    public func receiveDescriptors(deadline: Deadline) -> ReceiveDescriptorsOutcome {
        guard fd >= 0 else { return .closed }
        while true {
            if !Blocking.poll(fd, Int16(POLLIN), deadline: deadline) { return .timedOut }
            var fds = [Int32](repeating: -1, count: 8)
            var count: Int32 = 0
            var message = [UInt8](repeating: 0, count: 512)
            let r = Syscall.shim("recvmsg") {
                fds.withUnsafeMutableBufferPointer { f in
                    message.withUnsafeMutableBytes { m in ipc_recv_fds(fd, f.baseAddress, Int32(f.count), &count, m.baseAddress, m.count) }
                }
            }
            switch r {
            case .success(let n) where n > 0: return .received(fds: Array(fds.prefix(Int(count))), message: Array(message.prefix(n)))
            case .failure(.resourceTemporarilyUnavailable): continue
            default: return .closed
            }
        }
    }

    /// True when a connection (server), data or the end of the stream is ready.
    public func isReadable() -> Bool {
        guard fd >= 0 else { return false }
        return Poll.isReady(fd: fd, events: Int16(POLLIN))
    }
}
