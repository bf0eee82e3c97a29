import CLua
import CLuaShim
import CSystemShim
import Glibc
import IPCCore
import IPCRuntime

/// A Connection as Lua sees it. Both ends of a pipe are one object to the gate.
typealias ConnectionObject = Boxed<Connection, Void>

extension ObjectKind {
    static let connection = declare("connection", typeName: "ipc.Connection", namePrefix: "pipe")
}

extension Boxed where Core == Connection, Local == Void {
    /// The C fast paths send and take messages of one small frame with the channel's
    /// shared memory and this end's descriptors.
    convenience init(_ c: Connection, ref: ObjectRef) {
        let fast = FastAccess(shared: c.sharedHeader, fdIn: c.readFD, fdOut: c.writeFD,
                              directionIn: Int32(c.readDirection), directionOut: Int32(c.writeDirection))
        self.init(c, ref: ref, local: (), fastAccess: fast, describe: Self.describe)
    }

    static func describe(_ connection: Connection, _ ref: ObjectRef, _: Void) -> String {
        let mode = connection.canReceive && connection.canSend ? "duplex" : connection.canReceive ? "receiving" : "sending"
        return "<connection \(ref.name) \(connection.isClosed ? "closed" : mode)>"
    }

    var connection: Connection { core }

    /// Would a receive wait now? (Not on a closed or sending end: those return at once.)
    var nothingToReceive: Bool {
        !connection.isClosed && connection.canReceive && !connection.hasBufferedInput
            && !Poll.isReady(fd: connection.readFD, events: Int16(POLLIN))
    }
}

enum PipeBindings: Primitive {
    static var types: [LuaType] { [type] }

    static let type: LuaType = {
        var t = LuaType([.connection], [
            Method<ConnectionObject>("send", takes: ["value"], preview: .argument(2), fast: .send) { s, c, call throws(LuaRaise) in
                guard try sending(s, c, call) else { return try s.fail("closed") }
                if s.top < 2 { throw LuaRaise("\(call.name): expected a value to send") }
                let buffer = try s.encodeArgument(2, call)
                return try send(s, c, &call, buffer.bytes, raw: false)
            },
            Method<ConnectionObject>("send_bytes", takes: ["s", "offset", "size"], preview: .argument(2), fast: .sendBytes) { s, c, call throws(LuaRaise) in
                guard try sending(s, c, call) else { return try s.fail("closed") }
                let bytes = try slice(s, call.name, try s.stringArgument(2, call.name, "argument 1"))
                return try send(s, c, &call, bytes, raw: true)
            },
            Method<ConnectionObject>("recv", takes: ["timeout"], timeout: 2, waits: { $0.nothingToReceive }, preview: .result, fast: .recv) { s, c, call throws(LuaRaise) in
                try receive(s, c, &call, raw: false)
            },
            Method<ConnectionObject>("recv_bytes", takes: ["timeout"], timeout: 2, waits: { $0.nothingToReceive }, preview: .result, fast: .recvBytes) { s, c, call throws(LuaRaise) in
                try receive(s, c, &call, raw: true)
            },
            // No timeout polls once (multiprocessing's default), unlike recv.
            Method<ConnectionObject>("poll", takes: ["timeout"], access: .read, timeout: 2, pollsByDefault: true, waits: { $0.nothingToReceive }) { s, c, call throws(LuaRaise) in
                guard try receiving(s, c, call) else { return try s.fail("closed") }
                s.push(c.connection.poll(deadline: call.deadline))
                return 1
            },
            Method<ConnectionObject>("close", takes: []) { s, c, _ in
                c.connection.close()
                ipc_lua_box_detach(s.L, 1)  // its calls go through Swift, which says "closed"
                return 0
            },
            Method<ConnectionObject>("closed", takes: [], access: .read) { s, c, _ in s.push(c.connection.isClosed); return 1 },
            Method<ConnectionObject>("readable", takes: [], access: .read) { s, c, _ in s.push(c.connection.canReceive); return 1 },
            Method<ConnectionObject>("writable", takes: [], access: .read) { s, c, _ in s.push(c.connection.canSend); return 1 },
        ])
        t.closeMethod = "close"
        // (Each direction has its locks: the fast path picks them by the end's direction.)
        t.fastLayout = { _ in
            FastPath.Layout(lock: MemoryLayout<ipc_channel_header>.offset(of: \.send_lock)!,
                            name: MemoryLayout<ipc_channel_header>.offset(of: \.name)!, recursive: false)
        }
        return t
    }()

