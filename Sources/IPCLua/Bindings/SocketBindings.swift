import CLua
import CLuaShim
import Glibc
import IPCCore
import IPCRuntime

/// A Unix socket (server, stream or datagram) as Lua sees it.
typealias SocketObject = Boxed<UnixSocket, Void>

extension ObjectKind {
    static let server = declare("server", typeName: "ipc.Server", hasUnknownPeers: true)
    static let socket = declare("socket", typeName: "ipc.Socket", family: .server, hasUnknownPeers: true)
    static let dgram = declare("dgram", typeName: "ipc.Dgram", family: .server, hasUnknownPeers: true)
}

extension Boxed where Core == UnixSocket, Local == Void {
    convenience init(_ socket: UnixSocket, ref: ObjectRef) {
        self.init(socket, ref: ref, local: ()) { x, ref, _ in
            "<\(ref.kind!.label) \(ref.name)\(x.path.map { " " + $0 } ?? "")\(x.isClosed ? " closed" : "")>"
        }
    }

    var socket: UnixSocket { core }

    /// Would a receive (or accept) wait now?
    var nothingToRead: Bool { !socket.isClosed && !socket.isReadable() }
}

enum SocketBindings: Primitive {
    static let serverType: LuaType = {
        var t = LuaType([.server], [
            Method<SocketObject>("accept", takes: ["timeout"], timeout: 2, waits: { $0.nothingToRead }, external: true) { s, o, call throws(LuaRaise) in
                if o.socket.isClosed { return try s.fail("closed") }
                let accepted: UnixSocket?
                do { accepted = try o.socket.accept(deadline: call.deadline) } catch { throw LuaRaise("\(call.name): \(error)") }
                guard let c = accepted else { return try s.fail("timeout") }
                try push(s, c)
                return 1
            },
            Method<SocketObject>("close", takes: []) { _, o, _ in o.socket.close(); return 0 },
            Method<SocketObject>("path", takes: [], access: .read) { s, o, _ throws(LuaRaise) in try pushPath(s, o) },
        ])
        t.closeMethod = "close"
        return t
    }()

    static let socketType: LuaType = {
        var t = LuaType([.socket], [
            Method<SocketObject>("send", takes: ["s"], preview: .argument(2), external: true) { s, o, call throws(LuaRaise) in
                let bytes = try s.stringArgument(2, call.name, "argument 1")
                call.bytes = bytes.count
                switch o.socket.send(bytes) {
                case .sent(let n): s.push(Int64(n)); return 1
                case .closed: return try s.fail("closed")
                }
            },
            Method<SocketObject>("recv", takes: ["n", "timeout"], timeout: 3, waits: { $0.nothingToRead }, preview: .result, external: true) { s, o, call throws(LuaRaise) in
                let n = try s.integerArgument(2, call.name, "n")
                guard n >= 1 && n <= 1 << 30 else { throw LuaRaise("\(call.name): n must be between 1 and 2^30, got \(n)") }
                let buffer = call.buffer
                guard buffer.reserve(Int(n)) else {
                    let note = LuaCodec.limitNote(buffer)
                    buffer.reset()
                    buffer.shrink()
                    throw LuaRaise("\(call.name): not enough memory for \(describeSize(Int(n)))\(note)")
                }
                switch o.socket.receive(upTo: Int(n), into: buffer, deadline: call.deadline) {
                case .data(let got):
                    try s.push(bytes: buffer.base, count: got)
                    call.bytes = got
                    return 1
                case .closed: return try s.fail("closed")
                case .timedOut: return try s.fail("timeout")
                }
            },
            Method<SocketObject>("close", takes: []) { _, o, _ in o.socket.close(); return 0 },
            Method<SocketObject>("send_handle", takes: ["handle"], external: true) { s, o, call throws(LuaRaise) in try sendHandle(s, o, call) },
            Method<SocketObject>("recv_handle", takes: ["timeout"], timeout: 2, waits: { $0.nothingToRead }, external: true) { s, o, call throws(LuaRaise) in
                try recvHandle(s, o, call)
            },
        ])
        t.closeMethod = "close"
        return t
    }()

