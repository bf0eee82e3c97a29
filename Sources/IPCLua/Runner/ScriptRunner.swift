import CLua
import CLuaShim
import Glibc
import IPCCore
import IPCRuntime

/// Runs a scenario script, as `lua.c`'s `pmain`/`docall`/`msghandler` do: a fresh state
/// with the standard libraries, `arg`, a `package.path` that finds modules beside the
/// script, and the `ipc` module; errors reported with a traceback.
///
/// A script is prepared once (the state made, the chunk compiled) and executed as a
/// run's host; `explore` and `step` execute one prepared script many times, each run in a
/// fork of the prepared process, so that no run pays for start-up or compilation.
public enum ScriptRunner {
    /// Exit statuses of the contract's command-line section that a script's run or the
    /// command line ends with. The others are set where they happen: 124 by the run's
    /// timeout and deadlock handlers (ipc_run.c, the scheduler), 128 + the signal by
    /// `Cancellation.exitStatus`.
    public enum Status {
        public static let ok: Int32 = 0
        public static let scriptError: Int32 = 1
        public static let usage: Int32 = 2
    }

    /// A script loaded into a Lua state, ready to run (on the state's stack: the chunk,
    /// or the message of why it does not load).
    public final class Prepared {
        let s: LuaState
        let loaded: Bool
        let arguments: [String]
        public let script: String

        init(s: LuaState, loaded: Bool, script: String, arguments: [String]) {
            self.s = s
            self.loaded = loaded
            self.script = script
            self.arguments = arguments
        }

        /// Why the script does not load (a syntax error), if it does not.
        public var loadError: String? { loaded ? nil : s.string(1) }
    }

    /// Makes the Lua state, within the run's memory budget, and compiles `script`.
    /// `options` are the run's (the module reads some of them: `ipc.test.seed()`).
    public static func prepare(script: String, arguments: [String], options: RunOptions) -> Prepared? {
        Runtime.configure(options)
        do { try Runtime.installOutput() } catch {
            Runtime.writeStderr("ipcplay: \(error)\n")
            return nil
        }
        MemoryBudget.apply(options)
        guard let L = ipc_lua_newstate() else {
            Runtime.writeStderr("ipcplay: cannot create a Lua state (not enough memory)\n")
            return nil
        }
        let s = LuaState(L)
        if ipc_lua_openlibs(L) != LUA_OK {
            Runtime.writeStderr("ipcplay: cannot open the standard libraries: \(s.string(-1) ?? "out of memory")\n")
            return nil
        }
        do {
            try IPCModule.install(s)
            try installExit(s)
            try setArguments(s, script: script, arguments: arguments)
            try setPackagePath(s, script: script)
        } catch {
            Runtime.writeStderr("ipcplay: cannot set up the Lua state: \(error.message)\n")
            return nil
        }
        let loaded = ipc_lua_loadfile(L, script) == LUA_OK
        return Prepared(s: s, loaded: loaded, script: script, arguments: arguments)
    }

    /// Runs `script` and returns the process exit status (the host's end included).
    public static func run(script: String, arguments: [String], options: RunOptions) -> Int32 {
        var options = options
        var temporaryEvents: String?
        if options.timeline && options.eventsPath == nil {
            // The timeline is drawn from the events the run records; keep them for the run.
            temporaryEvents = "/tmp/ipcplay-timeline-\(ProcessIdentity.pid).events"
            options.eventsPath = temporaryEvents
        }
        var status = Status.scriptError
        if let prepared = prepare(script: script, arguments: arguments, options: options) {
            status = execute(prepared, options: options)
        }
        if options.timeline, let events = options.eventsPath {
            let timeline = Timeline(eventsPath: events)
            if let svg = options.timelineSVG {
                if let f = fopen(svg, "w") { fputs(timeline.svg(), f); fclose(f) } else {
                    Runtime.writeStderr("ipcplay: cannot write \(svg): \(Syscall.lastError)\n")
                }
            } else {
                let terminal = Terminal.standardOutput
                Runtime.flushOutput()
                Runtime.writeStdout(timeline.render(columns: terminal.columns, colour: terminal.colour))
            }
        }
        if let t = temporaryEvents { unlink(t) }
        return status
    }

