import Glibc
import IPCRuntime

extension IPCPlay.Explore {
    /// After SIGINT, SIGTERM or SIGHUP (the runs are ended already): how far the
    /// exploration got, and, when it was shrinking a failure, that failure's replay line
    /// as found; then exit 128 + the signal.
    func stopped(_ outcome: Exploration.Outcome, describe: String, whileShrinking failure: Explorer.Run? = nil) -> Never {
        var report: RunReport
        if let failure {
            report = failure.report
            if report.outcome == nil { report.outcome = .error; report.messages = ["the run ended with status \(failure.status)"] }
            let token = ReplayToken(scriptHash: ReplayToken.hash(ofScript: target.script), seed: failure.seed, decisions: failure.decisions)
            report.replay = Exploring.replayLine(token, script: target.script, arguments: target.arguments, shaping: options.shapingArguments)
            print("ipcplay: schedule \(outcome.schedules) of \(runs ?? 1000) failed (\(describe)); interrupted by \(Cancellation.signalName) while shrinking it")
            print("\(outcome.schedules) schedules, \(outcome.distinct) distinct interleavings")
            print("replay (not shrunk): \(report.replay ?? "")")
        } else {
            print("ipcplay: interrupted by \(Cancellation.signalName): stopped after \(outcome.schedules) schedules of \(runs ?? 1000) (\(describe))")
            print("\(outcome.schedules) schedules, \(outcome.distinct) distinct interleavings, no failure in them")
            report = RunReport(.interrupted)
            report.messages = ["stopped after \(outcome.schedules) schedules by \(Cancellation.signalName), no failure in them"]
        }
        if let path = options.report { Exploring.write(report, to: path) }
        fflushStdout()
        Glibc.exit(Cancellation.exitStatus)
    }
}