    /// `send_bytes(s [, offset [, size]])`'s bytes: `size` bytes of `s` from `offset`
    /// (counted from 0, as Python's), with Python's bounds rules.
    static func slice(_ s: LuaState, _ call: String, _ bytes: UnsafeRawBufferPointer) throws(LuaRaise) -> UnsafeRawBufferPointer {
        if s.isNoneOrNil(3) && s.isNoneOrNil(4) { return bytes }
        let n = Int64(bytes.count)
        let offset = try s.optionalInteger(3, call, "offset", default: 0)
        guard offset >= 0 else { throw LuaRaise("\(call): offset is negative (\(offset))") }
        guard offset <= n else { throw LuaRaise("\(call): offset \(offset) is past the end of the \(n) bytes") }
        let size = try s.optionalInteger(4, call, "size", default: n - offset)
        guard size >= 0 else { throw LuaRaise("\(call): size is negative (\(size))") }
        guard size <= n - offset else {
            throw LuaRaise("\(call): offset + size (\(offset) + \(size)) is past the end of the \(n) bytes")
        }
        return UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset + size)])
    }

    /// `ipc.pipe([duplex=true [, options]])`: two Connections.
    static let functions = [
        Function("pipe", takes: ["duplex", "options"]) { s, call throws(LuaRaise) in
            var duplex = true
            switch s.type(1) {
            case LUA_TNONE, LUA_TNIL: break
            case LUA_TBOOLEAN: duplex = s.boolean(1)
            default: throw LuaRaise("\(call.name): duplex must be a boolean, got \(s.typeName(1))")
            }
            let ref = try s.newObject(.connection, nameOption: 2, call.name)
            let (a, b) = try making(s, call.name) { () throws(IPCError) in try Connection.pair(duplex: duplex, name: ref.name) }
            try s.push(object: ConnectionObject(a, ref: ref), kind: .connection)
            try s.push(object: ConnectionObject(b, ref: ref), kind: .connection)
            return 2
        },
    ]

    /// False when the end is closed; raises on a receiving-only end.
    static func sending(_ s: LuaState, _ c: ConnectionObject, _ call: CallContext) throws(LuaRaise) -> Bool {
        if c.connection.isClosed { return false }
        guard c.connection.canSend else {
            throw LuaRaise("\(call.name): this end only receives (ipc.pipe(false) returns a receiving end, then a sending end)")
        }
        return true
    }

    /// False when the end is closed; raises on a sending-only end.
    static func receiving(_ s: LuaState, _ c: ConnectionObject, _ call: CallContext) throws(LuaRaise) -> Bool {
        if c.connection.isClosed { return false }
        guard c.connection.canReceive else {
            throw LuaRaise("\(call.name): this end only sends (ipc.pipe(false) returns a receiving end, then a sending end)")
        }
        return true
    }

    static func send(_ s: LuaState, _ c: ConnectionObject, _ call: inout CallContext, _ bytes: UnsafeRawBufferPointer, raw: Bool) throws(LuaRaise) -> Int32 {
        let id = Trace.isOn ? Trace.newMessageID() : 0
        call.bytes = bytes.count
        switch c.connection.send(bytes, raw: raw, id: id) {
        case .done:
            call.flowOut = id
            s.push(true)
            return 1
        case .closed:
            return try s.fail("closed")
        }
    }

    static func receive(_ s: LuaState, _ c: ConnectionObject, _ call: inout CallContext, raw wantRaw: Bool) throws(LuaRaise) -> Int32 {
        guard try receiving(s, c, call) else { return try s.fail("closed") }
        let buffer = call.buffer
        switch c.connection.receive(into: buffer, deadline: call.deadline) {
        case .message(let raw, let id):
            if raw || wantRaw {
                if buffer.overflowed { throw s.received(tooLarge: buffer, call.name) }
                try s.push(bytes: buffer.base, count: buffer.count)
            } else {
                try s.pushDecoded(buffer, call.name)
            }
            call.bytes = buffer.count
            call.flowIn = id
            return 1
        case .closed:
            return try s.fail("closed")
        case .timedOut:
            return try s.fail("timeout")
        }
    }
}