    /// The host's life: runs the prepared script with `options` and ends the run. Returns
    /// the exit status.
    public static func execute(_ prepared: Prepared, options: RunOptions) -> Int32 {
        let s = prepared.s
        do {
            try Runtime.startHost(options: options)
        } catch {
            Runtime.writeStderr("ipcplay: \(error)\n")
            return Status.scriptError
        }
        Runtime.this.locate = { LuaState(Bindings.current ?? s.L).callLocation() }
        RunBoard.awaitedHolders = AwaitedHolders.ofCurrentCall
        ObjectStateHook.describeCurrentObject = ObjectStateText.ofCurrentCall
        guard prepared.loaded else {
            // A syntax error: "file:line: message", no traceback to speak of.
            return endHost(uncaught: s.string(1) ?? "cannot load \(prepared.script)")
        }
        seedRandom(s)
        s.pushValue(1)
        var failure: String?
        do {
            for a in prepared.arguments { try s.push(a) }
            let status = ipc_lua_docall(s.L, Int32(prepared.arguments.count), 0)
            if status != LUA_OK {
                failure = MemoryBudget.explain(s.string(-1) ?? "(error object is not a string)", status: status)
            }
        } catch {
            failure = "cannot pass the script its arguments: \(error.message)"
        }
        if let message = failure {
            if let reason = TestHelpers.skipReason {
                var report = RunReport(.skipped)
                report.messages = [reason]
                Runtime.report(report)
                Runtime.abortHost()
                return Status.ok
            }
            Trace.instant("error", message: String(message.prefix(while: { $0 != "\n" })))
            return endHost(uncaught: message)
        }
        Runtime.finishHost()
        if options.strictChildErrors {
            let unjoined = Runtime.childErrors(includingJoined: options.schedule != nil)
            if !unjoined.isEmpty {
                var report = RunReport(.childError)
                for e in unjoined {
                    report.processes.append("\(e.name) (pid \(e.pid))")
                    report.messages.append("uncaught error in \(e.name) (pid \(e.pid))\(e.seen ? "" : ", which nothing joined"): \(e.message)")
                }
                Runtime.report(report)
                return Status.scriptError
            }
        }
        Runtime.report(RunReport(.ok))
        return Status.ok
    }

    /// Seeds `math.random` of this process: from the schedule and the process's name under
    /// a controlled scheduler, from `--seed` and the name otherwise when one is given, so
    /// that a replay draws the same numbers; left alone otherwise (Lua seeds it randomly).
    static func seedRandom(_ s: LuaState) {
        let name = Runtime.this.name
        if let schedule = Schedule.current {
            _ = ipc_lua_randomseed(s.L, Int64(bitPattern: schedule.randomSeed(for: name)))
        } else if let seed = Runtime.this.options.seed {
            _ = ipc_lua_randomseed(s.L, Int64(bitPattern: fnv1a(name, seed: seed)))
        }
    }

    /// Ends the host on an error the main script did not catch: says it, reports it, ends
    /// every process. Returns the exit status.
    static func endHost(uncaught message: String) -> Int32 {
        reportUncaught(message)
        var report = RunReport(.error)
        report.processes = ["MainProcess (pid \(ProcessIdentity.pid))"]
        report.messages = [message]
        Runtime.report(Runtime.namedByCause(report))
        Runtime.abortHost()
        return Status.scriptError
    }

    /// The uncaught-error report: the process's name and pid, the message with its
    /// `file:line`, and the traceback, written as one block.
    static func reportUncaught(_ message: String) {
        Runtime.flushOutput()
        Runtime.writeStderr("ipcplay: error in \(Runtime.this.name) (pid \(ProcessIdentity.pid)): \(message)\n")
    }

    /// `arg` as `lua` sets it: arg[0] the script, arg[1...] its arguments, arg[-1] us.
    static func setArguments(_ s: LuaState, script: String, arguments: [String]) throws(LuaRaise) {
        try s.newTable(array: Int32(arguments.count), hash: 2)
        try s.push("ipcplay")
        try s.rawSet(-2, index: -1)
        try s.push(script)
        try s.rawSet(-2, index: 0)
        for (i, a) in arguments.enumerated() {
            try s.push(a)
            try s.rawSet(-2, index: Int64(i + 1))
        }
        ipc_lua_pushglobaltable(s.L)
        s.pushValue(-2)
        try s.setField(-2, "arg")
        s.pop(2)
    }

    /// Modules beside the script come first: "<dir>/?.lua;<dir>/?/init.lua;...".
    static func setPackagePath(_ s: LuaState, script: String) throws(LuaRaise) {
        let dir: String
        if let slash = script.lastIndex(of: "/") {
            dir = String(script[..<slash]).isEmpty ? "/" : String(script[..<slash])
        } else {
            dir = "."
        }
        try s.pushLoadedTable()
        guard try s.rawField(-1, "package") == LUA_TTABLE else { s.pop(2); return }
        let package = s.top
        try s.rawField(package, "path")
        let old = s.string(-1) ?? ""
        s.pop()
        try s.push("\(dir)/?.lua;\(dir)/?/init.lua;" + old)
        try s.setField(package, "path")
        s.pop(2)
    }

    /// `os.exit([code [, close]])`: in a child, flush and `_exit` (never the parent's exit
    /// path); in the host, end the run as a normal end would, with that status.
    static func installExit(_ s: LuaState) throws(LuaRaise) {
        try s.pushLoadedTable()
        guard try s.rawField(-1, "os") == LUA_TTABLE else { s.pop(2); return }
        try s.push(function: osExitFunction)
        try s.setField(-2, "exit")
        s.pop(2)
    }

    static let osExitFunction: ipc_swift_function = { luaEntry($0, osExit) }

    static func osExit(_ s: LuaState) throws(LuaRaise) -> Int32 {
        var code: Int32 = 0
        switch s.type(1) {
        case LUA_TNONE, LUA_TNIL: code = 0
        case LUA_TBOOLEAN: code = s.boolean(1) ? 0 : 1
        default:
            code = Int32(truncatingIfNeeded: try s.integerArgument(1, "os.exit", "code"))
        }
        if Runtime.this.isHost {
            Runtime.finishHost()
            if code == 0 { Runtime.report(RunReport(.ok)) }
            Glibc.exit(code)
        }
        Runtime.endChild(code: code)
    }
}
