import ArgumentParser
import Glibc
import IPCCore
import IPCLua
import IPCRuntime

extension IPCPlay {
    /// `ipcplay step`: the Deadlock Empire game for real processes. At each step where
    /// more than one process can go, the person chooses; `u` undoes (the run is replayed
    /// up to the choice before, its output not shown twice), `r` lets the random scheduler
    /// choose the rest, as does the end of the input.
    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a script one step at a time: you choose which process makes each step.",
            discussion: """
                At each step where more than one process can go, every such process is shown \
                with its pending call and file:line; answer with its number or its name, 'u' to \
                undo the last choice, 'r' to let the random scheduler choose the rest (as the \
                end of the input does). The run ends with a replay line.

                Exit status: 0 the run did not fail, 1 it failed, 2 usage error.
                """
        )

        @Option(help: ArgumentHelp("Seed of math.random and of the random choices after 'r'.", valueName: "n"))
        var seed: UInt64 = 1

        @OptionGroup var options: ScheduleCommandOptions

        @OptionGroup var target: ScriptArguments

        func run() throws {
            Cancellation.install(graceful: false)
            let explorer = try options.explorer(target, seed: seed)
            let requests: (read: Int32, write: Int32)
            do { requests = try Pipe.make() } catch {
                throw CommandFailure(message: "cannot create a pipe: \(error)", status: 1)
            }
            explorer.log.setRequestDescriptor(requests.write)
            var session = StepSession(explorer: explorer, requests: requests.read, seed: seed)
            let run = session.play()
            if Cancellation.isRequested {
                Runtime.writeStderr("\nipcplay: interrupted by \(Cancellation.signalName); the run was ended\n")
                Glibc.exit(Cancellation.exitStatus)
            }
            let token = ReplayToken(scriptHash: ReplayToken.hash(ofScript: target.script), seed: seed, decisions: run.decisions)
            var report = run.report
            if run.failed {
                // Its interleaving, schedule and explanation, as explore prints them.
                let explanation = explorer.explain(run, picks: run.picks, kills: run.kills).0
                report = Exploring.report(run, explanation: explanation, script: target.script, full: options.full)
                print(report.outcome == .deadlock ? "the run deadlocked." : "the run failed: \(report.outcome!.rawValue)")
                print("\n" + Exploring.findings(report), terminator: "")
            }
            print("replay: " + Exploring.replayLine(token, script: target.script, arguments: target.arguments, shaping: options.shapingArguments))
            if let path = options.report { Exploring.write(report, to: path) }
            fflushStdout()
            Glibc.exit(run.failed ? 1 : 0)
        }
    }
}

/// One game of `ipcplay step`: runs, prompts, undoes.
struct StepSession {
    let explorer: Explorer
    let requests: Int32
    let seed: UInt64
    /// The choices made so far (process indices), and how much output had been shown at
    /// each (an undo shows nothing twice).
    var choices: [Int] = []
    var shownAt: [Int] = []
    var shown = 0
    var input = LineReader(fd: 0)

    init(explorer: Explorer, requests: Int32, seed: UInt64) {
        self.explorer = explorer
        self.requests = requests
        self.seed = seed
    }

    /// Plays until a run ends; returns it.
    mutating func play() -> Explorer.Run {
        while true {
            let decisions = choices.map { ScheduleLog.Decision(process: $0, processName: "", site: nil, objectName: "") }
            guard let child = explorer.launch(.directed(.ask), seed: seed, decisions: decisions, locations: true, output: .capture) else {
                return explorer.run(.directed(.random), seed: seed, output: .inherit)
            }
            if let run = follow(child) { return run }
        }
    }

    /// Follows the run of `child`, answering its questions; nil when the person undid a
    /// choice (the run was ended: play again).
    mutating func follow(_ child: Int32) -> Explorer.Run? {
        let pidfd = (try? ProcessControl.pidfdOpen(child))?.rawValue ?? -1
        defer { if pidfd >= 0 { close(pidfd) } }
        while true {
            let revents = (try? Poll.wait([(requests, Int16(POLLIN)), (pidfd, Int16(POLLIN))], deadline: .never)) ?? [0, 1]
            showOutput()
            if revents[0] != 0 {
                var byte: UInt8 = 0
                while read(requests, &byte, 1) == 1 {}
                if !answer(child) { return nil }
            } else if revents[1] != 0 {
                let run = explorer.collect(child, seed: seed, output: .capture)
                showOutput()
                return run
            }
        }
    }

    /// Shows what the run printed since the last look.
    mutating func showOutput() {
        let bytes = explorer.output(from: shown)
        guard !bytes.isEmpty else { return }
        shown += bytes.count
        bytes.withUnsafeBytes { _ = Syscall.writeAll(1, $0.baseAddress, $0.count) }
    }

    /// Prompts for the current choice and answers it; false when the person undid.
    mutating func answer(_ child: Int32) -> Bool {
        let offered = explorer.log.offered
        var text = "\nstep \(explorer.log.nextStep): who goes next?\n"
        text += explorer.log.objectStatesText
        for (i, c) in offered.enumerated() {
            text += "  \(i + 1)  \(c.name)  \(c.call)\(c.object.isEmpty ? "" : " on \(c.object)")\(c.location.isEmpty ? "" : "  (\(c.location))")\n"
        }
        text += "choice (number or name; u undo; r random for the rest)? "
        while true {
            Runtime.writeStdout(text)
            guard let line = input.next() else {
                if Cancellation.isRequested { return true }  // the run is ended: play() returns it
                Runtime.writeStdout("\n(end of input: random choices for the rest)\n")
                explorer.log.answer(-1)
                return true
            }
            let word = line.trimmingSpaces()
            if word == "u" {
                guard !choices.isEmpty else {
                    Runtime.writeStdout("nothing to undo\n")
                    continue
                }
                choices.removeLast()
                shown = shownAt.removeLast()
                Runtime.writeStdout("(undone)\n")
                kill(child, SIGKILL)
                _ = explorer.collect(child, seed: seed, output: .capture)
                return false
            }
            if word == "r" {
                explorer.log.answer(-1)
                return true
            }
            let pick = Int(word).flatMap { $0 >= 1 && $0 <= offered.count ? offered[$0 - 1] : nil }
                ?? offered.first { $0.name == word }
            guard let pick else {
                Runtime.writeStdout("'\(word)' is not one of the choices\n")
                continue
            }
            choices.append(pick.process)
            shownAt.append(shown)
            explorer.log.answer(pick.process)
            return true
        }
    }
}

/// Lines from a descriptor, read a byte at a time: nothing is read ahead, so a pipe's
/// later lines stay for later questions.
struct LineReader {
    let fd: Int32

    mutating func next() -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n < 0 && Syscall.lastError == .interrupted && !Cancellation.isRequested { continue }
            if n <= 0 { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
