import CSystemShim
import Glibc
import SystemPackage

// Thin, typed wrappers over the syscalls the core uses, in the style of swift-system and
// swift-nio's `Posix`: each names the C call it makes and reports `Errno`.

// MARK: - The convention

/// A system call that failed: its name and its errno, as swift-nio's `IOError` carries
/// them, so that a message says which call failed.
public struct SyscallError: Error, Equatable, CustomStringConvertible {
    public let call: String
    public let errno: Errno

    public init(_ call: String, _ errno: Errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(errno)" }

    /// `case .failure(.resourceTemporarilyUnavailable)`: an errno matches its failures.
    public static func ~= (pattern: Errno, error: SyscallError) -> Bool { error.errno == pattern }
}

/// The one path of system calls. A function of the C shim (`ipc_*`) returns its result
/// or -errno, captured in C next to the call; a Glibc function returns -1 and sets errno,
/// which `glibc` reads at once (the only place errno is read) and turns into the shim's
/// convention. Both then go through one loop, which retries EINTR (and nothing else does:
/// a call with a deadline recomputes its timeout in `body`), and both fail with a
/// `SyscallError` that names the call.
public enum Syscall {
    /// Runs `body`, a shim call returning a count or -errno, again while it fails with EINTR.
    @inlinable @discardableResult
    public static func shim<T: FixedWidthInteger & SignedInteger>(_ call: StaticString, _ body: () -> T) -> Result<T, SyscallError> {
        while true {
            let r = body()
            if r >= 0 { return .success(r) }
            if r == -T(EINTR) { continue }
            return .failure(SyscallError(call.description, Errno(rawValue: Int32(truncatingIfNeeded: -r))))
        }
    }

    /// Runs `body`, a Glibc call returning -1 and setting errno, again while it fails with EINTR.
    @inlinable @discardableResult
    public static func glibc<T: FixedWidthInteger & SignedInteger>(_ call: StaticString, _ body: () -> T) -> Result<T, SyscallError> {
        shim(call) {
            let r = body()
            return r == -1 ? -T(Glibc.errno) : r
        }
    }

    /// The errno a Glibc call that reports failure another way (a NULL `fopen`, a
    /// `MAP_FAILED` `mmap`) has just set: read at once, for its error.
    @inlinable public static var lastError: Errno { Errno(rawValue: Glibc.errno) }

    /// Writes all of `count` bytes at `base` to `fd`, whatever the partial writes; false
    /// when the descriptor fails (EPIPE and friends: the reader is gone).
    @discardableResult
    public static func writeAll(_ fd: Int32, _ base: UnsafeRawPointer?, _ count: Int) -> Bool {
        guard let base else { return count == 0 }
        var off = 0
        while off < count {
            switch glibc("write", { Glibc.write(fd, base + off, count - off) }) {
            case .success(let n): off += n
            case .failure: return false
            }
        }
        return true
    }

    /// Writes the UTF-8 of `text` to `fd` (one write when the kernel takes it whole).
    @discardableResult
    public static func writeAll(_ fd: Int32, _ text: String) -> Bool {
        var t = text
        return t.withUTF8 { writeAll(fd, $0.baseAddress, $0.count) }
    }
}

extension Result where Failure == SyscallError {
    /// The value, or nil on failure.
    @inlinable public var value: Success? { if case .success(let v) = self { return v }; return nil }
    /// The errno of a failure, or nil.
    @inlinable public var errno: Errno? { if case .failure(let e) = self { return e.errno }; return nil }
}

// MARK: - Identity

/// The pid of the calling process, cached (glibc's `getpid` is a syscall) and refreshed
/// by `ProcessIdentity.refreshAfterFork()` in every new child.
public enum ProcessIdentity {
    /// Kept in the core's context, 0 until first read (a plain zero, not a lazy global:
    /// no once-check on hot paths).
    @inlinable public static var pid: Int32 {
        let cached = CoreExecution.current.pid
        return cached != 0 ? cached : refresh()
    }

    /// Call first thing in a child after `fork()`: the one field of the context a child
    /// inherits that is not its own.
    public static func refreshAfterFork() { _ = refresh() }

