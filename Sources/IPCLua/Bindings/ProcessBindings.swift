import CLua
import CLuaShim
import Glibc
import IPCCore
import IPCRuntime

/// A Process as Lua sees it: the runtime's `ChildProcess`; its target and arguments are
/// kept in the userdata's user value, a table {target, args, n}.
final class ProcessObject: LuaDescribable {
    let child: ChildProcess
    init(child: ChildProcess) { self.child = child }

    var luaDescription: String {
        let state: String
        if !child.isStarted {
            state = "initial"
        } else if let t = child.termination {
            state = "stopped exitcode=\(t.exitcode)"
        } else {
            state = "started pid=\(child.pid)"
        }
        return "<Process name='\(child.name)' \(state)\(child.daemon ? " daemon" : "")>"
    }
}

enum ProcessBindings {
    static let type: LuaType = {
        var t = LuaType(.process, "ipc.Process", label: "process", methods: [
            ("start", { luaEntry($0, start) }),
            ("join", { luaEntry($0, join) }),
            ("is_alive", { luaEntry($0, isAlive) }),
            ("terminate", { luaEntry($0, terminate) }),
            ("kill", { luaEntry($0, kill) }),
        ])
        t.index = { luaEntry($0, index) }
        t.newIndex = { luaEntry($0, newIndex) }
        return t
    }()

    // MARK: - Constructors

    /// `ipc.spawn(fn, ...)`: a started Process running fn(...).
    static func spawn(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard isCallable(s, 1) else {
            throw LuaRaise("ipc.spawn: expected a function as argument 1, got \(s.typeName(1))")
        }
        let n = s.top - 1
        let process = ProcessObject(child: ChildProcess(name: nil, daemon: false))
        s.push(object: process, type: type)
        let ud = s.top
        // user value = {target = fn, args = {...}, n = #args}
        s.newTable(hash: 3)
        s.pushValue(1)
        s.setField(-2, "target")
        s.newTable(array: n)
        for k in 0..<n {
            s.pushValue(2 + k)
            s.rawSet(-2, index: Int64(k + 1))
        }
        s.setField(-2, "args")
        s.push(Int64(n))
        s.setField(-2, "n")
        _ = ipc_lua_setuservalue(s.L, ud)
        try launch(s, process, at: ud, call: "ipc.spawn")
        s.setTop(ud)
        return 1
    }

    /// `ipc.process{target=fn, args={...}, name="p1", daemon=false}`: not yet started.
    static func process(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let call = "ipc.process"
        guard s.type(1) == LUA_TTABLE else {
            throw LuaRaise("\(call): expected a table {target = fn, args = {...}, name = ..., daemon = ...}, got \(s.typeName(1))")
        }
        s.rawField(1, "target")
        guard isCallable(s, -1) else { throw LuaRaise("\(call): target must be a function, got \(s.typeName(-1))") }
        let target = s.top
        var argCount: Int64 = 0
        switch s.rawField(1, "args") {
        case LUA_TNIL: s.pop(); s.newTable()
        case LUA_TTABLE:
            if s.rawField(-1, "n") != LUA_TNIL {
                argCount = try s.integerArgument(-1, call, "args.n")
            } else {
                argCount = Int64(s.rawLength(-2))
            }
            s.pop()
            if argCount < 0 { throw LuaRaise("\(call): args.n must not be negative") }
        default: throw LuaRaise("\(call): args must be a table, got \(s.typeName(-1))")
        }
        let args = s.top
        var name: String?
        switch s.rawField(1, "name") {
        case LUA_TNIL: break
        case LUA_TSTRING: name = s.string(-1)
        default: throw LuaRaise("\(call): name must be a string, got \(s.typeName(-1))")
        }
        s.pop()
        var daemon = false
        switch s.rawField(1, "daemon") {
        case LUA_TNIL: break
        case LUA_TBOOLEAN: daemon = s.boolean(-1)
        default: throw LuaRaise("\(call): daemon must be a boolean, got \(s.typeName(-1))")
        }
        s.pop()
        if let name, name.isEmpty { throw LuaRaise("\(call): name must not be empty") }
        let process = ProcessObject(child: ChildProcess(name: name, daemon: daemon))
        s.push(object: process, type: type)
        let ud = s.top
        s.newTable(hash: 3)
        s.pushValue(target)
        s.setField(-2, "target")
        s.pushValue(args)
        s.setField(-2, "args")
        s.push(argCount)
        s.setField(-2, "n")
        _ = ipc_lua_setuservalue(s.L, ud)
        return 1
    }

    static func isCallable(_ s: LuaState, _ i: Int32) -> Bool {
        if s.type(i) == LUA_TFUNCTION { return true }
        guard lua_getmetatable(s.L, i) != 0 else { return false }
        let t = s.rawField(-1, "__call")
        s.pop(2)
        return t == LUA_TFUNCTION
    }

    // MARK: - Starting

    /// Forks the process whose userdata is at `ud`. In the child, runs the target in a
    /// fresh coroutine (so that its traceback shows its own frames only) and never returns.
    static func launch(_ s: LuaState, _ process: ProcessObject, at ud: Int32, call: String) throws(LuaRaise) {
        do {
            try process.child.start { runTarget(s, ud) }
        } catch {
            throw LuaRaise("\(call): \(error)")
        }
    }

