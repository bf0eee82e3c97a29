import Foundation
import Testing

/// The example scenarios in scripts/, run with their sleeps scaled down.
@Suite("Example scripts")
struct ScriptsTests {
    func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init).sorted() }

    static let producerConsumerLines: [String] = {
        var l: [String] = []
        for p in ["p1", "p2"] {
            for v in ["A", "B", "C"] {
                l.append("\(p)的\(v)已被添加至队列中")
                l.append("\(p)的\(v)已被取出")
            }
        }
        return l.sorted()
    }()

    @Test func producerConsumer() throws {
        let r = try Ipcplay.run(["run", "--time-scale", "0.01", "scripts/producer_consumer.lua"])
        #expect(r.status == 0, "\(r.combined)")
        #expect(lines(r.stdout) == Self.producerConsumerLines)
        // Each item is added before it is taken.
        let out = r.stdout.split(separator: "\n").map(String.init)
        for p in ["p1", "p2"] {
            for v in ["A", "B", "C"] {
                let added = out.firstIndex(of: "\(p)的\(v)已被添加至队列中")
                let taken = out.firstIndex(of: "\(p)的\(v)已被取出")
                if let added, let taken { #expect(added < taken + 1) }
            }
        }
    }

    @Test func joinableQueue() throws {
        let r = try Ipcplay.run(["run", "--time-scale", "0.01", "scripts/joinable_queue.lua"])
        #expect(r.status == 0, "\(r.combined)")
        #expect(lines(r.stdout) == Self.producerConsumerLines)
    }

    @Test func pipe() throws {
        let r = try Ipcplay.run(["run", "--time-scale", "0.01", "scripts/pipe.lua"])
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout == "msg\n")
    }
}
