import CSystemShim
@testable import IPCCore
import Testing

/// The event's generation and the barrier's action, within one process (the end-to-end
/// tests run them across processes and under the controlled scheduler).
@Suite("Events and barriers: Python's semantics")
struct SyncTests {
    @Test func aWaitThatBeganBeforeSetAndClearReturnsTrue() throws {
        let e = try SharedEvent(name: "e")
        let start = e.sets
        e.set()
        e.clear()
        #expect(!e.isSet)
        #expect(e.wait(deadline: .now, since: start), "the set() happened after the wait began")
        #expect(!e.wait(deadline: .now), "a wait that begins after set(); clear() waits for the next set()")
        #expect(!e.wait(deadline: .after(seconds: 0.01)))
    }

    @Test func everySetCountsEvenWhenTheFlagIsAlreadySet() throws {
        let e = try SharedEvent(name: "e")
        e.set()
        let start = e.sets
        e.set()
        #expect(e.sets == start &+ 1)
        e.clear()
        #expect(e.isSignalled(since: start))
        #expect(!e.isSignalled(since: e.sets))
    }

    /// A sleeper killed asleep leaves the sleepers bit: the next set() wakes nobody, clears
    /// it, and counts as ever.
    @Test func aSleeperBitLeftByADeadWaiterCostsOneWakeAndNothingElse() throws {
        let e = try SharedEvent(name: "e")
        _ = ipc_add32(&e.h.pointee.generation, SharedEvent.sleepers)  // as a dead sleeper leaves it
        let start = e.sets
        e.set()
        #expect(e.h.pointee.generation & SharedEvent.sleepers == 0)
        #expect(e.sets == start &+ 1)
        e.clear()
        #expect(!e.wait(deadline: .now))
    }

    @Test func theLastPartyRunsTheActionOncePerPassage() throws {
        let b = try SharedBarrier(parties: 1, name: "b")
        var runs = 0
        #expect(b.wait(deadline: .now, action: { runs += 1; return true }) == .passed(index: 0))
        #expect(b.wait(deadline: .now, action: { runs += 1; return true }) == .passed(index: 0))
        #expect(runs == 2)
        #expect(!b.isBroken)
    }

    @Test func aFailedActionBreaksTheBarrier() throws {
        let b = try SharedBarrier(parties: 1, name: "b")
        #expect(b.wait(deadline: .now, action: { false }) == .actionFailed)
        #expect(b.isBroken)
        #expect(b.wait(deadline: .now) == .broken)
        b.reset()
        #expect(b.wait(deadline: .now) == .passed(index: 0))
    }

    @Test func aResetWhileTheActionRunsReleasesThePassageBroken() throws {
        let b = try SharedBarrier(parties: 1, name: "b")
        #expect(b.wait(deadline: .now, action: { b.reset(); return true }) == .broken)
        #expect(!b.isBroken, "reset leaves it usable")
        #expect(b.wait(deadline: .now) == .passed(index: 0))
    }
}