    static func runTarget(_ s: LuaState, _ ud: Int32) -> Int32 {
        guard let thread = lua_newthread(s.L) else { return 1 }
        let co = LuaState(thread)
        _ = ipc_lua_getuservalue(s.L, ud)
        let spec = s.top
        s.rawField(spec, "target")
        s.rawField(spec, "args")
        s.rawField(spec, "n")
        let n = Int32(clamping: s.integer(-1) ?? 0)
        s.pop()
        guard co.ensureStack(n + 8) else { return 1 }
        s.pushValue(-2)
        lua_xmove(s.L, thread, 1)  // target
        for k in 1...max(n, 1) where n > 0 {
            s.rawGet(-1, index: Int64(k))
            lua_xmove(s.L, thread, 1)
        }
        s.pop(3)
        let status = ipc_lua_docall(thread, n, 0)
        if status != LUA_OK {
            let message = co.string(-1) ?? "(error object is not a string)"
            ScriptRunner.reportUncaught(message)
            Trace.instant("error", args: [("message", Trace.json(String(message.prefix(while: { $0 != "\n" }))))])
            RunBoard.current?.recordError(name: CurrentProcess.name, message: String(message.prefix(while: { $0 != "\n" })))
            return 1
        }
        return 0
    }

    // MARK: - Methods

    static func start(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let p = try s.receiver(.process, "process:start", as: ProcessObject.self)
        if p.child.isStarted { throw LuaRaise("process:start: \(p.child.name) was already started") }
        try launch(s, p, at: 1, call: "process:start")
        return 0
    }

    static func join(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let p = try s.receiver(.process, "process:join", as: ProcessObject.self)
        let deadline = try s.deadline(2, "process:join")
        guard p.child.isStarted else { throw LuaRaise("process:join: \(p.child.name) was never started") }
        guard p.child.isMine else {
            throw LuaRaise("process:join: \(p.child.name) is not a child of this process (only the process that started it can join it)")
        }
        if p.child.pid == ProcessIdentity.pid { throw LuaRaise("process:join: a process cannot join itself") }
        Calls.enter("process:join", p.child.name)
        let ended = p.child.join(deadline: deadline)
        if ended { RunBoard.current?.markErrorSeen(pid: p.child.pid) }
        if Trace.isOn { Traced.call(s, "process:join", p.child.name, result: String(ended)) }
        s.push(ended)
        return 1
    }

    static func isAlive(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let p = try s.receiver(.process, "process:is_alive", as: ProcessObject.self)
        if p.child.isStarted && !p.child.isMine {
            s.push(RunBoard.current?.lists(pid: p.child.pid) ?? false)
            return 1
        }
        s.push(p.child.isAlive)
        return 1
    }

    static func terminate(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let p = try s.receiver(.process, "process:terminate", as: ProcessObject.self)
        p.child.send(signal: SIGTERM)
        return 0
    }

    static func kill(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let p = try s.receiver(.process, "process:kill", as: ProcessObject.self)
        p.child.send(signal: SIGKILL)
        return 0
    }

    // MARK: - Fields

    /// `__index`: pid, name, daemon, exitcode, then the methods (upvalue 2).
    static func index(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let p = try s.receiver(.process, "process", as: ProcessObject.self)
        if s.pushMethod() { return 1 }
        switch s.key(2) {
        case Keys.pid:
            if p.child.isStarted { s.push(Int64(p.child.pid)) } else { s.pushNil() }
        case Keys.name: s.push(p.child.name)
        case Keys.daemon: s.push(p.child.daemon)
        case Keys.exitcode:
            if let t = p.child.poll() { s.push(Int64(t.exitcode)) } else { s.pushNil() }
        default: s.pushNil()
        }
        return 1
    }

    /// `__newindex`: `name` and `daemon` (before start) may be set.
    static func newIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let p = try s.receiver(.process, "process", as: ProcessObject.self)
        switch s.key(2) {
        case Keys.name:
            guard let name = s.string(3), !name.isEmpty else {
                throw LuaRaise("process.name: must be a non-empty string, got \(s.typeName(3))")
            }
            p.child.name = name
        case Keys.daemon:
            guard s.type(3) == LUA_TBOOLEAN else { throw LuaRaise("process.daemon: must be a boolean, got \(s.typeName(3))") }
            if p.child.isStarted { throw LuaRaise("process.daemon: cannot be changed once the process has started") }
            p.child.daemon = s.boolean(3)
        default:
            throw LuaRaise("process: cannot set field '\(s.string(2) ?? s.typeName(2))' (only name and daemon can be set)")
        }
        return 0
    }

    // MARK: - Module functions

    /// `ipc.current()`: {name=..., pid=...} of the calling process.
    static func current(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.newTable(hash: 3)
        s.push(CurrentProcess.name)
        s.setField(-2, "name")
        s.push(Int64(ProcessIdentity.pid))
        s.setField(-2, "pid")
        s.push(CurrentProcess.isHost)
        s.setField(-2, "is_main")
        return 1
    }

    static func sleep(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let seconds = try s.numberArgument(1, "ipc.sleep", "seconds")
        if seconds < 0 { throw LuaRaise("ipc.sleep: seconds must not be negative") }
        Runtime.sleep(seconds: seconds)
        return 0
    }

    static func now(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.push(MonotonicClock.seconds())
        return 1
    }
}
