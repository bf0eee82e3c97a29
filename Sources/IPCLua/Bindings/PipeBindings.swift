import CLua
import CLuaShim
import IPCCore
import IPCRuntime

/// A Connection as Lua sees it.
final class ConnectionObject: LuaDescribable {
    let connection: Connection
    let name: String
    init(_ connection: Connection, name: String) {
        self.connection = connection
        self.name = name
    }

    var luaDescription: String {
        let mode = connection.canReceive && connection.canSend ? "duplex" : connection.canReceive ? "receiving" : "sending"
        return "<Connection \(name) \(connection.isClosed ? "closed" : mode)>"
    }
}

enum PipeBindings {
    static let type = LuaType(.connection, "ipc.Connection", label: "connection", methods: [
        ("send", { luaEntry($0, send) }),
        ("recv", { luaEntry($0, recv) }),
        ("poll", { luaEntry($0, poll) }),
        ("send_bytes", { luaEntry($0, sendBytes) }),
        ("recv_bytes", { luaEntry($0, recvBytes) }),
        ("close", { luaEntry($0, close) }),
        ("closed", { luaEntry($0, closed) }),
        ("readable", { luaEntry($0, readable) }),
        ("writable", { luaEntry($0, writable) }),
    ])

    /// `ipc.pipe([duplex=true [, options]])`: two Connections.
    static func pipe(_ s: LuaState) throws(LuaRaise) -> Int32 {
        var duplex = true
        switch s.type(1) {
        case LUA_TNONE, LUA_TNIL: break
        case LUA_TBOOLEAN: duplex = s.boolean(1)
        default: throw LuaRaise("ipc.pipe: duplex must be a boolean, got \(s.typeName(1))")
        }
        let name = try s.nameOption(2, "ipc.pipe") ?? RunBoard.current?.nextName(.pipe) ?? "pipe"
        let (a, b) = try making(s, "ipc.pipe") { () throws(IPCError) in try Connection.pair(duplex: duplex, name: name) }
        s.push(object: ConnectionObject(a, name: name), type: type)
        s.push(object: ConnectionObject(b, name: name), type: type)
        return 2
    }

    static func sender(_ s: LuaState, _ call: String) throws(LuaRaise) -> ConnectionObject? {
        let c = try s.receiver(.connection, call, as: ConnectionObject.self)
        if c.connection.isClosed { return nil }
        guard c.connection.canSend else {
            throw LuaRaise("\(call): this end only receives (ipc.pipe(false) returns a receiving end, then a sending end)")
        }
        return c
    }

    static func receiver(_ s: LuaState, _ call: String) throws(LuaRaise) -> ConnectionObject? {
        let c = try s.receiver(.connection, call, as: ConnectionObject.self)
        if c.connection.isClosed { return nil }
        guard c.connection.canReceive else {
            throw LuaRaise("\(call): this end only sends (ipc.pipe(false) returns a receiving end, then a sending end)")
        }
        return c
    }

    static func send(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let c = try sender(s, "connection:send") else { return s.fail("closed") }
        if s.top < 2 { throw LuaRaise("connection:send: expected a value to send") }
        let buffer = try s.encodeArgument(2, "connection:send")
        Calls.enter("connection:send", c.name)
        let id = Trace.isOn ? Trace.newMessageID() : 0
        let outcome = c.connection.send(buffer.bytes, raw: false, id: id)
        if Trace.isOn {
            Traced.call(s, "connection:send", c.name, value: 2, bytes: buffer.count, result: outcome == .done ? nil : "closed",
                        flowOut: outcome == .done ? id : 0)
        }
        switch outcome {
        case .done: s.push(true); return 1
        case .closed: return s.fail("closed")
        }
    }

    static func sendBytes(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let c = try sender(s, "connection:send_bytes") else { return s.fail("closed") }
        let bytes = try s.stringArgument(2, "connection:send_bytes", "argument 1")
        Calls.enter("connection:send_bytes", c.name)
        let id = Trace.isOn ? Trace.newMessageID() : 0
        let outcome = c.connection.send(bytes, raw: true, id: id)
        if Trace.isOn {
            Traced.call(s, "connection:send_bytes", c.name, value: 2, bytes: bytes.count, result: outcome == .done ? nil : "closed",
                        flowOut: outcome == .done ? id : 0)
        }
        switch outcome {
        case .done: s.push(true); return 1
        case .closed: return s.fail("closed")
        }
    }

    static func recv(_ s: LuaState) throws(LuaRaise) -> Int32 {
        try receive(s, "connection:recv", raw: false)
    }

    static func recvBytes(_ s: LuaState) throws(LuaRaise) -> Int32 {
        try receive(s, "connection:recv_bytes", raw: true)
    }

    static func receive(_ s: LuaState, _ call: String, raw wantRaw: Bool) throws(LuaRaise) -> Int32 {
        guard let c = try receiver(s, call) else { return s.fail("closed") }
        let deadline = try s.deadline(2, call)
        Calls.enter(call, c.name)
        let buffer = Scratch.receive
        switch c.connection.receive(into: buffer, deadline: deadline) {
        case .message(let raw, let id):
            if raw || wantRaw {
                if buffer.overflowed {
                    buffer.reset()
                    throw LuaRaise("\(call): not enough memory to receive the message (it is lost)")
                }
                s.push(bytes: buffer.base, count: buffer.count)
            } else {
                try s.pushDecoded(buffer, call)
            }
            if Trace.isOn { Traced.call(s, call, c.name, value: -1, bytes: buffer.count, flowIn: id) }
            buffer.reset()
            return 1
        case .closed:
            if Trace.isOn { Traced.call(s, call, c.name, result: "closed") }
            return s.fail("closed")
        case .timedOut:
            if Trace.isOn { Traced.call(s, call, c.name, result: "timeout") }
            return s.fail("timeout")
        }
    }

    static func poll(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let c = try receiver(s, "connection:poll") else { return s.fail("closed") }
        let deadline = s.isNoneOrNil(2) ? Deadline.now : try s.deadline(2, "connection:poll")
        Calls.enter("connection:poll", c.name)
        s.push(c.connection.poll(deadline: deadline))
        return 1
    }

    static func close(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let c = try s.receiver(.connection, "connection:close", as: ConnectionObject.self)
        c.connection.close()
        return 0
    }

    /// `c:closed()`, `c:readable()`, `c:writable()` (additions).
    static func closed(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.push(try s.receiver(.connection, "connection:closed", as: ConnectionObject.self).connection.isClosed)
        return 1
    }

    static func readable(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.push(try s.receiver(.connection, "connection:readable", as: ConnectionObject.self).connection.canReceive)
        return 1
    }

    static func writable(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.push(try s.receiver(.connection, "connection:writable", as: ConnectionObject.self).connection.canSend)
        return 1
    }
}
