import Glibc
import IPCCore

/// `--timeline`: the run as a swim-lane picture, drawn from its trace when it ends. One
/// column per process, time going down; each IPC call in its lane with its object; a call
/// that blocked is a bar from where it started to where it returned; a message is an
/// arrow from the lane that sent it to the lane that took it.
public struct Timeline {
    struct Lane { var pid: Int; var name: String; var order: Int }
    struct Call {
        var pid: Int
        var name: String
        var object: String
        var value: String?
        var result: String?
        var start: Double  // microseconds
        var end: Double
        var waited: Double
        var flowIn: UInt64 = 0
        var flowOut: UInt64 = 0
        /// Under a controlled scheduler: the steps made when it returned.
        var step: Int?
    }
    struct Mark { var pid: Int; var text: String; var time: Double; var step: Int? = nil }

    var lanes: [Lane] = []
    var calls: [Call] = []
    var marks: [Mark] = []
    /// What the left column counts: seconds (a run's trace) or steps (a schedule).
    var clock: Clock = .seconds
    /// Rows shown with a marker (a schedule's critical pair), by the time they start.
    var marked: Set<Double> = []

    /// `steps`: a schedule's rows, by step index; `traceSteps`: a controlled run's trace,
    /// whose events carry the step they were made at.
    enum Clock { case seconds, steps, traceSteps }

    /// A schedule as lanes: one row per step, one column per process (`explore`'s
    /// interleaving). `rows` are the steps to show, by index; `elided` rows stand for the
    /// steps left out; `marked` steps get a marker.
    public init(schedule steps: [(process: Int, call: String, object: String, location: String)], names: [String],
                rows: [Int], elided: [(after: Int, count: Int)] = [], marked: Set<Int> = []) {
        clock = .steps
        lanes = names.enumerated().map { Lane(pid: $0.offset, name: $0.element, order: $0.offset) }
        for i in rows where i < steps.count {
            let s = steps[i]
            calls.append(Call(pid: s.process, name: s.call, object: s.object, value: nil,
                              result: s.location.isEmpty ? nil : "@" + s.location, start: Double(i + 1), end: Double(i + 1), waited: 0))
        }
        for e in elided {
            let lane = e.after < steps.count ? steps[e.after].process : 0
            marks.append(Mark(pid: lane, text: "⋮ \(e.count) step\(e.count == 1 ? "" : "s")", time: Double(e.after + 1) + 0.5))
        }
        self.marked = Set(marked.map { Double($0 + 1) })
    }

    // MARK: - Reading a run's events

    /// The picture of the events recorded in the file at `path` (`RunOptions.eventsPath`).
    public init(eventsPath path: String) { self.init(events: TraceEvent.read(path: path)) }

    /// The picture of a run from the events it recorded (`TraceEvent`, written by `Trace`
    /// for `--timeline`).
    public init(events: [TraceEvent]) {
        var laneByPid: [Int: Lane] = [:]
        func micros(_ ns: Int64) -> Double { Double(ns) / 1000 }
        for e in events {
            let pid = Int(e.pid)
            switch e.kind {
            case .lane:
                laneByPid[pid] = Lane(pid: pid, name: e.name, order: Int(e.index))
            case .call:
                calls.append(Call(pid: pid, name: e.name, object: e.object, value: e.value, result: e.result,
                                  start: micros(e.start), end: micros(e.end), waited: Double(e.waited / 1000),  // whole µs, as the trace says
                                  flowIn: e.flowIn, flowOut: e.flowOut, step: e.step >= 0 ? Int(e.step) : nil))
            case .mark:
                marks.append(Mark(pid: pid, text: e.name, time: micros(e.start), step: e.step >= 0 ? Int(e.step) : nil))
            }
        }
        lanes = laneByPid.values.sorted { ($0.order, $0.pid) < ($1.order, $1.pid) }
        // A controlled run's clock is virtual: its rows are numbered by step.
        if calls.contains(where: { $0.step != nil }) { clock = .traceSteps }
    }

    // MARK: - Rows

