import Glibc

/// A child process started with `posix_spawn` in its own process group, its stdout and
/// stderr going to one file (the test runner's view of a test).
struct Subprocess {
    let pid: pid_t

    /// Starts `arguments[0]` (a path) with `arguments`, output to `outputPath`.
    static func spawn(_ arguments: [String], outputPath: String) throws(CommandFailure) -> Subprocess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Its own process group (so that everything it starts can be ended at once), no
        // signal blocked, default actions.
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let r = posix_spawn(&pid, arguments[0], &actions, &attr, argv, environ)
        guard r == 0 else { throw CommandFailure(message: "cannot start \(arguments[0]): \(String(cString: strerror(r)))", status: 1) }
        return Subprocess(pid: pid)
    }

    /// The exit status if it has ended (non-blocking): 0-255, or 128+signal.
    func poll() -> Int32? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return nil }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    /// Ends its whole process group.
    func killGroup() { kill(-pid, SIGKILL) }
}

/// The path of this very executable, so that tests run the same build.
func currentExecutable() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    if n > 0 { return String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    return CommandLine.arguments[0]
}
