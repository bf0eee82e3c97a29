import CSystemShim
import Glibc
import SystemPackage

// Thin, typed wrappers over the syscalls the core uses, one per call, in the style of
// swift-system: each names the C call it makes, throws `Errno`, and retries on EINTR
// where the call is restartable.

// MARK: - Errors

extension Errno {
    /// The current `errno`.
    @inlinable public static var current: Errno { Errno(rawValue: Glibc.errno) }
}

/// Calls `body` again while it fails with EINTR (a `-1` result and errno EINTR).
@inlinable
public func retryOnInterrupt<T: FixedWidthInteger>(_ body: () -> T) -> T {
    while true {
        let r = body()
        if r == -1 && Glibc.errno == EINTR { continue }
        return r
    }
}

// MARK: - Identity

/// The pid of the calling process, cached (glibc's `getpid` is a syscall) and refreshed
/// by `ProcessIdentity.refreshAfterFork()` in every new child.
public enum ProcessIdentity {
    nonisolated(unsafe) public private(set) static var pid: Int32 = Glibc.getpid()

    /// Call first thing in a child after `fork()`.
    public static func refreshAfterFork() { pid = Glibc.getpid() }
}

// MARK: - Memory

public enum Memory {
    /// `mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS[|MAP_NORESERVE], -1, 0)`:
    /// zero-filled memory shared with every process forked afterwards.
    public static func mapShared(size: Int, reserveOnly: Bool = false) throws(Errno) -> UnsafeMutableRawPointer {
        var flags = MAP_SHARED | MAP_ANONYMOUS
        if reserveOnly { flags |= MAP_NORESERVE }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else {
            throw Errno.current
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

    /// `futex(word, FUTEX_WAIT_BITSET, expected, deadline)`: sleeps while `*word == expected`.
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
    public static func fork() throws(Errno) -> Int32 {
        let pid = Glibc.fork()
        if pid < 0 { throw Errno.current }
        return pid
    }

    /// `pidfd_open(pid, 0)`: a descriptor that becomes readable when the process exits.
    public static func pidfdOpen(_ pid: Int32) throws(Errno) -> FileDescriptor {
        let fd = ipc_pidfd_open(pid)
        if fd < 0 { throw Errno(rawValue: -fd) }
        return FileDescriptor(rawValue: fd)
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

    /// `waitpid(pid, &status, WNOHANG or 0)`, retried on EINTR. Returns nil when the
    /// process is still running (non-blocking form).
    public static func wait(_ pid: Int32, block: Bool) throws(Errno) -> Termination? {
        var status: Int32 = 0
        let r = retryOnInterrupt { waitpid(pid, &status, block ? 0 : WNOHANG) }
        if r < 0 { throw Errno.current }
        if r == 0 { return nil }
        return termination(fromStatus: status)
    }

    /// `waitpid(-1, &status, WNOHANG)`: one exited child, if any.
    public static func reapAny() -> (pid: Int32, termination: Termination)? {
        var status: Int32 = 0
        let r = retryOnInterrupt { waitpid(-1, &status, WNOHANG) }
        if r <= 0 { return nil }
        return (r, termination(fromStatus: status))
    }

    /// `kill(pid, signal)`.
    public static func signal(_ pid: Int32, _ signal: Int32) throws(Errno) {
        if kill(pid, signal) < 0 { throw Errno.current }
    }

    /// True when a process with this pid exists (`kill(pid, 0)`; EPERM counts as alive).
    public static func exists(_ pid: Int32) -> Bool {
        if pid <= 0 { return false }
        return kill(pid, 0) == 0 || Glibc.errno == EPERM
    }
}

// MARK: - Polling

public enum Poll {
    /// `poll(fds, n, timeout)` over (descriptor, events) pairs until `deadline`, retried on
    /// EINTR with the time left. Returns the `revents` of each entry (all zero on timeout).
    public static func wait(_ entries: [(fd: Int32, events: Int16)], deadline: Deadline) throws(Errno) -> [Int16] {
        var fds = entries.map { pollfd(fd: $0.fd, events: $0.events, revents: 0) }
        while true {
            let r = fds.withUnsafeMutableBufferPointer { buf in
                poll(buf.baseAddress, nfds_t(buf.count), deadline.pollMilliseconds)
            }
            if r >= 0 { return fds.map { $0.revents } }
            if Glibc.errno == EINTR {
                if deadline.hasExpired { return fds.map { _ in 0 } }
                continue
            }
            throw Errno.current
        }
    }

    /// Waits until `fd` has any of `events`, or the deadline passes. True when ready.
    public static func wait(fd: Int32, events: Int16, deadline: Deadline) throws(Errno) -> Bool {
        var p = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let r = poll(&p, 1, deadline.pollMilliseconds)
            if r > 0 { return true }
            if r == 0 {
                // poll's millisecond timeout rounds up; be exact about expiry.
                if deadline.hasExpired { return false }
                continue
            }
            if Glibc.errno == EINTR {
                if deadline.hasExpired { return false }
                continue
            }
            throw Errno.current
        }
    }
}
