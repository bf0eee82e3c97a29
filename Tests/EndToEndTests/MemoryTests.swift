import Foundation
import Testing

/// Running out of memory is a Lua error ("not enough memory"), never a crash: inside
/// `pcall` the process stays fully usable; outside it, the process ends with status 1
/// and the error, not by a signal, and no child is left behind (issue 16).
@Suite("Memory pressure")
struct MemoryTests {
    func shell(_ command: String) throws -> (status: Int32, output: String) { try Ipcplay.shell(command) }

    /// The pids the scenario printed ("pids a b").
    func pids(in output: String) -> [Int32] {
        output.split(separator: "\n").filter { $0.hasPrefix("pids ") }
            .flatMap { $0.split(separator: " ").dropFirst().compactMap { Int32($0) } }
    }

    func expectGone(_ pids: [Int32]) {
        for pid in pids {
            var zombie = false
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) { zombie = stat.contains(") Z ") }
            #expect(kill(pid, 0) != 0 && !zombie, "pid \(pid) survived")
        }
    }

    // The address-space limit leaves room for a queue's ring (256 MiB of address space,
    // reserved) and the binary. AddressSanitizer reserves terabytes of address space for
    // its shadow: it cannot run under `ulimit -v`.
    static let addressSpace = "ulimit -v 500000"

    @Test(.disabled(if: Ipcplay.underAddressSanitizer, "ulimit -v and AddressSanitizer exclude each other"))
    func outOfMemoryInsidePcallLeavesTheProcessUsable() throws {
        let s = try Ipcplay.writeScript("""
            local q = ipc.queue()
            local a, b = ipc.pipe()
            local function exhaust()
              local t = {}
              for i = 1, 1e9 do t[i] = string.rep("x", 100) .. i end
            end
            print("main", pcall(exhaust))
            q:put(1)
            print("queue", q:get(1))
            a:send({x = 2})
            print("pipe", b:recv(1).x)
            local s1, s2 = ipc.unix.socketpair()
            s1:send("hi")
            print("socket", s2:recv(2, 1))
            local p = ipc.spawn(function()
              local ok, err = pcall(exhaust)
              q:put("child " .. tostring(ok) .. " " .. err)
              q:put({n = 3})
            end)
            print(q:get(60))
            print("child table", q:get(60).n)
            print("joined", p:join(60), p.exitcode)
            print("again", pcall(exhaust))
            q:put(string.rep("y", 1 << 20))
            print("a large item", #q:get(1))
            """)
        defer { Ipcplay.removeScript(s) }
        let r = try shell("\(Self.addressSpace) && '\(Ipcplay.binary)' '\(s.path)'")
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output == """
            main\tfalse\tnot enough memory
            queue\t1
            pipe\t2
            socket\thi
            child false not enough memory
            child table\t3
            joined\ttrue\t0
            again\tfalse\tnot enough memory
            a large item\t1048576

            """, "\(r.output)")
    }

    @Test(.disabled(if: Ipcplay.underAddressSanitizer, "ulimit -v and AddressSanitizer exclude each other"))
    func outOfMemoryOutsidePcallEndsTheProcessWithStatus1() throws {
        // The host fills its heap with a table of 3 million one-element tables (to put and
        // get it), a child with a growing table; another child waits meanwhile.
        let s = try Ipcplay.writeScript("""
            local q = ipc.queue()
            local stop = ipc.event()
            local waiting = ipc.spawn(function() stop:wait() end)
            local greedy = ipc.spawn(function()
              local t = {}
              for i = 1, 1e9 do t[i] = {i} end
            end)
            print("greedy", greedy:join(60), greedy.exitcode)
            print("pids " .. waiting.pid .. " " .. greedy.pid)
            local t = {}
            for i = 1, 3000000 do t[i] = {i} end
            q:put(t)
            print(#q:get())
            """)
        defer { Ipcplay.removeScript(s) }
        let r = try shell("\(Self.addressSpace) && '\(Ipcplay.binary)' '\(s.path)'")
        #expect(r.status == 1, "the host ends with status 1, not a signal: \(r.output)")
        #expect(r.output.contains("greedy\ttrue\t1\n"), "the child ends with status 1: \(r.output)")
        #expect(r.output.contains("ipcplay: error in Process-2 (pid "), "\(r.output)")
        #expect(r.output.contains("ipcplay: error in MainProcess (pid "), "\(r.output)")
        let errors = r.output.split(separator: "\n").filter { $0.hasPrefix("ipcplay: error in ") }
        #expect(errors.count == 2 && errors.allSatisfy { $0.contains("): not enough memory (the Lua heap of this process holds ") },
                "\(r.output)")
        let all = pids(in: r.output)
        #expect(all.count == 2, "\(r.output)")
        expectGone(all)
    }

    @Test func memoryLimitBoundsTheHeapAndMessages() throws {
        let r = try Ipcplay.runLua("""
            local q = ipc.queue()
            local a, b = ipc.pipe()
            local go = ipc.event()
            local sender = ipc.spawn(function()
              go:wait()
              a:send(string.rep("c", 25 << 20))
            end)
            -- The heap's limit: a growing table gets "not enough memory" below it.
            local peak = 0
            local ok, err = pcall(function()
              local t = {}
              for i = 1, 1e9 do
                t[i] = string.rep("x", 100) .. i
                if i % 1000 == 0 then peak = math.max(peak, collectgarbage("count")) end
              end
            end)
            print(ok, err, peak <= 64 * 1024)
            -- Near the limit, a full collection before giving up: garbage never collected
            -- by steps (the collector is stopped), far more than the limit...
            collectgarbage("stop")
            for i = 1, 300 do local s = string.rep("z", 1 << 20) .. i end
            -- ... and a string library buffer (allocated outside Lua's own retries) just
            -- after small garbage brought the heap within 512 KiB of the limit.
            local fails = 0
            for _ = 1, 10 do
              while collectgarbage("count") < 64 * 1024 - 512 do local t = {1, 2, 3, 4} end
              if not pcall(string.rep, "z", 1 << 20) then fails = fails + 1 end
            end
            collectgarbage("restart")
            print("garbage collected when needed", fails)
            -- A message may take as much as the heap: a table holding one 30 MiB string
            -- three times is 90 MiB encoded.
            local s = string.rep("s", 30 << 20)
            print(select(2, pcall(q.put, q, {s, s, s})))
            print(select(2, pcall(a.send, a, {s, s, s})))
            s = nil
            -- Decoding a 25 MiB message needs 25 MiB more than the 45 MiB held.
            local held = {string.rep("h", 15 << 20), string.rep("i", 15 << 20), string.rep("j", 15 << 20)}
            go:set()
            print(select(2, pcall(b.recv, b, 60)))
            held = nil
            print(sender:join(60), sender.exitcode)
            local _, s2 = ipc.unix.socketpair()
            print(select(2, pcall(s2.recv, s2, 100 << 20, 0)))
            q:put("still works")
            print(q:get(1))
            """, options: ["--memory-limit", "64"])
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout == """
            false\tnot enough memory\ttrue
            garbage collected when needed\t0
            queue:put: not enough memory for a 90 MiB message (a message may take up to 64 MiB in this process)
            connection:send: not enough memory for a 90 MiB message (a message may take up to 64 MiB in this process)
            connection:recv: not enough memory to decode a 25 MiB message (it is lost)
            true\t0
            socket:recv: not enough memory for 100 MiB (a message may take up to 64 MiB in this process)
            still works

            """, "\(r.combined)")
    }

    @Test func memoryLimitMustBeAPositiveNumberOfMiB() throws {
        for bad in ["0", "-5", "many"] {
            let r = try Ipcplay.runLua("print('ran')", options: ["--memory-limit", bad])
            #expect(r.status == 2, "--memory-limit \(bad): \(r.combined)")
            #expect(!r.stdout.contains("ran"))
        }
    }
}
