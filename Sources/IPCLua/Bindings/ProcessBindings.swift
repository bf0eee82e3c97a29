import CLua
import CLuaShim
import Glibc
import IPCCore
import IPCRuntime

/// A Process as Lua sees it: the runtime's `ChildProcess`; its target and arguments are
/// kept in the userdata's user value, a table {target, args, n}.
typealias ProcessObject = Boxed<ChildProcess, Void>

extension Boxed where Core == ChildProcess, Local == Void {
    convenience init(child: ChildProcess) { self.init(child, ref: child.ref, local: (), describe: Self.describe) }
    var child: ChildProcess { core }

    static func describe(_ child: ChildProcess, _: ObjectRef, _: Void) -> String {
        let state: String
        if !child.isStarted {
            state = "initial"
        } else if let t = child.termination {
            state = "stopped exitcode=\(t.exitcode)"
        } else {
            state = "started pid=\(child.pid)"
        }
        return "<process \(child.name) \(state)\(child.daemon ? " daemon" : "")>"
    }

    /// Would `join` wait now?
    var joinWaits: Bool { child.isStarted && child.isMine && child.joinWouldBlock }
}

enum ProcessBindings: Primitive {
    static let exitcodeRead = FieldAccess("process.exitcode", access: .read)

    static var types: [LuaType] { [type] }

    static let type: LuaType = {
        var t = LuaType([.process], [
            Method<ProcessObject>("start", takes: []) { s, p, call throws(LuaRaise) in
                if p.child.isStarted { throw LuaRaise("\(call.name): \(p.child.name) was already started") }
                try launch(s, p, at: 1, call: call.name)
                return 0
            },
            Method<ProcessObject>("join", takes: ["timeout"], timeout: 2, waits: { $0.joinWaits }) { s, p, call throws(LuaRaise) in
                guard p.child.isStarted else { throw LuaRaise("\(call.name): \(p.child.name) was never started") }
                guard p.child.isMine else {
                    throw LuaRaise("\(call.name): \(p.child.name) is not a child of this process (only the process that started it can join it)")
                }
                let ended = p.child.join(deadline: call.deadline)
                if ended { RunBoard.current?.markErrorSeen(pid: p.child.pid) }
                s.push(ended)
                return 1
            },
            Method<ProcessObject>("is_alive", takes: [], access: .read) { s, p, _ in
                if p.child.isStarted && !p.child.isMine {
                    s.push(RunBoard.current?.lists(pid: p.child.pid) ?? false)
                } else {
                    s.push(p.child.isAlive)
                }
                return 1
            },
            Method<ProcessObject>("terminate", takes: []) { _, p, _ in p.child.send(signal: SIGTERM); return 0 },
            Method<ProcessObject>("kill", takes: []) { _, p, _ in p.child.send(signal: SIGKILL); return 0 },
        ])
        t.fields = { luaEntry($0, index) }
        t.fieldAccesses = [exitcodeRead]
        t.newIndex = { luaEntry($0, newIndex) }
        return t
    }()

    // MARK: - Constructors

    /// `ipc.spawn(fn, ...)`: a started Process running fn(...).
    static func spawn(_ s: LuaState, _ call: CallContext) throws(LuaRaise) -> Int32 {
        guard try isCallable(s, 1) else {
            throw LuaRaise("\(call.name): expected a function as argument 1, got \(s.typeName(1))")
        }
        let n = s.top - 1
        let process = ProcessObject(child: ChildProcess(name: nil, daemon: false))
        try s.push(object: process, kind: .process)
        let ud = s.top
        // user value = {target = fn, args = {...}, n = #args}
        try s.newTable(hash: 3)
        s.pushValue(1)
        try s.setField(-2, "target")
        try s.newTable(array: n)
        for k in 0..<n {
            s.pushValue(2 + k)
            try s.rawSet(-2, index: Int64(k + 1))
        }
        try s.setField(-2, "args")
        s.push(Int64(n))
        try s.setField(-2, "n")
        _ = ipc_lua_setuservalue(s.L, ud)
        try launch(s, process, at: ud, call: call.name)
        s.setTop(ud)
        return 1
    }

