import Foundation
import Testing

/// The warning for a lock taken over from a dead holder names the call that took it over
/// as the gate knows it (its declaration), whatever object kind shares the core's code.
@Suite("Dead-holder warnings name the call from the gate")
struct DeadHolderWarningTests {
    /// A producer killed in the middle of a streamed item (a ring of 64 KiB: it waits for
    /// room, holding the queue's put lock, for ever) leaves the lock to the next put, which
    /// takes it over (and closes the dead one's item) before it waits for room in its turn.
    static func killedProducer(_ constructor: String) -> String {
        """
        local ipc = require("ipc")
        local q = \(constructor)(0, {ring = 65536})
        local producer = ipc.spawn(function() q:put(string.rep("x", 200000)) end)
        -- Its first frame is in (the item counts): it now streams, or waits for room.
        while q:qsize() == 0 do ipc.sleep(0.001) end
        producer:kill()
        producer:join()
        q:put("after", 0.05)  -- the ring is full of the dead one's frames: it times out
        print("ok")
        """
    }

    @Test(arguments: [("ipc.joinable_queue", "joinable_queue:put"), ("ipc.queue", "queue:put")])
    func aTakeoverIsReportedWithTheCallsOwnName(_ constructor: String, _ call: String) throws {
        let r = try Ipcplay.runLua(Self.killedProducer(constructor))
        #expect(r.status == 0 && r.stdout == "ok\n", "\(r.combined)")
        // (Two when the producer died holding the state lock too: both are the put's.)
        let warnings = r.stderr.split(separator: "\n").filter { $0.contains("which died") }
        #expect(!warnings.isEmpty, "\(r.stderr)")
        #expect(warnings.allSatisfy { $0.hasSuffix("; \(call) took it over") }, "\(r.stderr)")
    }
}
