import Glibc
import IPCCore

/// A schedule in one shell-safe word, `s2.<script>.<decisions>`: the decisions of a run
/// at every step where more than one process could go, each named by the process and its
/// call on its object (not a bare index), so that a token survives small edits of the
/// script; the seed of every process's `math.random`; and a short hash of the script,
/// to warn when it changed since.
///
/// The decisions are compressed: each is one entry of a table of (process, call, object),
/// and the sequence of entries is coded as literals and copies of earlier stretches (a
/// run of one decision is a copy at distance 1; a loop's decisions repeat at the loop's
/// period), then base64url. `s1.` tokens (counted runs of one entry) are still read.
///
/// Reading is defensive: a token comes from the command line or a file, and a bad one is
/// an error, never a crash. Every count is checked against the bytes that are left (a
/// table entry takes at least one byte) or against `maxDecisions` before anything of that
/// size is allocated.
public struct ReplayToken: Equatable, Sendable {
    public var scriptHash: String
    public var seed: UInt64
    public var decisions: [ScheduleLog.Decision]

    public init(scriptHash: String, seed: UInt64, decisions: [ScheduleLog.Decision]) {
        self.scriptHash = scriptHash
        self.seed = seed
        self.decisions = decisions
    }

    static let prefix = "s2"
    static let previousPrefix = "s1"

    /// The longest token read (a file's or an argument's): far more than the decisions of
    /// the largest run the log can hold.
    public static let maxTextLength = 32 << 20

    /// The short hash of a script's bytes ("" when it cannot be read).
    public static func hash(ofScript path: String) -> String {
        guard let bytes = fileContents(path) else { return "" }
        return hash(bytes)
    }

