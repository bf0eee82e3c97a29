import Foundation
import Testing

/// When the system refuses a resource, the call fails with a Lua error that names the
/// call and the cause, and the host goes on.
@Suite("Resource exhaustion")
struct ResourceTests {
    func script(_ source: String) throws -> URL { try Ipcplay.writeScript(source) }
    func shell(_ command: String) throws -> (status: Int32, output: String) { try Ipcplay.shell(command) }

    /// Runs `source` under the shell's `ulimit LIMIT`: its status, its output (stdout and
    /// stderr together), and the output's lines.
    func run(ulimit limit: String, _ source: String) throws -> (status: Int32, output: String, lines: [String]) {
        let s = try script(source)
        defer { try? FileManager.default.removeItem(at: s.deletingLastPathComponent()) }
        let r = try shell("ulimit \(limit) && '\(Ipcplay.binary)' '\(s.path)'")
        return (r.status, r.output, r.output.split(separator: "\n").map(String.init))
    }

    @Test func descriptorsExhausted() throws {
        let r = try run(ulimit: "-n 64", """
            local kept, err = {}, nil
            for i = 1, 1000 do
              local ok, a, b = pcall(ipc.pipe)
              if not ok then err = a break end
              kept[#kept + 1] = {a, b}
            end
            assert(err, "never ran out of descriptors")
            print(err)
            local ok, qerr = pcall(ipc.queue)
            print(ok and "queue made" or qerr)
            local ok2, serr = pcall(ipc.unix.socketpair)
            print(ok2 and "pair made" or serr)
            kept = nil
            collectgarbage()
            local a, b = ipc.pipe()     -- descriptors are back: this works
            b:send("after")
            print(a:recv(1))
            """)
        #expect(r.status == 0, "\(r.output)")
        let lines = r.lines
        #expect(lines.first?.hasPrefix("ipc.pipe: cannot create ") == true, "\(r.output)")
        #expect(lines.first?.hasSuffix("Too many open files") == true, "the cause is named: \(r.output)")
        #expect(lines.last == "after", "the host goes on: \(r.output)")
    }

    @Test func forkRefused() throws {
        // Root ignores RLIMIT_NPROC: run as nobody.
        let s = try script("""
            local kids, err = {}, nil
            local stop = ipc.event()
            for i = 1, 200 do
              local ok, p = pcall(ipc.spawn, function() stop:wait() end)
              if not ok then err = p break end
              kids[#kids + 1] = p
            end
            print(err or "never refused")
            stop:set()
            for _, p in ipairs(kids) do p:join() end
            local p = ipc.spawn(function() end)   -- processes are back: this works
            print(p:join(10) and "joined" or "not joined")
            """)
        defer { try? FileManager.default.removeItem(at: s.deletingLastPathComponent()) }
        let canRun = try shell("setpriv --reuid=nobody --regid=nogroup --clear-groups test -x '\(Ipcplay.binary)' && setpriv --reuid=nobody --regid=nogroup --clear-groups test -r '\(s.path)'")
        try #require(canRun.status == 0, "nobody cannot run the binary here (its folder is not readable by others)")
        let r = try shell("setpriv --reuid=nobody --regid=nogroup --clear-groups prlimit --nproc=40 '\(Ipcplay.binary)' '\(s.path)'")
        #expect(r.status == 0, "\(r.output)")
        let lines = r.output.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("ipc.spawn: cannot fork: ") == true, "\(r.output)")
        #expect(lines.last == "joined", "the host goes on: \(r.output)")
    }

    @Test func sharedMemoryTooLarge() throws {
        let r = try Ipcplay.runLua("""
            local ok, err = pcall(ipc.array, "d", 1000000000000)
            print(err)
            local ok2, err2 = pcall(ipc.array, "q", math.maxinteger)
            print(err2)
            local a = ipc.array("d", 10)
            a[10] = 1.5
            print(a[10])
            """)
        #expect(r.status == 0, "\(r.combined)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("ipc.array: cannot map 7 TiB of shared memory"), "\(r.stdout)")
        #expect(lines[1].hasPrefix("ipc.array: "), "\(r.stdout)")
        #expect(lines[2] == "1.5")
    }

    // AddressSanitizer reserves terabytes of address space for its shadow: it cannot run
    // under `ulimit -v`.
    @Test(.disabled(if: Ipcplay.underAddressSanitizer, "ulimit -v and AddressSanitizer exclude each other"))
    func messageBiggerThanMemoryAllows() throws {
        // A table whose sub-tables are shared: tiny in Lua, 4 GiB once copied out.
        let r = try run(ulimit: "-v 1600000", """
            local t = {string.rep("x", 1 << 20)}
            for i = 1, 12 do t = {t, t} end
            local q = ipc.queue()
            local ok, err = pcall(q.put, q, t)
            print(err)
            local a, b = ipc.pipe()
            local ok2, err2 = pcall(a.send, a, t)
            print(err2)
            q:put("still works")
            print(q:get(1))
            """)
        #expect(r.status == 0, "\(r.output)")
        let lines = r.lines
        // The encoder counts on past what it may hold, to four times that, and says so.
        #expect(lines.first?.hasPrefix("queue:put: not enough memory for a message of more than ") == true, "\(r.output)")
        #expect(lines.dropFirst().first?.hasPrefix("connection:send: not enough memory for a message of more than ") == true, "\(r.output)")
        #expect(lines.first?.contains("(a message may take up to ") == true, "\(r.output)")
        #expect(lines.last == "still works")
    }
}
