import Foundation
import Testing

/// `ipcplay step`: the person chooses who makes each step, from a pipe or a terminal.
@Suite("Step mode, piped and in a terminal", .serialized)
struct StepModeTests {
    static let locks = Ipcplay.locksInOppositeOrders + """

        print("no deadlock")
        """

    /// `ipcplay step` on `locks` with `answers` as its input; `check` gets the result and
    /// the script's path while the script is still there (a replay line runs it again).
    func step(answering answers: String, _ check: (Ipcplay.Result, String) throws -> Void) throws {
        let script = try Ipcplay.writeScript(Self.locks)
        defer { Ipcplay.removeScript(script) }
        try check(try Ipcplay.run(["step", script.path], stdin: answers), script.path)
    }

    @Test func choicesFromAPipe() throws {
        // Let the child start and take b, then the main process takes a: deadlock.
        try step(answering: "2\n2\n1\n") { r, script in
            #expect(r.status == 1, "\(r.combined)")
            #expect(r.stdout.contains("step 4: who goes next?"), "\(r.stdout)")
            #expect(r.stdout.contains("1  MainProcess  lock:acquire on a  (\(script):8)"), "\(r.stdout)")
            #expect(r.stdout.contains("2  Process-1  process start on Process-1"), "\(r.stdout)")
            #expect(r.stdout.contains("2  Process-1  lock:acquire on b  (\(script):3)"), "\(r.stdout)")
            // The run's own output (its reports too) comes through ipcplay step's output.
            #expect(r.stdout.contains("deadlock: every process is blocked"), "\(r.combined)")
            #expect(r.stdout.contains("the run deadlocked."), "\(r.combined)")
            let replay = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("replay: ipcplay replay ") })
            // The replay line replays that very run.
            let again = try Ipcplay.run(Array(replay.split(separator: " ").map(String.init).dropFirst(2)))
            #expect(again.status == 1 && again.stderr.contains("deadlock"), "\(again.combined)")
        }
    }

    @Test func undoAndRandomForTheRest() throws {
        // Take the deadlocking road (the child starts and takes b), undo that last choice
        // (back at step 5), then let the main process take a and b: no deadlock; "r" ends
        // the questions.
        try step(answering: "2\n2\nu\n1\n1\nr\n") { r, _ in
            #expect(r.status == 0, "\(r.combined)")
            #expect(r.stdout.contains("(undone)\n\nstep 5: who goes next?"), "\(r.stdout)")
            #expect(r.stdout.components(separatedBy: "no deadlock").count == 2, "the output is shown once: \(r.stdout)")
            #expect(r.stdout.contains("replay: ipcplay replay "), "\(r.stdout)")
        }
    }

    @Test func theEndOfInputLetsTheRandomSchedulerFinish() throws {
        try step(answering: "") { r, _ in
            #expect(r.status == 0 || r.status == 1, "\(r.combined)")
            #expect(r.stdout.contains("(end of input: random choices for the rest)"), "\(r.stdout)")
            #expect(r.stdout.contains("replay: ipcplay replay "), "\(r.stdout)")
        }
    }

    @Test func aWrongAnswerIsAskedAgain() throws {
        try step(answering: "7\nnobody\nu\nMainProcess\nr\n") { r, _ in
            #expect(r.stdout.contains("'7' is not one of the choices"), "\(r.stdout)")
            #expect(r.stdout.contains("'nobody' is not one of the choices"), "\(r.stdout)")
            #expect(r.stdout.contains("nothing to undo"), "\(r.stdout)")
            #expect(r.stdout.contains("replay: ipcplay replay "), "\(r.stdout)")
        }
    }

    /// Each prompt shows the objects touched so far and their state: a value's and an
    /// array's contents, a lock's holder, a queue's size, an event's flag, a semaphore's
    /// value, a barrier's count (taken while its first party waits in it).
    @Test func eachPromptShowsTheStateOfTheObjectsTouched() throws {
        let script = try Ipcplay.writeScript("""
            local v = ipc.value("i", 0, {name = "count"})
            local a = ipc.array("d", {1.5, 2, 0}, {name = "row"})
            local l = ipc.lock({name = "door"})
            local q = ipc.queue(0, {name = "jobs"})
            local e = ipc.event({name = "ready"})
            local s = ipc.semaphore(2, {name = "slots"})
            local b = ipc.barrier(3, {name = "meet"})
            local untouched = ipc.value("i", 5, {name = "untouched"})
            v.value = 7
            a[3] = 4
            l:acquire()
            q:put("x")
            q:put("y")
            e:set()
            s:acquire()
            local ps = {}
            for i = 1, 2 do
              ps[i] = ipc.spawn(function()
                v.value = v.value + i
                b:wait()
              end)
            end
            b:wait()
            for _, p in ipairs(ps) do p:join() end
            assert(untouched.value == 5)
            """)
        defer { Ipcplay.removeScript(script) }
        // Process-1 starts, adds 1, waits at the barrier; then the rest at random.
        let r = try Ipcplay.run(["step", script.path], stdin: "Process-1\nProcess-1\nProcess-1\nProcess-1\nr\n")
        #expect(r.status == 0, "\(r.combined)")
        let prompts = r.stdout.components(separatedBy: "who goes next?").dropFirst()
        let first = try #require(prompts.first)
        for line in ["    count  = 7\n", "    row    = {1.5, 2.0, 4.0}\n", "    door   held by MainProcess\n", "    jobs   2 items\n",
                     "    ready  set\n", "    slots  value 1\n"] {
            #expect(first.contains("\n  objects:\n") && first.contains(line), "\(line): \(first)")
        }
        #expect(!r.stdout.contains("untouched"), "an object no step touched is not shown: \(r.stdout)")
        let last = try #require(prompts.last)
        #expect(last.contains("    count  = 8\n") && last.contains("    meet   1 of 3 waiting\n"), "\(last)")
    }

    /// In a real terminal: tmux runs it, the test types with send-keys and reads the screen
    /// with capture-pane.
    @Test(.needsTmux)
    func inATerminalThroughTmux() throws {
        let script = try Ipcplay.writeScript(Self.locks)
        defer { Ipcplay.removeScript(script) }
        let session = "ipcplay-step-\(UUID().uuidString.prefix(8))"
        func tmux(_ args: String) throws -> String { try Ipcplay.tmux(args) }
        // The server keeps what it inherits open: give it no pipe of ours.
        _ = try tmux("new-session -d -s \(session) -x 120 -y 40 '\(Ipcplay.binary) step \(script.path); echo EXIT=$?; sleep 30' </dev/null >/dev/null 2>&1")
        defer { _ = try? tmux("kill-session -t \(session)") }
        func screen() throws -> String { try tmux("capture-pane -p -t \(session)") }
        func waitFor(_ text: String) throws -> String {
            var s = ""
            for _ in 0..<200 {
                s = try screen()
                if s.contains(text) { return s }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return s
        }
        var s = try waitFor("step 4: who goes next?")
        #expect(s.contains("1  MainProcess  lock:acquire on a"), "\(s)")
        #expect(s.contains("2  Process-1  process start on Process-1"), "\(s)")
        // The main process takes a, then b, before the child starts: no deadlock.
        _ = try tmux("send-keys -t \(session) 1 Enter")
        s = try waitFor("step 5: who goes next?")
        #expect(s.contains("1  MainProcess  lock:acquire on b"), "\(s)")
        #expect(s.contains("  objects:\n    a  held by MainProcess\n"), "\(s)")
        _ = try tmux("send-keys -t \(session) 1 Enter")
        s = try waitFor("step 6: who goes next?")
        #expect(s.contains("    a  held by MainProcess\n    b  held by MainProcess\n"), "\(s)")
        _ = try tmux("send-keys -t \(session) r Enter")
        s = try waitFor("EXIT=")
        #expect(s.contains("no deadlock"), "\(s)")
        #expect(s.contains("replay: ipcplay replay "), "\(s)")
        #expect(s.contains("EXIT=0"), "\(s)")
    }
}