    /// `ipc.process{target=fn, args={...}, name="p1", daemon=false}`: not yet started.
    static func process(_ s: LuaState, _ call: CallContext) throws(LuaRaise) -> Int32 {
        guard s.type(1) == LUA_TTABLE else {
            throw LuaRaise("\(call.name): expected a table {target = fn, args = {...}, name = ..., daemon = ...}, got \(s.typeName(1))")
        }
        try s.rawField(1, "target")
        guard try isCallable(s, -1) else { throw LuaRaise("\(call.name): target must be a function, got \(s.typeName(-1))") }
        let target = s.top
        var argCount: Int64 = 0
        switch try s.rawField(1, "args") {
        case LUA_TNIL: s.pop(); try s.newTable()
        case LUA_TTABLE:
            if try s.rawField(-1, "n") != LUA_TNIL {
                argCount = try s.integerArgument(-1, call.name, "args.n")
            } else {
                argCount = Int64(s.rawLength(-2))
            }
            s.pop()
            if argCount < 0 { throw LuaRaise("\(call.name): args.n must not be negative") }
        default: throw LuaRaise("\(call.name): args must be a table, got \(s.typeName(-1))")
        }
        let args = s.top
        var name: String?
        switch try s.rawField(1, "name") {
        case LUA_TNIL: break
        case LUA_TSTRING: name = s.string(-1)
        default: throw LuaRaise("\(call.name): name must be a string, got \(s.typeName(-1))")
        }
        s.pop()
        var daemon = false
        switch try s.rawField(1, "daemon") {
        case LUA_TNIL: break
        case LUA_TBOOLEAN: daemon = s.boolean(-1)
        default: throw LuaRaise("\(call.name): daemon must be a boolean, got \(s.typeName(-1))")
        }
        s.pop()
        if let name, name.isEmpty { throw LuaRaise("\(call.name): name must not be empty") }
        let process = ProcessObject(child: ChildProcess(name: name, daemon: daemon))
        try s.push(object: process, kind: .process)
        let ud = s.top
        try s.newTable(hash: 3)
        s.pushValue(target)
        try s.setField(-2, "target")
        s.pushValue(args)
        try s.setField(-2, "args")
        s.push(argCount)
        try s.setField(-2, "n")
        _ = ipc_lua_setuservalue(s.L, ud)
        return 1
    }

    static func isCallable(_ s: LuaState, _ i: Int32) throws(LuaRaise) -> Bool {
        if s.type(i) == LUA_TFUNCTION { return true }
        guard lua_getmetatable(s.L, i) != 0 else { return false }
        let t = try s.rawField(-1, "__call")
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
        // So that ipc.active_children() gives back this very object.
        try pushStarted(s)
        s.pushValue(ud)
        try s.rawSet(-2, index: Int64(process.child.pid))
        s.pop()
    }

    static func runTarget(_ s: LuaState, _ ud: Int32) -> Int32 {
        ScriptRunner.seedRandom(s)
        let thread: OpaquePointer
        let n: Int32
        do {
            (thread, n) = try prepareTarget(s, ud)
        } catch {
            ScriptRunner.reportUncaught("cannot start: \(error.message)")
            return 1
        }
        let status = ipc_lua_docall(thread, n, 0)
        if status != LUA_OK {
            let message = MemoryBudget.explain(LuaState(thread).string(-1) ?? "(error object is not a string)", status: status)
            ScriptRunner.reportUncaught(message)
            Trace.instant("error", message: String(message.prefix(while: { $0 != "\n" })))
            RunBoard.current?.recordError(name: Runtime.this.name, message: String(message.prefix(while: { $0 != "\n" })))
            return 1
        }
        return 0
    }

    /// A fresh coroutine with the target and its arguments of the process at `ud` on its
    /// stack, and their count.
    static func prepareTarget(_ s: LuaState, _ ud: Int32) throws(LuaRaise) -> (OpaquePointer, Int32) {
        var made: OpaquePointer?
        try s.check(ipc_lua_p_newthread(s.L, &made))
        guard let thread = made else { throw LuaRaise("not enough memory") }
        let co = LuaState(thread)
        _ = ipc_lua_getuservalue(s.L, ud)
        let spec = s.top
        try s.rawField(spec, "target")
        try s.rawField(spec, "args")
        try s.rawField(spec, "n")
        let n = Int32(clamping: s.integer(-1) ?? 0)
        s.pop()
        guard co.ensureStack(n + 8) else { throw LuaRaise("too many arguments (\(n))") }
        s.pushValue(-2)
        lua_xmove(s.L, thread, 1)  // target
        for k in 1...max(n, 1) where n > 0 {
            s.rawGet(-1, index: Int64(k))
            lua_xmove(s.L, thread, 1)
        }
        s.pop(3)
        return (thread, n)
    }

    // MARK: - Fields

