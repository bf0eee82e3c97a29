import CLua
import CLuaShim
import Glibc
import IPCCore
import IPCRuntime

/// A Unix socket (server, stream or datagram) as Lua sees it.
final class SocketObject: LuaDescribable {
    let socket: UnixSocket
    let name: String
    init(_ socket: UnixSocket, name: String) {
        self.socket = socket
        self.name = name
    }
    var luaDescription: String {
        let what: String
        switch socket.kind {
        case .server: what = "server"
        case .stream: what = "socket"
        case .datagram: what = "dgram"
        }
        return "<\(what) \(name)\(socket.path.map { " " + $0 } ?? "")\(socket.isClosed ? " closed" : "")>"
    }
}

enum SocketBindings {
    static let serverType = LuaType(.server, "ipc.Server", label: "server", methods: [
        ("accept", { luaEntry($0, accept) }),
        ("close", { luaEntry($0, close) }),
        ("path", { luaEntry($0, path) }),
    ])
    static let socketType = LuaType(.socket, "ipc.Socket", label: "socket", methods: [
        ("send", { luaEntry($0, send) }),
        ("recv", { luaEntry($0, recv) }),
        ("close", { luaEntry($0, close) }),
        ("send_handle", { luaEntry($0, sendHandle) }),
        ("recv_handle", { luaEntry($0, recvHandle) }),
    ])
    static let datagramType = LuaType(.dgram, "ipc.Dgram", label: "dgram", methods: [
        ("sendto", { luaEntry($0, sendto) }),
        ("recvfrom", { luaEntry($0, recvfrom) }),
        ("close", { luaEntry($0, close) }),
        ("path", { luaEntry($0, path) }),
    ])
    static let types = [serverType, socketType, datagramType]

    static let functions: [(name: String, function: ipc_swift_function)] = [
        ("listen", { luaEntry($0, listen) }),
        ("connect", { luaEntry($0, connect) }),
        ("socketpair", { luaEntry($0, socketpair) }),
        ("dgram", { luaEntry($0, dgram) }),
    ]

    /// Lists a socket file on the run's board; returns how to remove it.
    static func register(_ path: String) -> (() -> Void)? {
        guard let board = RunBoard.current, let slot = board.registerSocketFile(path: path) else {
            return { _ = unlink(path) }
        }
        return { board.removeSocketFile(slot: slot) }
    }

    static func push(_ s: LuaState, _ socket: UnixSocket, name: String? = nil) {
        switch socket.kind {
        case .server: s.push(object: SocketObject(socket, name: name ?? RunBoard.current?.nextName(.server) ?? "server"), type: serverType)
        case .stream: s.push(object: SocketObject(socket, name: name ?? RunBoard.current?.nextName(.socket) ?? "socket"), type: socketType)
        case .datagram: s.push(object: SocketObject(socket, name: name ?? RunBoard.current?.nextName(.datagram) ?? "dgram"), type: datagramType)
        }
    }

    /// `{mode = 0x1B0, name = ...}`: the file mode of a bound socket (addition).
    static func modeOption(_ s: LuaState, _ i: Int32, _ call: String) throws(LuaRaise) -> mode_t? {
        guard s.type(i) == LUA_TTABLE else { return nil }
        defer { s.pop() }
        if s.rawField(i, "mode") == LUA_TNIL { return nil }
        let m = try s.integerArgument(-1, call, "options.mode")
        guard m >= 0 && m <= 0o7777 else { throw LuaRaise("\(call): options.mode must be between 0 and 0o7777") }
        return mode_t(m)
    }

    // MARK: - Constructors

    /// `ipc.unix.listen(path [, backlog=5 [, options]])`
    static func listen(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let call = "ipc.unix.listen"
        guard let path = s.string(1) else { throw LuaRaise("\(call): expected a path, got \(s.typeName(1))") }
        let backlog = try s.optionalInteger(2, call, "backlog", default: 5)
        guard backlog >= 0 && backlog <= 65535 else { throw LuaRaise("\(call): backlog must be between 0 and 65535") }
        let mode = try modeOption(s, 3, call)
        let name = try s.nameOption(3, call)
        push(s, try making(s, call) { () throws(IPCError) in
            try UnixSocket.listen(path: path, backlog: Int32(backlog), mode: mode, register: register)
        }, name: name)
        return 1
    }

