import ArgumentParser
import Glibc
import IPCCore
import IPCLua
import IPCRuntime

/// `explore --exhaustive [--preemptions K] [--resume FILE] [--jobs J]`.
struct ExhaustiveOptions: ParsableArguments {
    @Flag(help: "Visit every interleaving once, up to the order of independent steps (dynamic partial-order reduction).")
    var exhaustive = false

    @Option(help: ArgumentHelp("With --exhaustive: only schedules with at most this many preemptions.", valueName: "k"))
    var preemptions: Int?

    @Option(help: ArgumentHelp("With --exhaustive: go on with the search saved in this file (a search that --runs or --time-limit stops is saved there).", valueName: "file"))
    var resume: String?

    /// Checks the reduction: after a complete search, runs every schedule without it and
    /// says how many of the interleavings met that way the search missed (for tests).
    @Flag(name: .customLong("check-naive"), help: .hidden)
    var checkNaive = false

    func validate() throws {
        if let preemptions, preemptions < 0 { throw ValidationError("--preemptions must be at least 0") }
        if !exhaustive && preemptions != nil { throw ValidationError("--preemptions goes with --exhaustive") }
        if !exhaustive && resume != nil { throw ValidationError("--resume goes with --exhaustive") }
    }

    /// What a saved search belongs to: the script's contents, its arguments, the bound,
    /// the kills, the seed.
    func header(_ target: ScriptArguments, seed: UInt64, kills: Int) -> String {
        let args = target.arguments.map { Exploring.shellQuoted($0) }.joined(separator: " ")
        return "script \(ReplayToken.hash(ofScript: target.script)) seed \(seed) preemptions \(preemptions.map(String.init) ?? "none") kill \(kills) args \(args)"
    }

    /// Runs the search (with up to `kills` kills per schedule, `parallel`'s jobs at once) and
    /// ends the program with its exit status. `parallel`'s hashes file, if asked for, gets
    /// each schedule that is a whole interleaving.
    func run(runs: Int?, timeLimit: Double?, seed given: UInt64?, kills: Int, parallel: ParallelOptions,
             options: ScheduleCommandOptions, target: ScriptArguments) throws -> Never {
        let seed = given ?? 1
        let jobs = parallel.effectiveJobs
        let explorer = try options.explorer(target, seed: seed)
        let header = header(target, seed: seed, kills: kills)
        var state = ExhaustiveSearch.State()
        if let resume, access(resume, F_OK) == 0 {
            guard let text = fileContents(resume).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw CommandFailure(message: "cannot read \(resume)", status: 2)
            }
            guard let saved = ExhaustiveSearch.State(decoding: text, header: header) else {
                throw CommandFailure(message: "\(resume) is not a saved search of this script with these arguments, seed, --preemptions and --kill", status: 2)
            }
            state = saved
        }
        var search = ExhaustiveSearch()
        search.preemptions = preemptions
        search.kills = kills
        search.runs = runs
        search.timeLimit = timeLimit
        search.seed = seed
        search.jobs = jobs
        search.onSchedule = try parallel.hashesWriter()
        let progress = ProgressLine()
        if progress.enabled {
            search.progress = { progress.show(schedules: $0, depth: $1, seconds: $2, ranAhead: jobs > 1 ? $3 : nil) }
        }
        let result = search.search(explorer, state: &state)
        progress.clear()
        if getenv("IPCPLAY_SCHED_STATS") != nil {
            // What running ahead (--jobs) bought: runs made ahead, and how many the search took.
            Runtime.writeStderr("ipcplay: exhaustive: \(state.schedules) schedules, jobs \(jobs), \(state.ranAhead) runs made ahead, "
                                + "\(state.ranAheadUsed) of them used, \(state.ranAhead - state.ranAheadUsed) wasted\n")
        }
        let bound = (preemptions.map { "at most \($0) preemptions, " } ?? "") + (kills > 0 ? "kill \(kills), " : "")
        switch result {
        case .unsupported(let why):
            throw CommandFailure(message: "--exhaustive --kill: \(why)", status: 2)
        case .failed(let failure):
            Exploring.shrinkAndReport(failure, explorer: explorer, limits: ShrinkLimits(), target: target, options: options,
                                      headline: "schedule \(state.schedules) failed (exhaustive, \(bound)seed \(seed))")
        case .complete:
            print("\(state.schedules) schedules, \(state.distinct) distinct interleavings, no failure")
            print(preemptions.map { "complete: every interleaving with at most \($0) preemptions was checked" } ?? "complete: every interleaving was checked")
            if checkNaive {
                let naive = search.naive(explorer)
                let missed = naive.classes.subtracting(state.classHashes).count
                print("naive: \(naive.schedules) schedules, \(naive.classes.count) distinct interleavings, \(missed) missed by the search")
                fflushStdout()
                Glibc.exit(missed == 0 ? 0 : 1)
            }
            if let resume { unlink(resume) }
            if let path = options.report { Exploring.write(RunReport(.ok), to: path) }
            fflushStdout()
            Glibc.exit(0)
        case .stopped, .diverged:
            if case .diverged(let why) = result {
                print("ipcplay: the search cannot go on: \(why)")
            } else if Cancellation.isRequested {
                print("ipcplay: interrupted by \(Cancellation.signalName)")
            }
            print("\(state.schedules) schedules, \(state.distinct) distinct interleavings, no failure")
            if case .stopped = result {
                let path = resume ?? "ipcplay-exhaustive-\(ReplayToken.hash(ofScript: target.script)).state"
                let text = state.encoded(header: header)
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                if fd >= 0, text.utf8.withContiguousStorageIfAvailable({ write(fd, $0.baseAddress, $0.count) == $0.count }) ?? false {
                    print("search saved to \(path): go on with --resume \(Exploring.shellQuoted(path))")
                } else {
                    print("ipcplay: cannot save the search to \(path): \(Syscall.lastError)")
                }
                if fd >= 0 { close(fd) }
            }
            print("incomplete: stopped after \(state.schedules) schedules")
            fflushStdout()
            Glibc.exit(Cancellation.isRequested ? Cancellation.exitStatus : 3)
        }
    }
}

/// The search's progress on a terminal (standard error only): schedules run, the current
/// depth, the rate. Nothing when standard error is not a terminal.
final class ProgressLine {
    let enabled = isatty(2) != 0
    var last = -1.0

    /// `ranAhead`: with --jobs, how many of the schedules had been run ahead.
    func show(schedules: Int, depth: Int, seconds: Double, ranAhead: Int?) {
        guard seconds - last >= 0.25 else { return }
        last = seconds
        let rate = seconds > 0 ? Int(Double(schedules) / seconds) : 0
        let ahead = ranAhead.map { ", \($0) run ahead" } ?? ""
        Runtime.writeStderr("\r\u{1b}[Kexhaustive: \(schedules) schedules, depth \(depth), \(rate) schedules/s\(ahead)")
    }

    func clear() {
        if enabled && last >= 0 { Runtime.writeStderr("\r\u{1b}[K") }
    }
}
