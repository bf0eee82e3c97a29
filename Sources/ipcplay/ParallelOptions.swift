import ArgumentParser
import Glibc
import IPCRuntime

/// `--jobs J` and `--shard I/N` (explore, test --explore): how the schedules of one search
/// are spread over processes and machines.
struct ParallelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Run this many schedules at once (default: the number of CPUs). The result does not depend on it.", valueName: "J"))
    var jobs: Int?

    @Option(help: ArgumentHelp("Run only the I-th of N disjoint parts of the search (schedules numbered I, I+N, ...); the N shards of one seed cover exactly what one run covers.", valueName: "I/N"))
    var shard: String?

    @Option(help: .hidden)
    var hashes: String?

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if shard != nil, parsedShard == nil {
            throw ValidationError("--shard must be I/N with 1 <= I <= N (for example 2/4), not '\(shard!)'")
        }
    }

    /// The shard, 0-based.
    var parsedShard: Exploration.Shard? {
        guard let shard else { return .whole }
        return Exploration.Shard(shard)
    }

    var effectiveJobs: Int { jobs ?? Explorer.cpus }

    /// Sets up `exploration` with these options; the hashes file, if asked for, is written
    /// as schedules are merged.
    func apply(to exploration: inout Exploration) throws {
        exploration.jobs = effectiveJobs
        exploration.shard = parsedShard ?? .whole
        exploration.onSchedule = try hashesWriter()
    }

    /// What writes the hashes file (`--hashes`, for tests), if one is asked for: told a
    /// schedule's number (from 0) and interleaving hash, it writes "schedule N hash H" (N
    /// from 1).
    func hashesWriter() throws -> ((Int, UInt64) -> Void)? {
        guard let hashes else { return nil }
        guard let f = fopen(hashes, "w") else { throw CommandFailure(message: "cannot write \(hashes): \(String(cString: strerror(errno)))") }
        return { i, hash in
            fputs("schedule \(i + 1) hash \(String(hash, radix: 16))\n", f)
            fflush(f)
        }
    }

    /// The shard's line before the result lines ("" unsharded).
    func shardLine(runs: Int) -> String? {
        guard let s = parsedShard, s.count > 1 else { return nil }
        let mine = runs > s.index ? (runs - s.index + s.count - 1) / s.count : 0
        return "shard \(s.index + 1)/\(s.count): \(mine) of the \(runs) schedules (numbers \(s.index + 1), \(s.index + 1 + s.count), ...)"
    }
}
