/// The wait-for graph of a deadlocked run: each blocked process points to the processes
/// that hold what it waits for (a lock's owner, the child a join waits for, whoever still
/// has the write end of the pipe it reads). A deadlock whose holders are known has a cycle
/// in it; the `cycle:` line names it.
public enum WaitForGraph {
    /// The `cycle:` line of a deadlocked run, from its report's blocked list:
    /// `cycle: A waits for x held by B; B waits for y held by A`, or nil when no cycle
    /// runs through holders the run knows (a wait on a queue or an event names nobody).
    /// The shortest cycle through the first process, in the list's order, that is on one.
    public static func cycleLine(_ blocked: [BlockedProcess]) -> String? {
        guard let cycle = cycle(blocked) else { return nil }
        let steps = cycle.map { i -> String in
            let b = blocked[i]
            return "\(b.name) waits for \(b.object.isEmpty ? b.call : b.object) held by \(names(b.holders.map(\.name)))"
        }
        return "cycle: " + steps.joined(separator: "; ")
    }

    /// The cycle as indices into `blocked`, each waiting for the next (the last for the first).
    static func cycle(_ blocked: [BlockedProcess]) -> [Int]? {
        let edges = blocked.map { b -> [Int] in
            guard b.state == .blocked else { return [] }
            return b.holders.compactMap { h in blocked.firstIndex { same($0, h) && $0.state == .blocked } }
        }
        for start in blocked.indices {
            // Breadth first from `start`: the first way back to it is a shortest cycle.
            var previous = [Int?](repeating: nil, count: blocked.count)
            var frontier = [start]
            var seen = Set([start])
            while !frontier.isEmpty {
                var next: [Int] = []
                for v in frontier {
                    for w in edges[v] {
                        if w == start {
                            var path = [v]
                            while let p = previous[path[0]] { path.insert(p, at: 0) }
                            return path
                        }
                        if seen.insert(w).inserted {
                            previous[w] = v
                            next.append(w)
                        }
                    }
                }
                frontier = next
            }
        }
        return nil
    }

    /// The holder `h` is process `b`: by pid when both have one, else by name.
    static func same(_ b: BlockedProcess, _ h: BlockedProcess.Holder) -> Bool {
        if let p = b.pid, let q = h.pid { return p == q }
        return b.name == h.name
    }

    /// "A", "A and B", "A, B and C".
    static func names(_ list: [String]) -> String {
        guard list.count > 1 else { return list.first ?? "" }
        return list.dropLast().joined(separator: ", ") + " and " + list[list.count - 1]
    }
}