    @usableFromInline @discardableResult
    static func refresh() -> Int32 {
        let pid = Glibc.getpid()
        CoreExecution.current.pid = pid
        ipc_set_self_pid(pid)
        return pid
    }
}

// MARK: - Memory

public enum Memory {
    /// `mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS[|MAP_NORESERVE], -1, 0)`:
    /// zero-filled memory shared with every process forked afterwards.
    public static func mapShared(size: Int, reserveOnly: Bool = false) throws(SyscallError) -> UnsafeMutableRawPointer {
        var flags = MAP_SHARED | MAP_ANONYMOUS
        if reserveOnly { flags |= MAP_NORESERVE }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else {
            throw SyscallError("mmap", Syscall.lastError)
        }
        return p
    }

    /// `munmap(base, size)`.
    public static func unmap(_ base: UnsafeMutableRawPointer, size: Int) {
        _ = munmap(base, size)
    }

    /// `madvise(base, size, MADV_REMOVE)`: gives the pages of a shared mapping back to
    /// the kernel; they read as zeros afterwards.
    public static func release(_ base: UnsafeMutableRawPointer, size: Int) {
        _ = madvise(base, size, MADV_REMOVE)
    }

    /// The system page size.
    public static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))
}

// MARK: - Futex

public enum Futex {
    public enum WaitResult { case woken, changed, timedOut, interrupted }

    /// `futex(word, FUTEX_WAIT_BITSET, expected, deadline)`: sleeps while `*word == expected`,
    /// until `deadline` (real time: the kernel's clock).
    @inlinable
    public static func wait(_ word: UnsafeMutablePointer<UInt32>, expected: UInt32, deadline: Deadline) -> WaitResult {
        let r: Int32
        if var ts = deadline.timespec {
            r = ipc_futex_wait(word, expected, &ts)
        } else {
            r = ipc_futex_wait(word, expected, nil)
        }
        switch r {
        case 0: return .woken
        case -EAGAIN: return .changed
        case -ETIMEDOUT: return .timedOut
        default: return .interrupted
        }
    }

    /// `futex(word, FUTEX_WAKE, count)`.
    @inlinable @discardableResult
    public static func wake(_ word: UnsafeMutablePointer<UInt32>, count: Int32 = 1) -> Int32 {
        ipc_futex_wake(word, count)
    }

    /// Wakes every waiter.
    @inlinable
    public static func wakeAll(_ word: UnsafeMutablePointer<UInt32>) {
        _ = ipc_futex_wake(word, Int32.max)
    }
}

// MARK: - Processes

public enum ProcessControl {
    /// `fork()`. Flush stdio before calling it.
    public static func fork() throws(SyscallError) -> Int32 {
        switch Syscall.glibc("fork", { Glibc.fork() }) {
        case .success(let pid): return pid
        case .failure(let e): throw e
        }
    }

    /// `pidfd_open(pid, 0)`: a descriptor that becomes readable when the process exits.
    public static func pidfdOpen(_ pid: Int32) throws(SyscallError) -> FileDescriptor {
        switch Syscall.shim("pidfd_open", { ipc_pidfd_open(pid) }) {
        case .success(let fd): return FileDescriptor(rawValue: fd)
        case .failure(let e): throw e
        }
    }

    /// Waits until process `pid` has exited (not reaped: its parent still may). By then the
    /// kernel has released its robust locks. Returns at once when there is no such process.
    public static func awaitEnd(_ pid: Int32) {
        guard pid > 0, let fd = try? pidfdOpen(pid) else { return }
        _ = try? Poll.wait(fd: fd.rawValue, events: Int16(POLLIN), deadline: .never)
        close(fd.rawValue)
    }