    /// `ipc.unix.connect(path [, timeout])`: a Socket, or nil and a message.
    static func connect(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let call = "ipc.unix.connect"
        guard let path = s.string(1) else { throw LuaRaise("\(call): expected a path, got \(s.typeName(1))") }
        let deadline = try s.deadline(2, call)
        Calls.enter(call, path, external: true)
        do {
            switch try UnixSocket.connect(path: path, deadline: deadline) {
            case .connected(let socket): push(s, socket)
            case .refused(let why): return s.fail(why)
            }
        } catch { throw LuaRaise("\(call): \(error)") }
        return 1
    }

    static func socketpair(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let (a, b) = try making(s, "ipc.unix.socketpair") { () throws(IPCError) in try UnixSocket.pair() }
        push(s, a)
        push(s, b)
        return 2
    }

    /// `ipc.unix.dgram([path [, options]])`
    static func dgram(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let call = "ipc.unix.dgram"
        var path: String?
        if !s.isNoneOrNil(1) {
            guard let p = s.string(1) else { throw LuaRaise("\(call): expected a path, got \(s.typeName(1))") }
            path = p
        }
        let mode = try modeOption(s, 2, call)
        let name = try s.nameOption(2, call)
        push(s, try making(s, call) { () throws(IPCError) in
            try UnixSocket.datagram(path: path, mode: mode, register: register)
        }, name: name)
        return 1
    }

    // MARK: - Methods

    static func accept(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(.server, "server:accept", as: SocketObject.self)
        if o.socket.isClosed { return s.fail("closed") }
        let deadline = try s.deadline(2, "server:accept")
        Calls.enter("server:accept", o.name, external: true)
        do {
            let c = try o.socket.accept(deadline: deadline)
            if Trace.isOn { Traced.call(s, "server:accept", o.name, result: c == nil ? "timeout" : nil) }
            guard let c else { return s.fail("timeout") }
            push(s, c)
        } catch { throw LuaRaise("server:accept: \(error)") }
        return 1
    }

    static func send(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(.socket, "socket:send", as: SocketObject.self)
        let bytes = try s.stringArgument(2, "socket:send", "argument 1")
        Calls.enter("socket:send", o.name, external: true)
        let outcome = o.socket.send(bytes)
        if Trace.isOn { Traced.call(s, "socket:send", o.name, value: 2, bytes: bytes.count, result: outcome == .closed ? "closed" : nil) }
        switch outcome {
        case .sent(let n): s.push(Int64(n)); return 1
        case .closed: return s.fail("closed")
        }
    }

    static func recv(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(.socket, "socket:recv", as: SocketObject.self)
        let n = try s.integerArgument(2, "socket:recv", "n")
        guard n >= 1 && n <= 1 << 30 else { throw LuaRaise("socket:recv: n must be between 1 and 2^30, got \(n)") }
        let deadline = try s.deadline(3, "socket:recv")
        Calls.enter("socket:recv", o.name, external: true)
        let buffer = Scratch.receive
        buffer.reset()
        guard buffer.reserve(Int(n)) else {
            buffer.reset()
            throw LuaRaise("socket:recv: not enough memory for \(n) bytes")
        }
        let outcome = o.socket.receive(upTo: Int(n), into: buffer, deadline: deadline)
        if Trace.isOn, case .data = outcome {} else if Trace.isOn {
            Traced.call(s, "socket:recv", o.name, result: outcome == .closed ? "closed" : "timeout")
        }
        switch outcome {
        case .data(let got):
            s.push(bytes: buffer.base, count: got)
            if Trace.isOn { Traced.call(s, "socket:recv", o.name, value: -1, bytes: got) }
            buffer.reset()
            return 1
        case .closed: return s.fail("closed")
        case .timedOut: return s.fail("timeout")
        }
    }

    static func sendto(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(.dgram, "dgram:sendto", as: SocketObject.self)
        guard let path = s.string(2) else { throw LuaRaise("dgram:sendto: expected a path, got \(s.typeName(2))") }
        let bytes = try s.stringArgument(3, "dgram:sendto", "data")
        Calls.enter("dgram:sendto", o.name, external: true)
        do {
            switch try o.socket.send(bytes, to: path) {
            case .sent(let n): s.push(Int64(n)); return 1
            case .refused(let why): return s.fail(why)
            }
        } catch { throw LuaRaise("dgram:sendto: \(error)") }
    }

