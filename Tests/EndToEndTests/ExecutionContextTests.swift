import Foundation
import Testing

/// What a process keeps of its run lives in its execution contexts (IPCCore's
/// `CoreExecution`, IPCRuntime's `Execution`, IPCLua's `LuaExecution`), not in statics
/// spread over the tree (issue 31): the `nonisolated(unsafe)` statics of Sources/ are
/// few, and each says, in its doc comment, why it cannot live in a context.
@Suite("One execution context")
struct ExecutionContextTests {
    /// At most this many `nonisolated(unsafe)` statics (and globals) in Sources/.
    static let allowed = 8

    /// A `nonisolated(unsafe)` static or global of a source text.
    struct Declaration: Equatable {
        var line: Int
        var text: String
        /// A doc comment (`///`) right above it (past its other attributes).
        var isExplained: Bool
    }

    /// The `nonisolated(unsafe)` statics and file-level globals of `source` (not the
    /// locals of a function, which are no process state).
    static func unsafeStatics(in source: String) -> [Declaration] {
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var found: [Declaration] = []
        for (i, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("//"), trimmed.contains("nonisolated(unsafe)") else { continue }
            // The attribute may stand on its own line above the declaration.
            let declaration = trimmed.hasSuffix("nonisolated(unsafe)") && i + 1 < lines.count ? trimmed + " " + lines[i + 1] : trimmed
            let isFileLevel = !line.hasPrefix(" ") && !line.hasPrefix("\t")
            guard declaration.contains("static ") || isFileLevel else { continue }
            var above = i - 1
            while above >= 0, lines[above].trimmingCharacters(in: .whitespaces).hasPrefix("@") { above -= 1 }
            let explained = above >= 0 && lines[above].trimmingCharacters(in: .whitespaces).hasPrefix("///")
            found.append(Declaration(line: i + 1, text: trimmed, isExplained: explained))
        }
        return found
    }

    @Test func theScanFindsStaticsAndTheirComments() {
        let source = """
            /// A comment that mentions nonisolated(unsafe) is no declaration.
            enum E {
                nonisolated(unsafe) static var bare = 0
                /// Why it cannot live in a context.
                @usableFromInline
                nonisolated(unsafe) static var explained = 0
                func f() { nonisolated(unsafe) let local = self }
            }
            nonisolated(unsafe) var global = 0
            """
        #expect(Self.unsafeStatics(in: source) == [
            Declaration(line: 3, text: "nonisolated(unsafe) static var bare = 0", isExplained: false),
            Declaration(line: 6, text: "nonisolated(unsafe) static var explained = 0", isExplained: true),
            Declaration(line: 9, text: "nonisolated(unsafe) var global = 0", isExplained: false),
        ])
    }

    @Test func fewStaticsEachWithItsReason() throws {
        let sources = Ipcplay.packageRoot.appendingPathComponent("Sources")
        let files = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        var all: [String] = []
        var unexplained: [String] = []
        for case let url as URL in files where url.pathExtension == "swift" {
            let name = url.path.dropFirst(sources.path.count + 1)
            for d in Self.unsafeStatics(in: try String(contentsOf: url, encoding: .utf8)) {
                all.append("\(name):\(d.line): \(d.text)")
                if !d.isExplained { unexplained.append("\(name):\(d.line): \(d.text)") }
            }
        }
        #expect(!all.isEmpty, "no static found in \(sources.path): the scan is broken")
        #expect(all.count <= Self.allowed,
                "\(all.count) nonisolated(unsafe) statics, at most \(Self.allowed): move state into an execution context\n\(all.sorted().joined(separator: "\n"))")
        #expect(unexplained.isEmpty,
                "statics without a doc comment saying why they cannot live in a context:\n\(unexplained.sorted().joined(separator: "\n"))")
    }
}
