import Glibc

/// What a terminal on a descriptor can show: its width (the real one, from the
/// terminal, as `TIOCGWINSZ` tells it; else `$COLUMNS`; else 80) and whether to colour
/// (a terminal, `NO_COLOR` unset or empty, `TERM` not `dumb`: no-color.org).
public struct Terminal: Sendable {
    public let columns: Int
    public let colour: Bool

    public init(fd: Int32) {
        var size = winsize()
        if isatty(fd) != 0, ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 {
            columns = Int(size.ws_col)
        } else if let c = getenv("COLUMNS").flatMap({ Int(String(cString: $0)) }), c > 0 {
            columns = c
        } else {
            columns = 80
        }
        let noColor = getenv("NO_COLOR").map { String(cString: $0) } ?? ""
        let term = getenv("TERM").map { String(cString: $0) } ?? ""
        colour = isatty(fd) != 0 && noColor.isEmpty && term != "dumb"
    }

    public static var standardOutput: Terminal { Terminal(fd: 1) }
}
