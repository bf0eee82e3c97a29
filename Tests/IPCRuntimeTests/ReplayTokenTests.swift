import Glibc
@testable import IPCRuntime
import Testing

@Suite("Replay tokens: compact, and read defensively")
struct ReplayTokenTests {
    /// The runtime's calls are declared when first used; a token names them by name.
    init() { _ = [CallSite.join, CallSite.processStart, CallSite.processEnd] }

    /// Decisions named by the runtime's own calls (the only ones declared without Lua).
    static func decisions(_ pattern: [(String, CallSite, String)], repeating times: Int) -> [ScheduleLog.Decision] {
        (0..<times).flatMap { _ in
            pattern.map { ScheduleLog.Decision(process: nil, processName: $0.0, site: $0.1, objectName: $0.2) }
        }
    }

    static let loop = decisions([("Process-1", CallSite.join, "a"), ("Process-2", CallSite.processStart, ""),
                                 ("Process-1", CallSite.processEnd, "b")], repeating: 1)
        + decisions([("Process-2", CallSite.join, "a"), ("Process-1", CallSite.join, "a"), ("Process-2", CallSite.processEnd, "")],
                    repeating: 5000)
        + decisions([("MainProcess", CallSite.join, "")], repeating: 7)

    /// Bytes as a token of this format.
    static func token(_ bytes: [UInt8], version: String = "s2") -> String { "\(version).0.\(Base64URL.encode(bytes))" }

    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        return out + [UInt8(v)]
    }

    static func string(_ s: String) -> [UInt8] { varint(UInt64(s.utf8.count)) + Array(s.utf8) }

    @Test func aTokenReadsBackAsWritten() throws {
        let token = ReplayToken(scriptHash: "0badf00d", seed: 42, decisions: Self.loop)
        let read = try ReplayToken(parsing: token.text, maxDecisions: 100_000)
        #expect(read == token)
    }

    @Test func aLoopsDecisionsTakeAFewBytes() throws {
        // 15,010 decisions that repeat with a period of three: the old coding (runs of one
        // decision) took a byte or more per decision.
        let text = ReplayToken(scriptHash: "", seed: 1, decisions: Self.loop).text
        #expect(text.hasPrefix("s2.0."))
        #expect(text.count < 200, "\(text.count) characters: \(text)")
    }

    @Test func anOldTokenIsStillRead() throws {
        // s1: seed, names, ops, entries, then counted runs of one entry.
        let bytes = Self.varint(9) + Self.varint(1) + Self.string("Process-1") + Self.varint(1) + Self.string("process:join")
            + Self.string("x") + Self.varint(1) + Self.varint(0) + Self.varint(0) + Self.varint(2) + Self.varint(1) + Self.varint(3)
            + Self.varint(0)
        let read = try ReplayToken(parsing: Self.token(bytes, version: "s1"), maxDecisions: 100)
        #expect(read.seed == 9)
        #expect(read.decisions.count == 4)
        #expect(read.decisions.allSatisfy { $0.processName == "Process-1" && $0.site == CallSite.join && $0.objectName == "x" })
    }

    /// The token that crashed the host: an entry that names process 0 of an empty table.
    @Test func anEntryOfAnEmptyTableIsAnError() {
        #expect(throws: ReplayToken.Malformed.self) { try ReplayToken(parsing: "s1.0.AAAAAQAAAA", maxDecisions: 100_000) }
        #expect(throws: ReplayToken.Malformed.self) { try ReplayToken(parsing: "s2.0.AAAAAQAAAA", maxDecisions: 100_000) }
    }

    /// A few bytes that claim more decisions than a run may take: refused before any is
    /// made (the old reader made 80 million, 5 GB).
    @Test func countsPastTheRunsStepsAreRefused() throws {
        let table = Self.varint(0) + Self.varint(1) + Self.string("a") + Self.varint(1) + Self.string("process start")
            + Self.string("") + Self.varint(1) + Self.varint(0) + Self.varint(0)
        let runs = (0..<8).flatMap { _ in Self.varint(1) + Self.varint(10_000_000) }
        let old = Self.token(table + Self.varint(8) + runs, version: "s1")
        #expect(old.count < 100)
        #expect(throws: ReplayToken.Malformed.self) { try ReplayToken(parsing: old, maxDecisions: 100_000) }
        let copy = Self.token(table + Self.varint(50_000_000) + Self.varint(0) + Self.varint(UInt64(50_000_000 - 3) << 1 | 1) + Self.varint(0))
        #expect(throws: ReplayToken.Malformed.self) { try ReplayToken(parsing: copy, maxDecisions: 100_000) }
        // The same within the limit is a real token.
        let fits = Self.token(table + Self.varint(50_000) + Self.varint(0) + Self.varint(UInt64(50_000 - 3) << 1 | 1) + Self.varint(0))
        #expect(try ReplayToken(parsing: fits, maxDecisions: 100_000).decisions.count == 50_000)
    }

    /// The largest heap this process has had, in KiB.
    static func peakKiB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss
    }

    /// Random bytes, and a real token mutated (bytes flipped, cut, grown, spliced): every
    /// one is read or refused, none crashes, and none makes more than the decisions allowed.
    @Test func fuzzedTokensNeverCrashNorBalloon() throws {
        var random = SplitMix64(seed: 24)
        func below(_ n: Int) -> Int { Int(random.next() % UInt64(max(n, 1))) }
        let real = ReplayToken(scriptHash: "", seed: 3, decisions: Self.loop).text
        let realBytes = try #require(Base64URL.decode(real.dropFirst(5)))
        let limit = 20_000
        let before = Self.peakKiB()
        var read = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            switch round % 4 {
            case 0:
                bytes = (0..<below(64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            case 1:
                bytes = realBytes
                for _ in 0...below(4) where !bytes.isEmpty { bytes[below(bytes.count)] = UInt8(truncatingIfNeeded: random.next()) }
            case 2:
                bytes = Array(realBytes.prefix(below(realBytes.count + 1)))
                bytes += (0..<below(8)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            default:
                bytes = realBytes
                let at = below(bytes.count)
                bytes.insert(contentsOf: Self.varint(random.next() >> UInt64(below(64))), at: at)
            }
            let text = Self.token(bytes, version: round % 8 < 4 ? "s2" : "s1")
            if let token = try? ReplayToken(parsing: text, maxDecisions: limit) {
                #expect(token.decisions.count <= limit)
                read += 1
            }
        }
        // Text that is not even base64url, or absurdly long, is refused too.
        #expect(throws: ReplayToken.Malformed.self) { try ReplayToken(parsing: "s2.0.#!", maxDecisions: limit) }
        #expect(throws: ReplayToken.Malformed.self) { try ReplayToken(parsing: "s2.0", maxDecisions: limit) }
        #expect(throws: ReplayToken.Malformed.self) {
            try ReplayToken(parsing: "s2.0." + String(repeating: "A", count: ReplayToken.maxTextLength), maxDecisions: limit)
        }
        #expect(read > 0, "some mutations still read")
        // The peak grew by far less than what one absurd count would allocate.
        #expect(Self.peakKiB() - before < 256 << 10, "peak grew by \(Self.peakKiB() - before) KiB")
    }

    @Test func aLongTokenGoesToAFileAndReadsBack() throws {
        let dir = "/tmp/ipcplay-token-test-\(getpid())"
        mkdir(dir, 0o700)
        defer { rmdir(dir) }
        var decisions: [ScheduleLog.Decision] = []
        var random = SplitMix64(seed: 5)
        for _ in 0..<4000 {
            decisions.append(ScheduleLog.Decision(process: nil, processName: "Process-\(random.next() % 9)", site: CallSite.join, objectName: ""))
        }
        let token = ReplayToken(scriptHash: "", seed: 1, decisions: decisions)
        #expect(token.text.count > ReplayToken.longestInline)
        let path = ReplayToken.filePath(for: token.text, directory: dir + "/")
        #expect(path.hasPrefix(dir + "/ipcplay-replay-") && path.hasSuffix(".token"))
        #expect(ReplayToken.filePath(for: token.text, directory: dir) == path, "named by the token alone")
        try ReplayToken.write(token.text, to: path)
        defer { unlink(path) }
        let text = try ReplayToken.text(ofArgument: "@" + path)
        #expect(try ReplayToken(parsing: text, maxDecisions: 100_000) == token)
        #expect(throws: ReplayToken.Malformed.self) { try ReplayToken.text(ofArgument: "@" + dir + "/missing") }
    }
}
