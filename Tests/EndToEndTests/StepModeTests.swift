import Foundation
import Testing

/// `ipcplay step`: the person chooses who makes each step, from a pipe or a terminal.
@Suite("Step mode, piped and in a terminal", .serialized)
struct StepModeTests {
    static let locks = Ipcplay.locksInOppositeOrders + """

        print("no deadlock")
        """

    @Test func choicesFromAPipe() throws {
        let script = try Ipcplay.writeScript(Self.locks)
        defer { Ipcplay.removeScript(script) }
        // Let the child start and take b, then the main process takes a: deadlock.
        let r = try Ipcplay.run(["step", script.path], stdin: "2\n2\n1\n")
        #expect(r.status == 1, "\(r.combined)")
        #expect(r.stdout.contains("step 4: who goes next?"), "\(r.stdout)")
        #expect(r.stdout.contains("1  MainProcess  lock:acquire on a  (\(script.path):8)"), "\(r.stdout)")
        #expect(r.stdout.contains("2  Process-1  process start on Process-1"), "\(r.stdout)")
        #expect(r.stdout.contains("2  Process-1  lock:acquire on b  (\(script.path):3)"), "\(r.stdout)")
        // The run's own output (its reports too) comes through ipcplay step's output.
        #expect(r.stdout.contains("deadlock: every process is blocked"), "\(r.combined)")
        #expect(r.stdout.contains("the run deadlocked."), "\(r.combined)")
        let replay = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("replay: ipcplay replay ") })
        // The replay line replays that very run.
        let again = try Ipcplay.run(Array(replay.split(separator: " ").map(String.init).dropFirst(2)))
        #expect(again.status == 1 && again.stderr.contains("deadlock"), "\(again.combined)")
    }

    @Test func undoAndRandomForTheRest() throws {
        let script = try Ipcplay.writeScript(Self.locks)
        defer { Ipcplay.removeScript(script) }
        // Take the deadlocking road (the child starts and takes b), undo that last choice
        // (back at step 5), then let the main process take a and b: no deadlock; "r" ends
        // the questions.
        let r = try Ipcplay.run(["step", script.path], stdin: "2\n2\nu\n1\n1\nr\n")
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout.contains("(undone)\n\nstep 5: who goes next?"), "\(r.stdout)")
        #expect(r.stdout.components(separatedBy: "no deadlock").count == 2, "the output is shown once: \(r.stdout)")
        #expect(r.stdout.contains("replay: ipcplay replay "), "\(r.stdout)")
    }

    @Test func theEndOfInputLetsTheRandomSchedulerFinish() throws {
        let script = try Ipcplay.writeScript(Self.locks)
        defer { Ipcplay.removeScript(script) }
        let r = try Ipcplay.run(["step", script.path], stdin: "")
        #expect(r.status == 0 || r.status == 1, "\(r.combined)")
        #expect(r.stdout.contains("(end of input: random choices for the rest)"), "\(r.stdout)")
        #expect(r.stdout.contains("replay: ipcplay replay "), "\(r.stdout)")
    }

    @Test func aWrongAnswerIsAskedAgain() throws {
        let script = try Ipcplay.writeScript(Self.locks)
        defer { Ipcplay.removeScript(script) }
        let r = try Ipcplay.run(["step", script.path], stdin: "7\nnobody\nu\nMainProcess\nr\n")
        #expect(r.stdout.contains("'7' is not one of the choices"), "\(r.stdout)")
        #expect(r.stdout.contains("'nobody' is not one of the choices"), "\(r.stdout)")
        #expect(r.stdout.contains("nothing to undo"), "\(r.stdout)")
        #expect(r.stdout.contains("replay: ipcplay replay "), "\(r.stdout)")
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
        _ = try tmux("send-keys -t \(session) 1 Enter")
        s = try waitFor("step 6: who goes next?")
        _ = try tmux("send-keys -t \(session) r Enter")
        s = try waitFor("EXIT=")
        #expect(s.contains("no deadlock"), "\(s)")
        #expect(s.contains("replay: ipcplay replay "), "\(s)")
        #expect(s.contains("EXIT=0"), "\(s)")
    }
}