    enum Cell { case call(Call), begin(Call), end(Call), mark(Mark) }
    struct Row { var time: Double; var lane: Int; var cell: Cell }

    /// A call that blocked, however briefly, or took long enough to see: shown as a bar
    /// from where it started to where it returned.
    func blocked(_ c: Call) -> Bool { c.waited > 0 || c.end - c.start >= 5000 }

    /// The rows in causal order. A call that took a message is drawn where it returned:
    /// the message was sent before that (its sender's row, drawn where the send started,
    /// comes first), never necessarily before the receive started. At one instant, a
    /// send goes before a receive.
    func rows() -> [Row] {
        let index = Dictionary(uniqueKeysWithValues: lanes.enumerated().map { ($1.pid, $0) })
        var rows: [Row] = []
        for c in calls {
            guard let lane = index[c.pid] else { continue }
            if blocked(c) {
                rows.append(Row(time: c.start, lane: lane, cell: .begin(c)))
                rows.append(Row(time: c.end, lane: lane, cell: .end(c)))
            } else {
                rows.append(Row(time: c.flowIn != 0 ? c.end : c.start, lane: lane, cell: .call(c)))
            }
        }
        for m in marks { if let lane = index[m.pid] { rows.append(Row(time: m.time, lane: lane, cell: .mark(m))) } }
        func receives(_ r: Row) -> Int {
            switch r.cell {
            case .call(let c), .end(let c): return c.flowIn != 0 ? 1 : 0
            default: return 0
            }
        }
        return rows.enumerated().sorted { a, b in
            (a.element.time, receives(a.element), a.offset) < (b.element.time, receives(b.element), b.offset)
        }.map(\.element)
    }

    func short(_ call: String) -> String {
        // "queue:get" -> "get", keeping the object for context.
        call.split(separator: ":").last.map(String.init) ?? call
    }

    func label(_ c: Call, ending: Bool) -> String {
        var text = ending ? "" : short(c.name) + " " + c.object
        if ending {
            text = short(c.name)
            if let v = c.value { text += " " + v } else if let r = c.result { text += " " + r } else { text += " done" }
        } else if !blocked(c), let v = c.value {
            text += " " + v
        } else if !blocked(c), let r = c.result {
            text += " " + r
        }
        return text
    }

    // MARK: - Terminal

    /// One line of the picture as cells, one per terminal column: a scalar each (a
    /// character of several scalars keeps the rest aside), `filler` for the second
    /// column of a wide character; and each cell's colour (a lane, `arrowColour`, or
    /// `noColour`). Writing a cell costs no allocation: a picture is as many lines as
    /// events, each as wide as every lane together.
    struct Cells {
        static let filler = Unicode.Scalar(UInt8(0))
        static let noColour: Int32 = -2, arrowColour: Int32 = -1
        var scalars: [Unicode.Scalar]
        var colours: [Int32]
        var rest: [Int: Substring.UnicodeScalarView] = [:]

        init(width: Int) {
            scalars = [Unicode.Scalar](repeating: " ", count: width)
            colours = [Int32](repeating: Self.noColour, count: width)
        }

        var count: Int { scalars.count }

        subscript(_ k: Int) -> Unicode.Scalar {
            get { scalars[k] }
            set {
                scalars[k] = newValue
                if !rest.isEmpty { rest[k] = nil }
            }
        }
    }