    /// FNV-1a folded to 32 bits, as 8 hex digits.
    static func hash<C: Collection<UInt8>>(_ bytes: C) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let folded = UInt32(truncatingIfNeeded: h ^ (h >> 32))
        let hex = String(folded, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    // MARK: - Writing

    /// The token: a table of (process, call, object), then the decisions as entries of
    /// it, literals and copies; base64url.
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
        var names: [String: Int] = [:], nameList: [String] = []
        var ops: [String: Int] = [:], opList: [(site: String, object: String)] = []
        var kinds: [Int: Int] = [:], kindList: [(name: Int, op: Int)] = []
        var sequence: [Int] = []
        sequence.reserveCapacity(decisions.count)
        for d in decisions {
            let name = names[d.processName] ?? { nameList.append(d.processName); names[d.processName] = nameList.count - 1; return nameList.count - 1 }()
            let siteName = d.site?.name ?? ""
            let key = siteName + "\u{0}" + d.objectName
            let op = ops[key] ?? { opList.append((siteName, d.objectName)); ops[key] = opList.count - 1; return opList.count - 1 }()
            let kindKey = name << 32 | op
            let kind = kinds[kindKey] ?? { kindList.append((name, op)); kinds[kindKey] = kindList.count - 1; return kindList.count - 1 }()
            sequence.append(kind)
        }
        varint(seed)
        varint(UInt64(nameList.count))
        for n in nameList { string(n) }
        varint(UInt64(opList.count))
        for o in opList {
            string(o.site)
            string(o.object)
        }
        varint(UInt64(kindList.count))
        for k in kindList {
            varint(UInt64(k.name))
            varint(UInt64(k.op))
        }
        varint(UInt64(sequence.count))
        for instruction in Self.compress(sequence) {
            switch instruction {
            case .literal(let kind):
                varint(UInt64(kind) << 1)
            case .copy(let distance, let length):
                varint(UInt64(length - Self.shortestCopy) << 1 | 1)
                varint(UInt64(distance - 1))
            }
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

    enum Instruction: Equatable { case literal(Int), copy(distance: Int, length: Int) }

    /// Copies shorter than this cost more than literals.
    static let shortestCopy = 2

    /// LZ77 over the entries: at each position the longest earlier match among the last
    /// few places its next three entries occurred (and the previous entry, for runs).
    static func compress(_ sequence: [Int]) -> [Instruction] {
        var out: [Instruction] = []
        var heads: [Int: Int] = [:]  // three entries -> the last position they started at
        var previous = [Int](repeating: -1, count: sequence.count)  // the position before, same three
        func key(_ i: Int) -> Int? {
            guard i + 2 < sequence.count else { return nil }
            return (sequence[i] &* 0x9e37_79b9) ^ (sequence[i + 1] &* 0x85eb_ca6b) ^ (sequence[i + 2] &* 0xc2b2_ae35) ^ (sequence[i + 2] << 40)
        }
        func insert(_ i: Int) {
            guard let k = key(i) else { return }
            previous[i] = heads[k] ?? -1
            heads[k] = i
        }
        func matchLength(_ from: Int, _ at: Int) -> Int {
            var n = 0
            while at + n < sequence.count && sequence[from + n] == sequence[at + n] { n += 1 }
            return n
        }
        var i = 0
        while i < sequence.count {
            var best = (distance: 0, length: 0)
            if i > 0 {
                let n = matchLength(i - 1, i)
                if n > best.length { best = (1, n) }
            }
            if let k = key(i) {
                var candidate = heads[k] ?? -1
                var tries = 0
                while candidate >= 0 && tries < 32 && best.length < 1 << 16 {
                    let n = matchLength(candidate, i)
                    if n > best.length { best = (i - candidate, n) }
                    candidate = previous[candidate]
                    tries += 1
                }
            }
            if best.length >= shortestCopy + (best.distance > 127 ? 1 : 0) {
                out.append(.copy(distance: best.distance, length: best.length))
                for j in i..<(i + best.length) { insert(j) }
                i += best.length
            } else {
                out.append(.literal(sequence[i]))
                insert(i)
                i += 1
            }
        }
        return out
    }

    // MARK: - Reading

    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads a token of at most `maxDecisions` decisions (a run follows at most one per
    /// step). With `resolvingCalls`, every call it names must be a call of this ipcplay;
    /// without, the calls are left unnamed (to check a token before the script declares
    /// its calls).
    public init(parsing token: String, maxDecisions: Int, resolvingCalls: Bool = true) throws(Malformed) {
        guard token.utf8.count <= Self.maxTextLength else {
            throw Malformed(description: "not a replay token (longer than \(Self.maxTextLength >> 20) MiB)")
        }
        let parts = token.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == Self.prefix || parts[0] == Self.previousPrefix else {
            throw Malformed(description: "not a replay token (it starts with \(Self.prefix). and has three parts)")
        }
        guard parts[1].utf8.count <= 16 else { throw Malformed(description: "not a replay token (bad script hash)") }
        guard let bytes = Base64URL.decode(parts[2]) else { throw Malformed(description: "not a replay token (bad encoding)") }
        var reader = Reader(bytes: bytes)
        scriptHash = parts[1] == "0" ? "" : String(parts[1])
        seed = try reader.varint()
        // The tables: every entry takes at least one byte (a name) or two (a call, an
        // entry), and each is used by a decision, so no count exceeds the bytes left or
        // the decisions allowed.
        var names: [String] = []
        for _ in 0..<(try reader.count { min($0, maxDecisions) }) { names.append(try reader.string()) }
        var ops: [(site: CallSite?, object: String)] = []
        for _ in 0..<(try reader.count { min($0 / 2, maxDecisions) }) {
            let siteName = try reader.string()
            let object = try reader.string()
            var site: CallSite?
            if resolvingCalls {
                guard let named = CallSite.named(siteName) else {
                    throw Malformed(description: "the token names a call this ipcplay does not have: \(siteName.prefix(64))")
                }
                site = named
            }
            ops.append((site, object))
        }
        var kinds: [ScheduleLog.Decision] = []
        for _ in 0..<(try reader.count { min($0 / 2, maxDecisions) }) {
            let name = try reader.index(below: names.count)
            let op = try reader.index(below: ops.count)
            kinds.append(ScheduleLog.Decision(process: nil, processName: names[name], site: ops[op].site, objectName: ops[op].object))
        }
        var sequence: [Int32] = []
        if parts[0] == Self.previousPrefix {
            // s1: counted runs of one entry.
            for _ in 0..<(try reader.count { $0 }) {
                let word = try reader.varint()
                let kind = try reader.checkedIndex(word >> 1, below: kinds.count)
                let n = word & 1 == 1 ? try reader.varint() : 1
                guard n <= UInt64(maxDecisions - sequence.count) else { throw Self.tooMany(maxDecisions) }
                sequence += repeatElement(Int32(kind), count: Int(n))
            }
        } else {
            let total = try reader.varint()
            guard total <= UInt64(maxDecisions) else { throw Self.tooMany(maxDecisions, holding: total) }
            sequence.reserveCapacity(Int(total))
            while sequence.count < Int(total) {
                let word = try reader.varint()
                if word & 1 == 0 {
                    sequence.append(Int32(try reader.checkedIndex(word >> 1, below: kinds.count)))
                    continue
                }
                let left = Int(total) - sequence.count
                guard word >> 1 <= UInt64(left), Int(word >> 1) + Self.shortestCopy <= left else {
                    throw Malformed(description: "not a replay token (a copy past its end)")
                }
                let length = Int(word >> 1) + Self.shortestCopy
                let distance = try reader.varint() + 1
                guard distance <= UInt64(sequence.count) else { throw Malformed(description: "not a replay token (a copy from before its start)") }
                let from = sequence.count - Int(distance)
                for j in 0..<length { sequence.append(sequence[from + j]) }
            }
        }
        var decoded = sequence.map { kinds[Int($0)] }
        // Kills (--kill), when there are any: which decisions are kills, and before which
        // step of their process (each entry takes at least two bytes).
        if reader.left > 0 {
            for _ in 0..<(try reader.count { min($0 / 2, decoded.count) }) {
                let at = try reader.index(below: decoded.count)
                decoded[at].killBeforeStep = try reader.count { _ in Int(UInt32.max) }
            }
        }
        guard reader.left == 0 else { throw Malformed(description: "not a replay token (bytes left over)") }
        decisions = decoded
    }

    static func tooMany(_ limit: Int, holding total: UInt64? = nil) -> Malformed {
        Malformed(description: "the token holds \(total.map { "\($0) decisions" } ?? "more decisions"), more than a run of --max-steps \(limit) can take (pass a larger --max-steps)")
    }

    /// Checked reading of a token's bytes.
    struct Reader {
        let bytes: [UInt8]
        var i = 0

        var left: Int { bytes.count - i }

        static let cut = Malformed(description: "not a replay token (cut short)")
        static let sizes = Malformed(description: "not a replay token (impossible sizes)")

        mutating func varint() throws(Malformed) -> UInt64 {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < bytes.count else { throw Self.cut }
                guard shift < 64 else { throw Self.sizes }
                let b = bytes[i]
                i += 1
                let bits = UInt64(b & 0x7f)
                guard shift < 63 || bits <= 1 else { throw Self.sizes }
                v |= bits << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
        }

        /// A count of at most `limit(bytes left after it)`.
        mutating func count(atMost limit: (Int) -> Int) throws(Malformed) -> Int {
            let v = try varint()
            guard v <= UInt64(max(limit(left), 0)) else { throw Self.sizes }
            return Int(v)
        }

        /// An index into a table of `size` entries.
        mutating func index(below size: Int) throws(Malformed) -> Int {
            try checkedIndex(varint(), below: size)
        }

        func checkedIndex(_ v: UInt64, below size: Int) throws(Malformed) -> Int {
            guard v < UInt64(max(size, 0)) else { throw Self.sizes }
            return Int(v)
        }

        mutating func string() throws(Malformed) -> String {
            let length = try varint()
            guard length <= UInt64(left) else { throw Self.cut }
            let n = Int(length)
            defer { i += n }
            return String(decoding: bytes[i..<(i + n)], as: UTF8.self)
        }
    }
}

/// base64url without padding (RFC 4648 §5): shell-safe.
enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
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

    static func decode<S: StringProtocol>(_ s: S) -> [UInt8]? {
        let text = Array(s.utf8)
        guard text.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var i = 0
        while i < text.count {
            let n = min(4, text.count - i)
            var v: UInt32 = 0
            for k in 0..<4 {
                var digit: UInt32 = 0
                if k < n {
                    let d = values[Int(text[i + k])]
                    guard d >= 0 else { return nil }
                    digit = UInt32(d)
                }
                v = v << 6 | digit
            }
            out.append(UInt8(v >> 16 & 255))
            if n > 2 { out.append(UInt8(v >> 8 & 255)) }
            if n > 3 { out.append(UInt8(v & 255)) }
            i += 4
        }
        return out
    }
}

// MARK: - Long tokens live in files

extension ReplayToken {
    /// Tokens longer than this go to a file, and the replay line names the file
    /// (`ipcplay replay @FILE SCRIPT`): a line stays short enough to read, to paste and to
    /// pass as an argument (Linux refuses one argument past 128 KiB).
    public static let longestInline = 2000

    /// Where a long token is written: `$TMPDIR` (else /tmp), named by the token's own
    /// hash, so the same schedule always gets the same file and nothing else is touched.
    public static func filePath(for text: String, directory: String? = nil) -> String {
        var dir = directory ?? getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        if dir.isEmpty { dir = "/tmp" }
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        return "\(dir)/ipcplay-replay-\(hash(text.utf8))\(hash(text.utf8.reversed())).token"
    }

    /// Writes `text` to `path` whole or not at all: to a new file beside it (never
    /// through a link someone left there), then renamed over it.
    public static func write(_ text: String, to path: String) throws(Malformed) {
        let temporary = "\(path).\(ProcessIdentity.pid).new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Malformed(description: "cannot write \(temporary): \(Syscall.lastError)") }
        let written = Syscall.writeAll(fd, text + "\n")
        close(fd)
        guard written, rename(temporary, path) == 0 else {
            let reason = "\(Syscall.lastError)"
            unlink(temporary)
            throw Malformed(description: "cannot write \(path): \(reason)")
        }
    }

    /// The token an argument names: the argument itself, or with `@FILE`, that file's
    /// contents (at most `maxTextLength` bytes, surrounding white space ignored).
    public static func text(ofArgument argument: String) throws(Malformed) -> String {
        guard argument.hasPrefix("@") else { return argument }
        let path = String(argument.dropFirst())
        guard let data = fileContents(path, limit: maxTextLength) else {
            throw Malformed(description: "cannot read the token file \(path): \(Syscall.lastError)")
        }
        if data.count > maxTextLength { throw Malformed(description: "not a replay token (\(path) is longer than \(maxTextLength >> 20) MiB)") }
        let isSpace: (UInt8) -> Bool = { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }
        let start = data.firstIndex { !isSpace($0) } ?? data.count
        let end = (data.lastIndex { !isSpace($0) } ?? -1) + 1
        return String(decoding: data[start..<max(start, end)], as: UTF8.self)
    }
}
