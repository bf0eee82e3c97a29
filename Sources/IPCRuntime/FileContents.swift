import Glibc

/// The whole content of the file at `path` (a report, a trace, a test's output, a script),
/// or nil when it cannot be opened. Reading stops once more than `limit` bytes are in (the
/// caller sees a count over its limit, and nothing larger was read).
public func fileContents(_ path: String, limit: Int = Int.max) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while data.count <= limit {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        data += buf[..<n]
    }
    return data
}

/// The file at `path` as UTF-8 text, or nil when it cannot be opened.
public func fileText(_ path: String) -> String? {
    fileContents(path).map { String(decoding: $0, as: UTF8.self) }
}