    /// True when child `pid` has exited (it is left to be reaped: `waitid` with WNOWAIT).
    public static func hasExited(_ pid: Int32) -> Bool {
        var info = siginfo_t()
        switch Syscall.glibc("waitid", { waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) }) {
        case .success: break
        case .failure(let e): return e.errno == .noChildProcess
        }
        return info._sifields._sigchld.si_pid != 0
    }

    /// How a process ended, as `waitpid` reports it.
    public enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)

        /// multiprocessing's convention: the exit status, or minus the signal number.
        public var exitcode: Int32 {
            switch self {
            case .exited(let code): return code
            case .signaled(let sig): return -sig
            }
        }
    }

    static func termination(fromStatus status: Int32) -> Termination {
        // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (they are macros).
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(status & 0x7f)
    }

    /// `waitpid(pid, &status, WNOHANG or 0)`. Returns nil when the process is still running
    /// (non-blocking form).
    public static func wait(_ pid: Int32, block: Bool) throws(SyscallError) -> Termination? {
        var status: Int32 = 0
        switch Syscall.glibc("waitpid", { waitpid(pid, &status, block ? 0 : WNOHANG) }) {
        case .failure(let e): throw e
        case .success(0): return nil
        case .success: return termination(fromStatus: status)
        }
    }

    /// `waitpid(-1, &status, WNOHANG)`: one exited child, if any.
    public static func reapAny() -> (pid: Int32, termination: Termination)? {
        var status: Int32 = 0
        guard let r = Syscall.glibc("waitpid", { waitpid(-1, &status, WNOHANG) }).value, r > 0 else { return nil }
        return (r, termination(fromStatus: status))
    }

    /// `kill(pid, signal)`.
    public static func signal(_ pid: Int32, _ signal: Int32) throws(SyscallError) {
        if case .failure(let e) = Syscall.glibc("kill", { kill(pid, signal) }) { throw e }
    }

    /// True when a process with this pid exists (`kill(pid, 0)`; EPERM counts as alive).
    public static func exists(_ pid: Int32) -> Bool {
        if pid <= 0 { return false }
        switch Syscall.glibc("kill", { kill(pid, 0) }) {
        case .success: return true
        case .failure(let e): return e.errno == .notPermitted
        }
    }
}

// MARK: - Pipes

public enum Pipe {
    /// `pipe2(O_CLOEXEC|O_NONBLOCK)`: (read end, write end).
    public static func make() throws(SyscallError) -> (read: Int32, write: Int32) {
        var fds: (Int32, Int32) = (-1, -1)
        let r = Syscall.shim("pipe2") { withUnsafeMutableBytes(of: &fds) { ipc_pipe($0.baseAddress!.assumingMemoryBound(to: Int32.self)) } }
        if case .failure(let e) = r { throw e }
        return fds
    }
}

// MARK: - Polling

public enum Poll {
    /// `poll(fds, n, timeout)` over (descriptor, events) pairs until `deadline` (real
    /// time), resumed after signals with the time left. Returns the `revents` of each
    /// entry (all zero on timeout).
    public static func wait(_ entries: [(fd: Int32, events: Int16)], deadline: Deadline) throws(SyscallError) -> [Int16] {
        var fds = entries.map { pollfd(fd: $0.fd, events: $0.events, revents: 0) }
        while true {
            let r = Syscall.glibc("poll") {
                fds.withUnsafeMutableBufferPointer { buf in poll(buf.baseAddress, nfds_t(buf.count), deadline.pollMilliseconds) }
            }
            switch r {
            case .failure(let e): throw e
            case .success(0) where !deadline.hasExpired: continue  // poll's milliseconds round; be exact
            case .success: return fds.map { $0.revents }
            }
        }
    }

    /// True when `fd` has any of `events` now (a poll with no timeout).
    public static func isReady(fd: Int32, events: Int16) -> Bool {
        var p = pollfd(fd: fd, events: events, revents: 0)
        return (Syscall.glibc("poll") { poll(&p, 1, 0) }.value ?? 1) > 0
    }

    /// True when `fd`, a pipe's write end, has no reader left anywhere (poll's POLLERR).
    public static func readersGone(writeEnd fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard (Syscall.glibc("poll") { poll(&p, 1, 0) }.value ?? 0) > 0 else { return false }
        return p.revents & Int16(POLLERR) != 0
    }

    /// Waits until `fd` has any of `events`, or the deadline passes. True when ready.
    public static func wait(fd: Int32, events: Int16, deadline: Deadline) throws(SyscallError) -> Bool {
        try wait([(fd, events)], deadline: deadline)[0] != 0
    }
}