    /// `__index` for what is not a method: pid, name, daemon, and the call `exitcode`.
    static func index(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let p = s.object(1, .process, as: ProcessObject.self) else { throw s.wrongSelf("process", "index") }
        switch s.key(2) {
        case Keys.pid:
            if p.child.isStarted { s.push(Int64(p.child.pid)) } else { s.pushNil() }
        case Keys.name: try s.push(p.child.name)
        case Keys.daemon: s.push(p.child.daemon)
        case Keys.exitcode:
            return try exitcodeRead.pass(s, p.ref) { _ in
                if let t = p.child.poll() { s.push(Int64(t.exitcode)) } else { s.pushNil() }
                return 1
            }
        default: s.pushNil()
        }
        return 1
    }

    /// `__newindex`: `name` and `daemon` (before start) may be set.
    static func newIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let p = s.object(1, .process, as: ProcessObject.self) else { throw s.wrongSelf("process", "index") }
        switch s.key(2) {
        case Keys.name:
            guard let name = s.string(3), !name.isEmpty else {
                throw LuaRaise("process.name: must be a non-empty string, got \(s.typeName(3))")
            }
            p.child.name = name
            p.ref = p.child.ref
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

    static let functions = [
        Function("spawn", takes: nil) { s, call throws(LuaRaise) in try spawn(s, call) },
        Function("process", takes: ["spec"],
                 python: "Lua has no keyword arguments: ipc.process{target = fn, args = {...}, name = ..., daemon = ...}",
                 options: ["target", "args", "daemon"]) { s, call throws(LuaRaise) in
            try process(s, call)
        },
        /// `ipc.current()`: {name=..., pid=...} of the calling process.
        Function("current", takes: [], access: .read) { s, _ throws(LuaRaise) in
            try s.newTable(hash: 3)
            try s.push(Runtime.this.name)
            try s.setField(-2, "name")
            s.push(Int64(ProcessIdentity.pid))
            try s.setField(-2, "pid")
            s.push(Runtime.this.isHost)
            try s.setField(-2, "is_main")
            return 1
        },
        /// `ipc.sleep(seconds)`: scaled by --time-scale, on the run's clock.
        Function("sleep", takes: ["seconds"], deadline: { s, name throws(LuaRaise) in
            let seconds = try s.numberArgument(1, name, "seconds")
            if seconds < 0 { throw LuaRaise("\(name): seconds must not be negative") }
            return Runtime.sleepDeadline(seconds: seconds)
        }, waits: { _ in Probe.never.wouldBlock() }) { _, call in
            Blocking.sleep(until: call.deadline)
            return 0
        },
        Function("now", takes: [], access: .read) { s, _ in
            s.push(MonotonicClock.seconds())
            return 1
        },
        /// `ipc.cpu_count()`: the CPUs online, as Python's os.cpu_count().
        Function("cpu_count", takes: [], access: .read) { s, _ in
            s.push(Int64(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
            return 1
        },
        /// `ipc.parent_process()`: {name=..., pid=...} of the process that started this
        /// one, or nil in the main process.
        Function("parent_process", takes: [], access: .read) { s, _ throws(LuaRaise) in
            guard let parent = Runtime.this.parent else { s.pushNil(); return 1 }
            try s.newTable(hash: 2)
            try s.push(parent.name)
            try s.setField(-2, "name")
            s.push(Int64(parent.pid))
            try s.setField(-2, "pid")
            return 1
        },
        /// `ipc.active_children()`: the Processes this process started that have not
        /// ended, in start order; as Python's, it reaps those that have.
        Function("active_children", takes: [], access: .read) { s, _ throws(LuaRaise) in
            let alive = Runtime.this.children.filter { $0.poll() == nil }
            try s.newTable(array: Int32(clamping: alive.count))
            let list = s.top
            try pushStarted(s)
            for (k, child) in alive.enumerated() {
                // The script's own object when it still has it, else a new one for the child.
                if lua_rawgeti(s.L, -1, Int64(child.pid)) == LUA_TNIL {
                    s.pop()
                    try s.push(object: ProcessObject(child: child), kind: .process)
                }
                try s.rawSet(list, index: Int64(k + 1))
            }
            s.setTop(list)
            return 1
        },
    ]

    /// Pushes the table of the Process objects this process started, by pid (weak
    /// values: it keeps no object alive), made on first use.
    static func pushStarted(_ s: LuaState) throws(LuaRaise) {
        if try s.rawField(ipc_lua_registryindex(), "ipc.started") == LUA_TTABLE { return }
        s.pop()
        try s.newTable()
        try s.newTable(hash: 1)
        try s.push("v")
        try s.setField(-2, "__mode")
        lua_setmetatable(s.L, -2)
        s.pushValue(-1)
        try s.setField(ipc_lua_registryindex(), "ipc.started")
    }
}
