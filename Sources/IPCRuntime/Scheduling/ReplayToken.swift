import Glibc
import IPCCore

/// A schedule in one shell-safe word, `s1.<script>.<decisions>`: the decisions of a run
/// at every step where more than one process could go, each named by the process and its
/// call on its object (not a bare index), so that a token survives small edits of the
/// script; the seed of every process's `math.random`; and a short hash of the script,
/// to warn when it changed since.
public struct ReplayToken: Equatable, Sendable {
    public var scriptHash: String
    public var seed: UInt64
    public var decisions: [ScheduleLog.Decision]

    public init(scriptHash: String, seed: UInt64, decisions: [ScheduleLog.Decision]) {
        self.scriptHash = scriptHash
        self.seed = seed
        self.decisions = decisions
    }

    static let prefix = "s1"

    /// The short hash of a script's bytes ("" when it cannot be read).
    public static func hash(ofScript path: String) -> String {
        guard let bytes = fileContents(path) else { return "" }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let folded = UInt32(truncatingIfNeeded: h ^ (h >> 32))
        let hex = String(folded, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    // MARK: - Writing

    /// The token: each decision is one of a table of (process, call, object), named;
    /// repeats of one decision are counted; base64url.
    public var text: String {
        var out: [UInt8] = []
        func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        func string(_ s: String) {
            varint(UInt64(s.utf8.count))
            out += Array(s.utf8)
        }
        var names: [String] = []
        var ops: [String] = []  // "site\u{0}object"
        var kinds: [(name: Int, op: Int)] = []
        var runs: [(kind: Int, count: Int)] = []
        for d in decisions {
            let name = names.firstIndex(of: d.processName) ?? { names.append(d.processName); return names.count - 1 }()
            let key = (d.site?.name ?? "") + "\u{0}" + d.objectName
            let op = ops.firstIndex(of: key) ?? { ops.append(key); return ops.count - 1 }()
            let kind = kinds.firstIndex { $0 == (name, op) } ?? { kinds.append((name, op)); return kinds.count - 1 }()
            if let last = runs.last, last.kind == kind {
                runs[runs.count - 1].count += 1
            } else {
                runs.append((kind, 1))
            }
        }
        varint(seed)
        varint(UInt64(names.count))
        for n in names { string(n) }
        varint(UInt64(ops.count))
        for o in ops {
            let parts = o.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
            string(String(parts[0]))
            string(parts.count > 1 ? String(parts[1]) : "")
        }
        varint(UInt64(kinds.count))
        for k in kinds {
            varint(UInt64(k.name))
            varint(UInt64(k.op))
        }
        varint(UInt64(runs.count))
        for r in runs {
            // The lowest bit says whether a count follows.
            varint(UInt64(r.kind) << 1 | (r.count > 1 ? 1 : 0))
            if r.count > 1 { varint(UInt64(r.count)) }
        }
        // Kills (--kill), when there are any: which decisions are kills, and before which
        // step of their process. A token without them ends before.
        let kills = decisions.indices.filter { decisions[$0].isKill }
        if !kills.isEmpty {
            varint(UInt64(kills.count))
            for i in kills {
                varint(UInt64(i))
                varint(UInt64(decisions[i].killBeforeStep!))
            }
        }
        return "\(Self.prefix).\(scriptHash.isEmpty ? "0" : scriptHash).\(Base64URL.encode(out))"
    }

    // MARK: - Reading

    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads a token; every call it names must be a call of this ipcplay.
    public init(parsing token: String) throws(Malformed) {
        let parts = token.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == Self.prefix else {
            throw Malformed(description: "not a replay token (it starts with \(Self.prefix). and has three parts)")
        }
        guard let bytes = Base64URL.decode(String(parts[2])) else { throw Malformed(description: "not a replay token (bad encoding)") }
        var i = 0
        func varint() throws(Malformed) -> UInt64 {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < bytes.count, shift < 64 else { throw Malformed(description: "a replay token cut short") }
                let b = bytes[i]
                i += 1
                v |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
        }
        func count(_ limit: Int) throws(Malformed) -> Int {
            let v = try varint()
            guard v <= UInt64(limit) else { throw Malformed(description: "a replay token with impossible sizes") }
            return Int(v)
        }
        func string() throws(Malformed) -> String {
            let n = try count(bytes.count - i)
            defer { i += n }
            return String(decoding: bytes[i..<(i + n)], as: UTF8.self)
        }
        scriptHash = parts[1] == "0" ? "" : String(parts[1])
        seed = try varint()
        var names: [String] = []
        for _ in 0..<(try count(bytes.count)) { names.append(try string()) }
        var ops: [(site: CallSite?, object: String)] = []
        for _ in 0..<(try count(bytes.count)) {
            let siteName = try string()
            let object = try string()
            guard let site = CallSite.named(siteName) else {
                throw Malformed(description: "the token names a call this ipcplay does not have: \(siteName)")
            }
            ops.append((site, object))
        }
        var kinds: [ScheduleLog.Decision] = []
        for _ in 0..<(try count(bytes.count)) {
            let name = try count(names.count - 1)
            let op = try count(ops.count - 1)
            kinds.append(ScheduleLog.Decision(process: nil, processName: names[name], site: ops[op].site, objectName: ops[op].object))
        }
        var decisions: [ScheduleLog.Decision] = []
        for _ in 0..<(try count(bytes.count)) {
            let word = try varint()
            guard word >> 1 < UInt64(kinds.count) else { throw Malformed(description: "a replay token with impossible sizes") }
            let n = word & 1 == 1 ? try count(10_000_000) : 1
            decisions += Array(repeating: kinds[Int(word >> 1)], count: n)
        }
        if i < bytes.count {
            for _ in 0..<(try count(decisions.count)) {
                let at = try count(decisions.count - 1)
                decisions[at].killBeforeStep = try count(Int(UInt32.max))
            }
        }
        guard i == bytes.count else { throw Malformed(description: "a replay token with bytes left over") }
        self.decisions = decisions
    }
}

/// base64url without padding (RFC 4648 §5): shell-safe.
enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i]), b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            if i + 1 < bytes.count { out.append(alphabet[Int(v >> 6 & 63)]) }
            if i + 2 < bytes.count { out.append(alphabet[Int(v & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ s: String) -> [UInt8]? {
        var values: [UInt32] = []
        for c in s.utf8 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            values.append(UInt32(v))
        }
        guard values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < values.count {
            let n = min(4, values.count - i)
            var v: UInt32 = 0
            for k in 0..<4 { v = v << 6 | (k < n ? values[i + k] : 0) }
            out.append(UInt8(v >> 16 & 255))
            if n > 2 { out.append(UInt8(v >> 8 & 255)) }
            if n > 3 { out.append(UInt8(v & 255)) }
            i += 4
        }
        return out
    }
}