    /// The picture for a terminal `columns` wide (ANSI colours when `colour`).
    public func render(columns: Int = 80, colour: Bool) -> String {
        guard !lanes.isEmpty else { return "(no IPC calls were traced)\n" }
        let timeWidth = 8
        let laneWidth = max(10, (columns - timeWidth) / lanes.count)
        let width = timeWidth + laneWidth * lanes.count
        let palette = ["\u{1B}[36m", "\u{1B}[33m", "\u{1B}[35m", "\u{1B}[32m", "\u{1B}[34m", "\u{1B}[31m"]
        let reset = "\u{1B}[0m", dim = "\u{1B}[2m"

        var out: [UInt8] = []
        // Header: the lane names, shortened to fit.
        var header = Cells(width: width)
        put(clock == .seconds ? "time" : "step", into: &header, at: 0, width: timeWidth)
        for (i, lane) in lanes.enumerated() { put(lane.name, into: &header, at: timeWidth + i * laneWidth, width: laneWidth - 1) }
        if colour { out += "\u{1B}[1m".utf8 }
        write(header, colour: false, into: &out)
        if colour { out += reset.utf8 }
        out += "\n".utf8
        out += String(repeating: "─", count: width).utf8
        out += "\n".utf8

        var open = [Bool](repeating: false, count: lanes.count)  // lanes inside a blocking call
        let origin = calls.map(\.start).min().map { min($0, marks.map(\.time).min() ?? $0) } ?? 0
        let sender = Dictionary(calls.filter { $0.flowOut != 0 }.map { ($0.flowOut, $0.pid) }, uniquingKeysWith: { a, _ in a })
        let laneOf = Dictionary(uniqueKeysWithValues: lanes.enumerated().map { ($1.pid, $0) })
        let bar: Unicode.Scalar = "│", cross: Unicode.Scalar = "┼", dash: Unicode.Scalar = "─"
        for row in rows() {
            var line = Cells(width: width)
            switch clock {
            case .seconds: put(String(format3((row.time - origin) / 1e6)) + "s", into: &line, at: 0, width: timeWidth - 1)
            case .steps:
                if row.time == row.time.rounded() {
                    put((marked.contains(row.time) ? "▶" : " ") + String(Int(row.time)), into: &line, at: 0, width: timeWidth - 1)
                }
            case .traceSteps:
                let step: Int?
                switch row.cell {
                case .call(let c), .end(let c): step = c.step
                case .mark(let m): step = m.step
                case .begin: step = nil
                }
                if let step { put(" " + String(step), into: &line, at: 0, width: timeWidth - 1) }
            }
            for (i, isOpen) in open.enumerated() where isOpen {
                line[timeWidth + i * laneWidth] = bar
                line.colours[timeWidth + i * laneWidth] = Int32(i)
            }
            let x = timeWidth + row.lane * laneWidth
            var text: String
            switch row.cell {
            case .call(let c): text = label(c, ending: false)
            case .begin(let c): text = "┬ " + label(c, ending: false); open[row.lane] = true
            case .end(let c): text = "┴ " + label(c, ending: true); open[row.lane] = false
            case .mark(let m): text = "• " + m.text
            }
            var call: Call?
            if case .call(let c) = row.cell { call = c }
            if case .end(let c) = row.cell { call = c }
            // A message taken here: an arrow from its sender's lane.
            if let c = call, c.flowIn != 0, let from = sender[c.flowIn].flatMap({ laneOf[$0] }), from != row.lane {
                let a = timeWidth + from * laneWidth + 1
                if from < row.lane {
                    for k in a..<(x - 1) { line[k] = line[k] == bar ? cross : dash; line.colours[k] = Cells.arrowColour }
                    line[x - 1] = "▶"
                    line.colours[x - 1] = Cells.arrowColour
                } else {
                    // Right to left: the text goes first, then the arrow back to the sender.
                    let textEnd = x + min(text.reduce(0) { $0 + (Self.isWide($1.unicodeScalars.first!) ? 2 : 1) } + 1, laneWidth - 2)
                    let stop = timeWidth + from * laneWidth
                    if textEnd < stop {
                        line[textEnd] = "◀"
                        line.colours[textEnd] = Cells.arrowColour
                        for k in (textEnd + 1)..<stop { line[k] = line[k] == bar ? cross : dash; line.colours[k] = Cells.arrowColour }
                    }
                }
            }
            put(text, into: &line, at: x, width: laneWidth - (row.lane == lanes.count - 1 ? 0 : 1), keepArrows: true)
            for k in x..<min(width, x + laneWidth) where line.colours[k] == Cells.noColour { line.colours[k] = Int32(row.lane) }
            if colour {
                // The time column is never coloured.
                for k in 0..<min(timeWidth, width) { line.colours[k] = Cells.noColour }
                write(line, colour: true, palette: palette, dim: dim, reset: reset, into: &out)
                out += reset.utf8
            } else {
                write(line, colour: false, into: &out)
            }
            out += "\n".utf8
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `line` as UTF-8, without its trailing spaces; with `colour`, each run of
    /// cells of one colour after its escape sequence.
    func write(_ line: Cells, colour: Bool, palette: [String] = [], dim: String = "", reset: String = "", into out: inout [UInt8]) {
        var end = line.count
        while end > 0 && line.scalars[end - 1] == " " { end -= 1 }
        if !colour && line.rest.isEmpty {
            // The usual line: scalars only.
            out.reserveCapacity(out.count + end)
            for scalar in line.scalars[..<end] where scalar != Cells.filler {
                if scalar.value < 0x80 { out.append(UInt8(scalar.value)) } else { UTF8.encode(scalar) { out.append($0) } }
            }
            return
        }
        let hasRest = !line.rest.isEmpty
        var current: Int32? = nil
        for k in 0..<end {
            let scalar = line.scalars[k]
            if scalar == Cells.filler { continue }
            if colour {
                let c = line.colours[k]
                if current != c {
                    out += reset.utf8
                    if c == Cells.arrowColour {
                        out += "\u{1B}[1;37m".utf8
                    } else if c >= 0 {
                        if scalar == "│" { out += dim.utf8 }
                        out += palette[Int(c) % palette.count].utf8
                    }
                    current = c
                }
            }
            if scalar.value < 0x80 {
                out.append(UInt8(scalar.value))
            } else {
                UTF8.encode(scalar) { out.append($0) }
            }
            if hasRest, let more = line.rest[k] { for s in more { UTF8.encode(s) { out.append($0) } } }
        }
    }

    /// Writes `s` into cells from `x`, at most `width` columns (a character that takes two
    /// terminal columns, as CJK does, fills two cells: the second stays empty).
    func put(_ s: String, into line: inout Cells, at x: Int, width: Int, keepArrows: Bool = false) {
        var cells: [(Unicode.Scalar, Substring.UnicodeScalarView?)] = []
        for ch in s {
            let scalars = ch.unicodeScalars
            let first = scalars.first!
            let more = scalars.count > 1 ? Substring(String(ch)).unicodeScalars.dropFirst() : nil
            cells.append((first, more))
            if Self.isWide(first) { cells.append((Cells.filler, nil)) }
        }
        if cells.count > width {
            // Cut to fit, never half a wide character, and mark the cut.
            var keep = max(width - 1, 0)
            if keep > 0 && keep < cells.count && cells[keep].0 == Cells.filler { keep -= 1 }
            cells = Array(cells.prefix(keep)) + [("…", nil)]
        }
        for (k, cell) in cells.enumerated() where x + k < line.count {
            if keepArrows && line[x + k] == "◀" { break }
            line[x + k] = cell.0
            if let more = cell.1 { line.rest[x + k] = more }
        }
    }

    /// East Asian wide and fullwidth ranges (two terminal columns).
    static func isWide(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
             0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
             0xFFE0...0xFFE6, 0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD:
            return true
        default:
            return false
        }
    }

    func format3(_ d: Double) -> String {
        let ms = Int((d * 1000).rounded())
        let frac = ms % 1000
        return "\(ms / 1000).\(frac < 10 ? "00" : frac < 100 ? "0" : "")\(frac)"
    }

    // MARK: - SVG

    /// The same picture as an SVG document, time to scale.
    public func svg() -> String {
        let laneWidth = 220.0, left = 70.0, top = 50.0
        let start = (calls.map(\.start) + marks.map(\.time)).min() ?? 0
        let end = (calls.map(\.end) + marks.map(\.time)).max() ?? start + 1
        let span = max(end - start, 1)
        let height = max(400.0, min(4000.0, Double(calls.count + marks.count) * 16))
        func y(_ t: Double) -> Double { top + (t - start) / span * height }
        let width = left + laneWidth * Double(max(lanes.count, 1)) + 20
        let colours = ["#1f77b4", "#ff7f0e", "#9467bd", "#2ca02c", "#d62728", "#17becf"]
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(top + height + 40))\" font-family=\"monospace\" font-size=\"11\">\n"
        s += "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs>\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        let index = Dictionary(uniqueKeysWithValues: lanes.enumerated().map { ($1.pid, $0) })
        func x(_ lane: Int) -> Double { left + laneWidth * Double(lane) + 10 }
        for (i, lane) in lanes.enumerated() {
            s += "<text x=\"\(x(i))\" y=\"30\" font-weight=\"bold\" fill=\"\(colours[i % colours.count])\">\(xml(lane.name))</text>\n"
            s += "<line x1=\"\(x(i))\" y1=\"\(top)\" x2=\"\(x(i))\" y2=\"\(top + height)\" stroke=\"#ddd\"/>\n"
        }
        for tick in 0...4 {
            let t = start + span * Double(tick) / 4
            s += "<text x=\"5\" y=\"\(f(y(t)) )\" fill=\"#888\">\(format3((t - start) / 1e6))s</text>\n"
        }
        let sender = Dictionary(calls.filter { $0.flowOut != 0 }.map { ($0.flowOut, $0) }, uniquingKeysWith: { a, _ in a })
        for c in calls {
            guard let lane = index[c.pid] else { continue }
            let colour = colours[lane % colours.count]
            let y0 = y(c.start), y1 = max(y(c.end), y(c.start) + 2)
            s += "<rect x=\"\(x(lane) - 3)\" y=\"\(f(y0))\" width=\"6\" height=\"\(f(y1 - y0))\" fill=\"\(colour)\" opacity=\"\(blocked(c) ? "0.35" : "0.9")\"><title>\(xml(c.name + " " + c.object))</title></rect>\n"
            s += "<text x=\"\(x(lane) + 8)\" y=\"\(f(y0 + 4))\" fill=\"\(colour)\">\(xml(label(c, ending: false)))</text>\n"
            if c.flowIn != 0, let from = sender[c.flowIn], let fromLane = index[from.pid] {
                // From the send to where the receive returned with it (never back in time).
                let ys = y((from.start + from.end) / 2), yr = max(y(c.end), ys)
                s += "<line x1=\"\(x(fromLane))\" y1=\"\(f(ys))\" x2=\"\(x(lane))\" y2=\"\(f(yr))\" stroke=\"#333\" stroke-width=\"1\" marker-end=\"url(#arrow)\"/>\n"
            }
        }
        for m in marks {
            guard let lane = index[m.pid] else { continue }
            s += "<circle cx=\"\(x(lane))\" cy=\"\(f(y(m.time)))\" r=\"3\" fill=\"#555\"/>\n"
            s += "<text x=\"\(x(lane) + 8)\" y=\"\(f(y(m.time) + 4))\" fill=\"#555\">\(xml(m.text))</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    func f(_ d: Double) -> String { String(Int((d * 10).rounded()) / 10) + "." + String(abs(Int((d * 10).rounded())) % 10) }

    /// SVG text: control characters but newlines dropped.
    func xml(_ s: String) -> String {
        s.escaped(String.xmlEntities) { $0.value >= 0x20 || $0 == "\n" ? nil : "" }
    }

    /// Lanes and how many calls each has (for tests and summaries).
    public var shape: [(name: String, calls: Int)] {
        lanes.map { lane in (lane.name, calls.filter { $0.pid == lane.pid }.count) }
    }
}

extension String {
    /// In time proportional to the spaces cut (a timeline's line is as wide as its lanes).
    func trimmingTrailingSpaces() -> String {
        let bytes = utf8
        var end = bytes.endIndex
        while end > bytes.startIndex {
            let before = bytes.index(before: end)
            if bytes[before] != UInt8(ascii: " ") { break }
            end = before
        }
        return String(self[..<end])
    }
}