    static let datagramType: LuaType = {
        var t = LuaType([.dgram], [
            Method<SocketObject>("sendto", takes: ["path", "s"], preview: .argument(3), external: true) { s, o, call throws(LuaRaise) in
                guard let path = s.string(2) else { throw LuaRaise("\(call.name): expected a path, got \(s.typeName(2))") }
                let bytes = try s.stringArgument(3, call.name, "data")
                call.bytes = bytes.count
                let outcome: UnixSocket.SendToOutcome
                do { outcome = try o.socket.send(bytes, to: path) } catch { throw LuaRaise("\(call.name): \(error)") }
                switch outcome {
                case .sent(let n): s.push(Int64(n)); return 1
                case .refused(let why): return try s.fail(why)
                }
            },
            Method<SocketObject>("recvfrom", takes: ["timeout"], timeout: 2, waits: { $0.nothingToRead }, external: true) { s, o, call throws(LuaRaise) in
                let buffer = call.buffer
                switch o.socket.receiveFrom(into: buffer, deadline: call.deadline) {
                case .datagram(let from):
                    try s.push(bytes: buffer.base, count: buffer.count)
                    try s.push(from)
                    call.bytes = buffer.count
                    return 2
                case .timedOut: return try s.fail("timeout")
                case .closed: return try s.fail("closed")
                }
            },
            Method<SocketObject>("close", takes: []) { _, o, _ in o.socket.close(); return 0 },
            Method<SocketObject>("path", takes: [], access: .read) { s, o, _ throws(LuaRaise) in try pushPath(s, o) },
        ])
        t.closeMethod = "close"
        return t
    }()

    static let types = [serverType, socketType, datagramType]

    static func pushPath(_ s: LuaState, _ o: SocketObject) throws(LuaRaise) -> Int32 {
        if let p = o.socket.path { try s.push(p) } else { s.pushNil() }
        return 1
    }

    /// Lists a socket file on the run's board; returns how to remove it.
    static func register(_ path: String) -> (() -> Void)? {
        guard let board = RunBoard.current, let slot = board.registerSocketFile(path: path) else {
            return { _ = unlink(path) }
        }
        return { board.removeSocketFile(slot: slot) }
    }

    static func push(_ s: LuaState, _ socket: UnixSocket, name: String? = nil) throws(LuaRaise) {
        let kind: ObjectKind
        switch socket.kind {
        case .server: kind = .server
        case .stream: kind = .socket
        case .datagram: kind = .dgram
        }
        try s.push(object: SocketObject(socket, ref: s.newObject(kind, name: name)), kind: kind)
    }

    /// `{mode = 0x1B0, name = ...}`: the file mode of a bound socket (addition).
    static func modeOption(_ s: LuaState, _ i: Int32, _ call: String) throws(LuaRaise) -> mode_t? {
        guard s.type(i) == LUA_TTABLE else { return nil }
        defer { s.pop() }
        if try s.rawField(i, "mode") == LUA_TNIL { return nil }
        let m = try s.integerArgument(-1, call, "options.mode")
        guard m >= 0 && m <= 0o7777 else { throw LuaRaise("\(call): options.mode must be between 0 and 0o7777") }
        return mode_t(m)
    }

    // MARK: - Constructors

    static let functions = [
        /// `ipc.unix.listen(path [, backlog=5 [, options]])`
        Function("listen", in: .unix, takes: ["path", "backlog", "options"], options: ["mode"]) { s, call throws(LuaRaise) in
            guard let path = s.string(1) else { throw LuaRaise("\(call.name): expected a path, got \(s.typeName(1))") }
            let backlog = try s.optionalInteger(2, call.name, "backlog", default: 5)
            guard backlog >= 0 && backlog <= 65535 else { throw LuaRaise("\(call.name): backlog must be between 0 and 65535") }
            let mode = try modeOption(s, 3, call.name)
            let name = try s.nameOption(3, call.name)
            try push(s, making(s, call.name) { () throws(IPCError) in
                try UnixSocket.listen(path: path, backlog: Int32(backlog), mode: mode, register: register)
            }, name: name)
            return 1
        },
        /// `ipc.unix.connect(path [, timeout])`: a Socket, or nil and a message.
        Function("connect", in: .unix, takes: ["path", "timeout"], deadline: { s, name throws(LuaRaise) in try s.deadline(2, name) }, external: true) { s, call throws(LuaRaise) in
            guard let path = s.string(1) else { throw LuaRaise("\(call.name): expected a path, got \(s.typeName(1))") }
            let outcome: UnixSocket.ConnectOutcome
            do { outcome = try UnixSocket.connect(path: path, deadline: call.deadline) } catch { throw LuaRaise("\(call.name): \(error)") }
            switch outcome {
            case .connected(let socket): try push(s, socket)
            case .refused(let why): return try s.fail(why)
            }
            return 1
        },
        Function("socketpair", in: .unix, takes: []) { s, call throws(LuaRaise) in
            let (a, b) = try making(s, call.name) { () throws(IPCError) in try UnixSocket.pair() }
            try push(s, a)
            try push(s, b)
            return 2
        },
        /// `ipc.unix.dgram([path [, options]])`
        Function("dgram", in: .unix, takes: ["path", "options"], options: ["mode"]) { s, call throws(LuaRaise) in
            var path: String?
            if !s.isNoneOrNil(1) {
                guard let p = s.string(1) else { throw LuaRaise("\(call.name): expected a path, got \(s.typeName(1))") }
                path = p
            }
            let mode = try modeOption(s, 2, call.name)
            let name = try s.nameOption(2, call.name)
            try push(s, making(s, call.name) { () throws(IPCError) in
                try UnixSocket.datagram(path: path, mode: mode, register: register)
            }, name: name)
            return 1
        },
    ]

