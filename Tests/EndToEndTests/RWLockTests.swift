import Foundation
import Testing

/// `ipc.rwlock` under the controlled scheduler: a planted bug (writers that take the lock
/// to read, Fixtures/rwlock/price_board.lua) is found by `explore`, with a replay line that
/// fails again; its fixed twin (they take it to write) passes 1000 schedules. The scenario
/// test (tests/rwlock_test.lua) covers its behaviour and its dead holders.
@Suite("ipc.rwlock under explore")
struct RWLockTests {
    static let limit = Double(300 * Ipcplay.slowdown)
    static let fixtures = "Tests/EndToEndTests/Fixtures/rwlock"

    @Test func thePlantedBugIsFound() throws {
        let script = "\(Self.fixtures)/price_board.lua"
        let r = try Ipcplay.run(["explore", "--seed", "1", "--runs", "1000", script], limit: Self.limit)
        #expect(!r.hung && r.status == 1, "\(r.combined)")
        let out = r.stdout.split(separator: "\n").map(String.init)
        #expect(Ipcplay.explanationLine(in: r.stdout).map { $0 != "no explanation found" } == true, "\(r.stdout)")
        #expect(out.contains { $0.contains("rwlock:acquire_read board") || $0.contains("acquire_read board") }, "\(r.stdout)")
        guard let replay = out.first(where: { $0.hasPrefix("replay: ipcplay replay ") }),
              case let words = replay.split(separator: " ").map(String.init), words.count == 5 else {
            Issue.record("no replay line: \(r.stdout)")
            return
        }
        let again = try Ipcplay.run(["replay", words[3], script], limit: Self.limit)
        #expect(again.status == 1, "replayed: \(again.combined)")
    }

    @Test func theFixHolds() throws {
        let script = "\(Self.fixtures)/price_board_fixed.lua"
        let r = try Ipcplay.run(["explore", "--seed", "1", "--runs", "1000", script], limit: Self.limit)
        #expect(!r.hung && r.status == 0, "\(r.combined)")
        #expect(r.stdout.split(separator: "\n").last?.hasSuffix("no failure") == true, "\(r.stdout)")
    }
}
