extension String {
    /// The characters XML text and attributes must escape (a timeline's SVG, a JUnit report).
    public static let xmlEntities: [Unicode.Scalar: String] = ["&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"]

    /// This text with every scalar found in `table` replaced by its entry, and every other
    /// scalar replaced by what `other` returns for it (an empty string drops it; nil keeps it).
    public func escaped(_ table: [Unicode.Scalar: String], other: (Unicode.Scalar) -> String? = { _ in nil }) -> String {
        var out = ""
        for u in unicodeScalars {
            if let replacement = table[u] ?? other(u) { out += replacement } else { out.unicodeScalars.append(u) }
        }
        return out
    }
}