    // MARK: - Passing handles (SCM_RIGHTS)

    /// `sock:send_handle(h)`: passes a Connection, a Socket, a server or a dgram socket to
    /// the process at the other end of this stream socket. The sender keeps its copy.
    static func sendHandle(_ s: LuaState, _ o: SocketObject, _ call: CallContext) throws(LuaRaise) -> Int32 {
        var fds: [Int32]
        var message: String
        if let c = s.object(2, .connection, as: ConnectionObject.self) {
            guard !c.connection.isClosed else { throw LuaRaise("\(call.name): the connection is closed") }
            let h = c.connection.handle
            fds = h.descriptors
            message = "ipcplay/1 connection \(h.readDirection) \(h.writeDirection) \(c.ref.name)"
        } else if let x = s.object(2, family: .server, as: SocketObject.self) {
            guard !x.socket.isClosed else { throw LuaRaise("\(call.name): the \(x.ref.name) is closed") }
            fds = [x.socket.fd]
            message = "ipcplay/1 \(x.ref.kind!.label) \(x.socket.path ?? "-") \(x.ref.name)"
        } else {
            throw LuaRaise("\(call.name): expected a connection, socket, server or dgram, got \(s.describe(2))")
        }
        switch o.socket.sendDescriptors(fds, message: Array(message.utf8)) {
        case .sent: s.push(true); return 1
        case .closed: return try s.fail("closed")
        }
    }

    /// `sock:recv_handle([timeout])`: the object sent by `send_handle`.
    static func recvHandle(_ s: LuaState, _ o: SocketObject, _ call: CallContext) throws(LuaRaise) -> Int32 {
        switch o.socket.receiveDescriptors(deadline: call.deadline) {
        case .closed: return try s.fail("closed")
        case .timedOut: return try s.fail("timeout")
        case .received(let fds, let message):
            let words = String(decoding: message, as: UTF8.self).split(separator: " ", maxSplits: 4).map(String.init)
            func reject(_ why: String) -> LuaRaise {
                for fd in fds { Glibc.close(fd) }
                return LuaRaise("\(call.name): \(why)")
            }
            guard words.count >= 4, words[0] == "ipcplay/1" else {
                throw reject("the message received is not a handle sent by send_handle")
            }
            switch words[1] {
            case "connection":
                guard words.count >= 5, let r = Int(words[2]), let w = Int(words[3]) else { throw reject("malformed connection handle") }
                let expected = 1 + (r >= 0 ? 1 : 0) + (w >= 0 ? 1 : 0)
                guard fds.count == expected else { throw reject("expected \(expected) descriptors, got \(fds.count)") }
                let readFD = r >= 0 ? fds[1] : -1
                let writeFD = w >= 0 ? fds[r >= 0 ? 2 : 1] : -1
                let c: Connection
                do {
                    c = try Connection.adopt(channelFD: fds[0], readFD: readFD, writeFD: writeFD, readDirection: r, writeDirection: w)
                } catch { throw LuaRaise("\(call.name): \(error)") }
                try s.push(object: ConnectionObject(c, ref: s.newObject(.connection, name: words[4])), kind: .connection)
            case "socket", "server", "dgram":
                guard fds.count == 1, UnixSocket.isSocket(fds[0]) else { throw reject("expected one socket descriptor") }
                let kind: UnixSocket.Kind = words[1] == "server" ? .server : words[1] == "socket" ? .stream : .datagram
                try push(s, UnixSocket.adopt(fd: fds[0], kind: kind, path: words[2] == "-" ? nil : words[2]), name: words[3])
            default:
                throw reject("unknown handle kind '\(words[1])'")
            }
            return 1
        }
    }
}
