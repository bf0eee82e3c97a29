import Foundation
import Testing

/// Runs the built `ipcplay` binary as a subprocess (tests never fork in-process: a fork
/// from a multi-threaded test runner can inherit a lock held by another thread).
enum Ipcplay {
    /// The package's root, found from this file's path.
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// The binary beside the test bundle (the same build), or $IPCPLAY_BIN.
    static let binary: String = {
        if let b = ProcessInfo.processInfo.environment["IPCPLAY_BIN"] { return b }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("ipcplay").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/ipcplay").path
    }()

    /// How much slower than usual this build runs: $IPCPLAY_TEST_SLOWDOWN (say 5 under
    /// AddressSanitizer, whose forks are slow); the scenarios' timeouts are multiplied by it.
    static let slowdown: Int = Int(ProcessInfo.processInfo.environment["IPCPLAY_TEST_SLOWDOWN"] ?? "") ?? 1

    /// True when this process runs under AddressSanitizer (`swift test --sanitize=address`;
    /// dlsym with RTLD_DEFAULT, which is NULL in glibc).
    static let underAddressSanitizer: Bool = dlsym(nil, "__asan_init") != nil

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        /// True when the safety-net timeout had to end the process.
        var hung: Bool
        var combined: String { "status \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
    }

    /// Runs `ipcplay args...` in `directory` with `stdin`, ending it after `limit` seconds
    /// (a safety net: the tests never rely on it).
    static func run(_ args: [String], stdin: String? = nil, directory: URL? = nil, limit: Double = 120,
                    environment: [String: String] = [:]) throws -> Result {
        try command(binary, args, stdin: stdin, directory: directory, limit: limit, environment: environment)
    }

    /// Runs `executable args...` the same way: output to files, not pipes (a pipe whose
    /// write end leaks into a long-lived process started meanwhile by another test, a
    /// tmux server say, would never reach its end).
    static func command(_ executable: String, _ args: [String], stdin: String? = nil, directory: URL? = nil, limit: Double = 120,
                        environment: [String: String] = [:]) throws -> Result {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ipcplay-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let outURL = tmp.appendingPathComponent("out")
        let errURL = tmp.appendingPathComponent("err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        process.currentDirectoryURL = directory ?? packageRoot
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        if let stdin {
            let inURL = tmp.appendingPathComponent("in")
            try stdin.write(to: inURL, atomically: true, encoding: .utf8)
            process.standardInput = try FileHandle(forReadingFrom: inURL)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        let start = Date()
        try process.run()
        var hung = false
        while process.isRunning {
            if Date().timeIntervalSince(start) > limit {
                hung = true
                process.terminate()
                Thread.sleep(forTimeInterval: 2)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Result(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "",
                      seconds: Date().timeIntervalSince(start), hung: hung)
    }

    /// Runs a Lua snippet written to a temporary file.
    static func runLua(_ source: String, args: [String] = [], options: [String] = [], stdin: String? = nil,
                       limit: Double = 120) throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipcplay-lua-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("scenario.lua")
        try source.write(to: file, atomically: true, encoding: .utf8)
        return try run(["run"] + options + [file.path] + args, stdin: stdin, directory: dir, limit: limit)
    }

    /// A new directory /tmp/PREFIX-XXXXXXXX (short, so that socket paths in it stay well
    /// under sun_path).
    static func newTmpDirectory(_ prefix: String) throws -> URL {
        let dir = URL(fileURLWithPath: "/tmp/\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `body` in a new directory from `newTmpDirectory`, removed afterwards.
    static func withTmpDirectory<T>(_ prefix: String, _ body: (URL) throws -> T) throws -> T {
        let dir = try newTmpDirectory(prefix)
        defer { try? FileManager.default.removeItem(at: dir) }
        return try body(dir)
    }

    /// Writes `source` to a fresh world-readable directory under /tmp (so that a test may
    /// run it as another user) and returns the file.
    static func writeScript(_ source: String) throws -> URL {
        let dir = try newTmpDirectory("ipcplay-script")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let file = dir.appendingPathComponent("s.lua")
        try source.write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        return file
    }

    /// Removes a script written by `writeScript`, and its directory.
    static func removeScript(_ file: URL) {
        try? FileManager.default.removeItem(at: file.deletingLastPathComponent())
    }

    /// Two processes take two locks in opposite orders: some schedules deadlock (the
    /// main process takes `a` at line 8, the child takes `b` at line 3).
    static let locksInOppositeOrders = """
        local a, b = ipc.lock({name = "a"}), ipc.lock({name = "b"})
        local p = ipc.spawn(function()
          b:acquire()
          a:acquire()
          a:release()
          b:release()
        end)
        a:acquire()
        b:acquire()
        b:release()
        a:release()
        p:join()
        """

    /// Two processes each add 1 to a shared value `rounds` times by a read and a write
    /// (not atomic): a schedule that switches between the two loses updates, and the
    /// assertion at line 5 fails with "lost updates: N of 2*rounds".
    static func lostUpdates(rounds: Int) -> String {
        """
        local v = ipc.value("i", 0)
        local function add() for _ = 1, \(rounds) do local x = v.value; v.value = x + 1 end end
        local ps = {ipc.spawn(add), ipc.spawn(add)}
        for _, p in ipairs(ps) do p:join() end
        assert(v.value == \(2 * rounds), "lost updates: " .. v.value .. " of \(2 * rounds)")
        """
    }

    /// Runs `tmux ARGS` with no descriptor of ours but 0-2 (on /dev/null when starting a
    /// server): Foundation learns that a process ended when a descriptor the process
    /// inherited closes, and a tmux server lives on holding whatever it inherited.
    static func tmux(_ args: String) throws -> String {
        let closeOthers = #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; "#
        return try command("/bin/bash", ["-c", closeOthers + "exec tmux " + args]).stdout
    }

    /// Runs `sh -c command` with `stdin`; returns its status and its stdout and stderr together.
    static func shell(_ command: String, stdin: String = "") throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        let inPipe = Pipe(), outPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = outPipe
        try p.run()
        inPipe.fileHandleForWriting.write(Data(stdin.utf8))
        try inPipe.fileHandleForWriting.close()
        let data = outPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