    static func recvfrom(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(.dgram, "dgram:recvfrom", as: SocketObject.self)
        let deadline = try s.deadline(2, "dgram:recvfrom")
        Calls.enter("dgram:recvfrom", o.name, external: true)
        let buffer = Scratch.receive
        switch o.socket.receiveFrom(into: buffer, deadline: deadline) {
        case .datagram(let from):
            s.push(bytes: buffer.base, count: buffer.count)
            s.push(from)
            buffer.reset()
            return 2
        case .timedOut: return s.fail("timeout")
        case .closed: return s.fail("closed")
        }
    }

    static func close(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(family: .socket, "socket:close", as: SocketObject.self)
        o.socket.close()
        return 0
    }

    static func path(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(family: .socket, "server:path", as: SocketObject.self)
        if let p = o.socket.path { s.push(p) } else { s.pushNil() }
        return 1
    }

    // MARK: - Passing handles (SCM_RIGHTS)

    /// `sock:send_handle(h)`: passes a Connection, a Socket, a server or a dgram socket to
    /// the process at the other end of this stream socket. The sender keeps its copy.
    static func sendHandle(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(.socket, "socket:send_handle", as: SocketObject.self)
        var fds: [Int32]
        var message: String
        if let c = s.object(2, .connection, as: ConnectionObject.self) {
            guard !c.connection.isClosed else { throw LuaRaise("socket:send_handle: the connection is closed") }
            let h = c.connection.handle
            fds = h.descriptors
            message = "ipcplay/1 connection \(h.readDirection) \(h.writeDirection) \(c.name)"
        } else if let x = s.object(2, family: .socket, as: SocketObject.self) {
            guard !x.socket.isClosed else { throw LuaRaise("socket:send_handle: the \(x.name) is closed") }
            fds = [x.socket.fd]
            let kind: String
            switch x.socket.kind {
            case .server: kind = "server"
            case .stream: kind = "socket"
            case .datagram: kind = "dgram"
            }
            message = "ipcplay/1 \(kind) \(x.socket.path ?? "-") \(x.name)"
        } else {
            throw LuaRaise("socket:send_handle: expected a connection, socket, server or dgram, got \(s.describe(2))")
        }
        Calls.enter("socket:send_handle", o.name, external: true)
        switch o.socket.sendDescriptors(fds, message: Array(message.utf8)) {
        case .sent: s.push(true); return 1
        case .closed: return s.fail("closed")
        }
    }

    /// `sock:recv_handle([timeout])`: the object sent by `send_handle`.
    static func recvHandle(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let o = try s.receiver(.socket, "socket:recv_handle", as: SocketObject.self)
        let deadline = try s.deadline(2, "socket:recv_handle")
        Calls.enter("socket:recv_handle", o.name, external: true)
        switch o.socket.receiveDescriptors(deadline: deadline) {
        case .closed: return s.fail("closed")
        case .timedOut: return s.fail("timeout")
        case .received(let fds, let message):
            let words = String(decoding: message, as: UTF8.self).split(separator: " ", maxSplits: 4).map(String.init)
            func reject(_ why: String) -> LuaRaise {
                for fd in fds { Glibc.close(fd) }
                return LuaRaise("socket:recv_handle: \(why)")
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
                do {
                    let c = try Connection.adopt(channelFD: fds[0], readFD: readFD, writeFD: writeFD, readDirection: r, writeDirection: w)
                    s.push(object: ConnectionObject(c, name: words[4]), type: PipeBindings.type)
                } catch { throw LuaRaise("socket:recv_handle: \(error)") }
            case "socket", "server", "dgram":
                guard fds.count == 1, UnixSocket.isSocket(fds[0]) else { throw reject("expected one socket descriptor") }
                let kind: UnixSocket.Kind = words[1] == "server" ? .server : words[1] == "socket" ? .stream : .datagram
                push(s, UnixSocket.adopt(fd: fds[0], kind: kind, path: words[2] == "-" ? nil : words[2]), name: words[3])
            default:
                throw reject("unknown handle kind '\(words[1])'")
            }
            return 1
        }
    }
}
