import Foundation
import Testing

/// SIGINT, SIGTERM and SIGHUP to the commands that start runs (`test`, `explore`,
/// `replay`): every process of the run ends, the command reports what it has, and exits
/// 128 + the signal, whatever the signal's disposition was when it started.
@Suite("Cancelling test, explore and replay")
struct CancellationTests {
    /// The processes whose environment holds `IPCPLAY_CANCEL_TOKEN=token`: every
    /// descendant of a command started with it (forks and os.execute's children inherit it).
    static func processes(carrying token: String) -> [Int32] {
        let needle = Array("IPCPLAY_CANCEL_TOKEN=\(token)".utf8)
        var found: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid() else { continue }
            guard let data = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            let bytes = [UInt8](data)
            let variables = bytes.split(separator: 0)
            guard variables.contains(where: { Array($0) == needle }) else { continue }
            // A zombie is gone already (it only waits to be reaped).
            if let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
               let paren = stat.lastIndex(of: ")"), stat[stat.index(paren, offsetBy: 2)] == "Z" { continue }
            found.append(pid)
        }
        return found
    }

    /// How many of those processes are `sleep` (a scenario's shells, once under way).
    static func sleeps(carrying token: String) -> Int {
        processes(carrying: token).filter { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) == "sleep\n"
        }.count
    }

    /// Polls until `condition` holds, for at most `seconds`; whether it held.
    static func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return condition()
    }

    /// A command started by `start`: its pid and, once reaped, its exit status.
    final class Command {
        let pid: pid_t
        var status: Int32?
        init(pid: pid_t) { self.pid = pid }

        var processIdentifier: pid_t { pid }
        var terminationStatus: Int32 { status ?? -1 }

        /// Reaps it if it has ended (waitpid: Foundation's Process learns of an end only when
        /// every holder of a descriptor it passes has closed it, which the processes a broken
        /// cancel leaves behind never do).
        func poll() -> Bool {
            if status != nil { return true }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return false }
            status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return true
        }
    }

    /// Starts `/bin/sh -c script` with the token in its environment, stdin on /dev/null,
    /// stdout and stderr to `output`.
    static func start(_ script: String, token: String, output: URL) throws -> Command {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var env = ProcessInfo.processInfo.environment
        env["IPCPLAY_CANCEL_TOKEN"] = token
        let words: [String] = ["/bin/sh", "-c", script]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { (w: String) in strdup(w) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { (k: String, v: String) in strdup(k + "=" + v) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let r = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, envp)
        guard r == 0 else { throw POSIXError(POSIXErrorCode(rawValue: r) ?? .EINVAL) }
        return Command(pid: pid)
    }

    /// Waits for `p` to exit, killing it past `limit` seconds (a safety net).
    static func wait(_ p: Command, limit: Double = 30) -> Bool {
        let ended = eventually(limit) { p.poll() }
        if !ended {
            kill(p.pid, SIGKILL)
            _ = eventually(5) { p.poll() }
        }
        return ended
    }

    /// Kills what a failed cancel left behind, so that a failing test leaves nothing.
    static func cleanUp(_ token: String) {
        _ = eventually(2) {
            let left = processes(carrying: token)
            for pid in left { kill(pid, SIGKILL) }
            return left.isEmpty
        }
    }

    static let hangingTest = """
        -- Three workers each start a shell that sleeps; a fourth and the main script wait for ever.
        local q = ipc.queue()
        for _ = 1, 3 do ipc.spawn(function() os.execute("sleep 1000") end) end
        ipc.spawn(function() q:get() end)
        q:get()
        """

    /// Issue 30's test: SIGTERM to `ipcplay test` running a hanging test finds no process
    /// of the run left one second after the runner exits; the JUnit report holds the
    /// interrupted test; the exit status is 143.
    @Test func sigtermToTestEndsEveryProcessOfTheRun() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-cancel")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.hangingTest.write(to: dir.appendingPathComponent("hang_test.lua"), atomically: true, encoding: .utf8)
        let token = UUID().uuidString
        defer { Self.cleanUp(token) }
        let junit = dir.appendingPathComponent("junit.xml")
        let output = dir.appendingPathComponent("out")
        let runner = try Self.start("exec '\(Ipcplay.binary)' test --junit '\(junit.path)' '\(dir.path)'", token: token, output: output)
        // The test is under way once its three shells' sleeps exist.
        let started = Self.eventually(60) { Self.sleeps(carrying: token) == 3 }
        #expect(started, "the test's sleeps never appeared")
        // The runner's scratch folder, from the test's command line (`--report DIR/0-1.report`).
        let scratch = Self.processes(carrying: token).lazy.compactMap { pid -> String? in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard let i = args.firstIndex(of: "--report"), i + 1 < args.count else { return nil }
            return URL(fileURLWithPath: args[i + 1]).deletingLastPathComponent().path
        }.first
        #expect(scratch?.hasPrefix("/tmp/ipcplay-test-") == true)
        kill(runner.processIdentifier, SIGTERM)
        #expect(Self.wait(runner), "the runner did not exit")
        #expect(runner.terminationStatus == 143)
        let gone = Self.eventually(1) { Self.processes(carrying: token).isEmpty }
        #expect(gone, "left: \(Self.processes(carrying: token))")
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(text.contains("INTR  \(dir.path)/hang_test.lua"), "\(text)")
        #expect(text.contains("interrupted by SIGTERM: 0 passed, 0 failed, 1 interrupted, 0 not run"), "\(text)")
        let xml = (try? String(contentsOf: junit, encoding: .utf8)) ?? ""
        #expect(xml.contains("type=\"interrupted\"") && xml.contains("what each process was doing:") && xml.contains("Process-4 (pid "), "\(xml)")
        if let scratch { #expect(!FileManager.default.fileExists(atPath: scratch), "\(scratch) is left") }
    }

    /// A runner started with SIGINT ignored (as a shell starts a background job) still
    /// ends on SIGINT: TAP gets the interrupted test and a Bail out!, the status is 130.
    @Test func sigintIgnoredAtStartStillCancelsTest() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-cancel")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.hangingTest.write(to: dir.appendingPathComponent("hang_test.lua"), atomically: true, encoding: .utf8)
        try "assert(true)\n".write(to: dir.appendingPathComponent("a_test.lua"), atomically: true, encoding: .utf8)
        let token = UUID().uuidString
        defer { Self.cleanUp(token) }
        let output = dir.appendingPathComponent("out")
        let runner = try Self.start("trap '' INT; exec '\(Ipcplay.binary)' test --tap '\(dir.path)'", token: token, output: output)
        let started = Self.eventually(60) { Self.sleeps(carrying: token) == 3 }
        #expect(started)
        kill(runner.processIdentifier, SIGINT)
        #expect(Self.wait(runner))
        #expect(runner.terminationStatus == 130)
        #expect(Self.eventually(1) { Self.processes(carrying: token).isEmpty })
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(text.contains("ok 1 - \(dir.path)/a_test.lua\n"), "\(text)")
        #expect(text.contains("not ok 2 - \(dir.path)/hang_test.lua (interrupted)\n"), "\(text)")
        #expect(text.contains("Bail out! interrupted by SIGINT\n"), "\(text)")
    }

    /// Runs the shell command `command(dir)` on a never-ending run, `dir` holding its
    /// script `s.lua` (two processes, the second of which waits for `sleep 1000`, so that a
    /// search of it is interrupted in its first run). Once the `sleep` is under way, sends
    /// `signal`; expects the command, then every process of it, to end. Returns the
    /// command's exit status and output.
    static func interruptNeverEndingRun(with signal: Int32, _ command: (_ dir: URL) -> String,
                                        sourceLocation: SourceLocation = #_sourceLocation) throws -> (status: Int32, output: String) {
        try Ipcplay.withTmpDirectory("ipcplay-cancel") { dir in
            try """
                local v = ipc.value("i", 0)
                local ps = {}
                for i = 1, 2 do ps[i] = ipc.spawn(function() v:add(1) if i == 2 then os.execute("sleep 1000") end end) end
                for _, p in ipairs(ps) do p:join() end
                """.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
            let token = UUID().uuidString
            defer { Self.cleanUp(token) }
            let output = dir.appendingPathComponent("out")
            let running = try Self.start(command(dir), token: token, output: output)
            #expect(Self.eventually(60) { Self.sleeps(carrying: token) > 0 }, "the run's sleep never appeared", sourceLocation: sourceLocation)
            kill(running.processIdentifier, signal)
            #expect(Self.wait(running), sourceLocation: sourceLocation)
            #expect(Self.eventually(1) { Self.processes(carrying: token).isEmpty }, "left: \(Self.processes(carrying: token))",
                    sourceLocation: sourceLocation)
            return (running.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
        }
    }

    /// `explore` interrupted: every run's process ends (os.execute's children too), and it
    /// says how far it got.
    @Test func sigintToExploreStopsWithASummary() throws {
        let (status, text) = try Self.interruptNeverEndingRun(with: SIGHUP) { dir in
            "trap '' INT HUP; exec '\(Ipcplay.binary)' explore --runs 50 --seed 1 --timeout 500 '\(dir.path)/s.lua'"
        }
        #expect(status == 129)
        #expect(text.contains("ipcplay: interrupted by SIGHUP: stopped after 0 schedules of 50"), "\(text)")
        #expect(text.contains("0 schedules, 0 distinct interleavings, no failure in them"), "\(text)")
    }

    /// `replay --timeline` interrupted: the run's processes end and its temporary trace is
    /// removed.
    @Test func sigtermToReplayRemovesItsTemporaryTrace() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-cancel")
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("s.lua")
        try """
            local p = ipc.spawn(function() if os.getenv("HANG") then os.execute("sleep 1000") end end)
            p:join()
            error("failed on purpose")
            """.write(to: script, atomically: true, encoding: .utf8)
        let found = try Ipcplay.run(["explore", "--runs", "5", "--seed", "1", script.path])
        let line = try #require(found.stdout.split(separator: "\n").first { $0.hasPrefix("replay: ") }, "\(found.combined)")
        let replayToken = String(line.split(separator: " ")[3])
        let token = UUID().uuidString
        defer { Self.cleanUp(token) }
        let output = dir.appendingPathComponent("out")
        let replay = try Self.start("HANG=1 exec '\(Ipcplay.binary)' replay --timeline \(replayToken) '\(script.path)'", token: token, output: output)
        let started = Self.eventually(60) { Self.sleeps(carrying: token) > 0 }
        #expect(started)
        let trace = "/tmp/ipcplay-replay-\(replay.processIdentifier).events"  // the timeline's recorded events
        #expect(FileManager.default.fileExists(atPath: trace))
        kill(replay.processIdentifier, SIGTERM)
        #expect(Self.wait(replay))
        #expect(replay.terminationStatus == 143)
        #expect(Self.eventually(1) { Self.processes(carrying: token).isEmpty }, "left: \(Self.processes(carrying: token))")
        #expect(!FileManager.default.fileExists(atPath: trace), "the temporary trace is left")
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(text.contains("interrupted by SIGTERM; the replay did not finish"), "\(text)")
    }
}
