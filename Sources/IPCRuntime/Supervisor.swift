import CSystemShim
import Glibc
import IPCCore

/// The supervisor: a small process, forked by the host before its first worker, that
/// leads the process group of every worker. Through that group the host can end every
/// descendant at once (`kill(-group)`), grandchildren included, without ever signalling a
/// pid it has already reaped; and when the host itself dies, even by SIGKILL, the
/// supervisor is told (PR_SET_PDEATHSIG) and ends the group.
enum Supervisor {
    /// Forks the supervisor if this run has none yet. Called in the host only.
    static func ensureStarted(board: RunBoard) throws(IPCError) {
        if ipc_load32(&board.header.pointee.group) != 0 { return }
        ipc_flush_all()
        let host = ProcessIdentity.pid
        let pid: Int32
        do { pid = try ProcessControl.fork() } catch {
            throw IPCError.resource("cannot fork the supervisor: \(error)")
        }
        if pid == 0 {
            ProcessIdentity.refreshAfterFork()
            run(board: board, host: host)
        }
        _ = setpgid(pid, pid)
        ipc_store32(&board.header.pointee.group, UInt32(bitPattern: pid))
    }

    /// The supervisor's life: hold the group until the host ends it.
    static func run(board: RunBoard, host: Int32) -> Never {
        _ = setpgid(0, 0)
        ipc_supervisor_arm(host)
        // Hold no descriptor of the run: a pipe end kept open here would hide its
        // end-of-stream from the workers. Keep stderr for reports.
        ipc_close_from(3)
        let devnull = open("/dev/null", O_RDWR)
        if devnull >= 0 {
            _ = dup2(devnull, 0)
            _ = dup2(devnull, 1)
            if devnull > 2 { _ = close(devnull) }
        }
        while true {
            let seq = ipc_load32(&board.header.pointee.supervisor_word)
            _ = Futex.wait(&board.header.pointee.supervisor_word, expected: seq, deadline: .never)
        }
    }
}
