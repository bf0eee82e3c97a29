import CLua
import CLuaShim
import Glibc
import IPCCore
import IPCRuntime

/// Runs a scenario script, as `lua.c`'s `pmain`/`docall`/`msghandler` do: a fresh state
/// with the standard libraries, `arg`, a `package.path` that finds modules beside the
/// script, and the `ipc` module; errors reported with a traceback.
public enum ScriptRunner {
    /// Exit statuses of the contract's command-line section.
    public enum Status {
        public static let ok: Int32 = 0
        public static let scriptError: Int32 = 1
        public static let usage: Int32 = 2
        public static let timeout: Int32 = 124
        public static let interrupted: Int32 = 130
    }

    /// Runs `script` and returns the process exit status (the host's end included).
    public static func run(script: String, arguments: [String], options: RunOptions) -> Int32 {
        var options = options
        var temporaryTrace: String?
        if options.timeline && options.tracePath == nil {
            // The timeline is drawn from a trace; keep one for the run.
            temporaryTrace = "/tmp/ipcplay-timeline-\(ProcessIdentity.pid).json"
            options.tracePath = temporaryTrace
        }
        let status = runScript(script: script, arguments: arguments, options: options)
        if options.timeline, let trace = options.tracePath {
            let timeline = Timeline(tracePath: trace)
            if let svg = options.timelineSVG {
                if let f = fopen(svg, "w") { fputs(timeline.svg(), f); fclose(f) } else {
                    Runtime.writeStderr("ipcplay: cannot write \(svg)\n")
                }
            } else {
                let columns = Int(getenv("COLUMNS").map { String(cString: $0) } ?? "") ?? 80
                let text = timeline.render(columns: columns, colour: isatty(1) != 0)
                Runtime.flushOutput()
                Runtime.writeStdout(text)
            }
        }
        if let t = temporaryTrace { unlink(t) }
        return status
    }

    static func runScript(script: String, arguments: [String], options: RunOptions) -> Int32 {
        do {
            try Runtime.startHost(options: options)
        } catch {
            Runtime.writeStderr("ipcplay: \(error)\n")
            return Status.scriptError
        }
        guard let L = luaL_newstate() else {
            Runtime.writeStderr("ipcplay: cannot create a Lua state (out of memory)\n")
            return Status.scriptError
        }
        let s = LuaState(L)
        if ipc_lua_openlibs(L) != LUA_OK {
            reportUncaught(s.string(-1) ?? "cannot open the standard libraries")
            return Status.scriptError
        }
        IPCModule.install(s)
        installExit(s)
        setArguments(s, script: script, arguments: arguments)
        setPackagePath(s, script: script)
        Runtime.locate = { s.callerLocation() }

        if ipc_lua_loadfile(L, script) != LUA_OK {
            // A syntax error: "file:line: message", no traceback to speak of.
            let message = s.string(-1) ?? "cannot load \(script)"
            reportUncaught(message)
            Runtime.report([("outcome", "error"), ("process", "MainProcess (pid \(ProcessIdentity.pid))"), ("message", message)])
            Runtime.abortHost()
            return Status.scriptError
        }
        for a in arguments { s.push(a) }
        let status = ipc_lua_docall(L, Int32(arguments.count), 0)
        if status != LUA_OK {
            let message = s.string(-1) ?? "(error object is not a string)"
            if let reason = TestHelpers.skipReason {
                Runtime.report([("outcome", "skipped"), ("message", reason)])
                Runtime.abortHost()
                return Status.ok
            }
            reportUncaught(message)
            Trace.instant("error", args: [("message", Trace.json(String(message.prefix(while: { $0 != "\n" }))))])
            Runtime.report([("outcome", "error"), ("process", "MainProcess (pid \(ProcessIdentity.pid))"), ("message", message)])
            Runtime.abortHost()
            return Status.scriptError
        }
        Runtime.finishHost()
        if options.strictChildErrors {
            let unjoined = Runtime.unjoinedChildErrors()
            if !unjoined.isEmpty {
                var lines: [(String, String)] = [("outcome", "child-error")]
                for e in unjoined {
                    lines.append(("process", "\(e.name) (pid \(e.pid))"))
                    lines.append(("message", "uncaught error in \(e.name) (pid \(e.pid)), which nothing joined: \(e.message)"))
                }
                Runtime.report(lines)
                return Status.scriptError
            }
        }
        Runtime.report([("outcome", "ok")])
        return Status.ok
    }

    /// The uncaught-error report: the process's name and pid, the message with its
    /// `file:line`, and the traceback, written as one block.
    static func reportUncaught(_ message: String) {
        Runtime.flushOutput()
        Runtime.writeStderr("ipcplay: error in \(CurrentProcess.name) (pid \(ProcessIdentity.pid)): \(message)\n")
    }

    /// `arg` as `lua` sets it: arg[0] the script, arg[1...] its arguments, arg[-1] us.
    static func setArguments(_ s: LuaState, script: String, arguments: [String]) {
        s.newTable(array: Int32(arguments.count), hash: 2)
        s.push("ipcplay")
        s.rawSet(-2, index: -1)
        s.push(script)
        s.rawSet(-2, index: 0)
        for (i, a) in arguments.enumerated() {
            s.push(a)
            s.rawSet(-2, index: Int64(i + 1))
        }
        ipc_lua_pushglobaltable(s.L)
        s.pushValue(-2)
        s.setField(-2, "arg")
        s.pop(2)
    }

    /// Modules beside the script come first: "<dir>/?.lua;<dir>/?/init.lua;...".
    static func setPackagePath(_ s: LuaState, script: String) {
        let dir: String
        if let slash = script.lastIndex(of: "/") {
            dir = String(script[..<slash]).isEmpty ? "/" : String(script[..<slash])
        } else {
            dir = "."
        }
        s.pushLoadedTable()
        guard s.rawField(-1, "package") == LUA_TTABLE else { s.pop(2); return }
        let package = s.top
        s.rawField(package, "path")
        let old = s.string(-1) ?? ""
        s.pop()
        s.push("\(dir)/?.lua;\(dir)/?/init.lua;" + old)
        s.setField(package, "path")
        s.pop(2)
    }

    /// `os.exit([code [, close]])`: in a child, flush and `_exit` (never the parent's exit
    /// path); in the host, end the run as a normal end would, with that status.
    static func installExit(_ s: LuaState) {
        s.pushLoadedTable()
        guard s.rawField(-1, "os") == LUA_TTABLE else { s.pop(2); return }
        s.push(function: osExitFunction)
        s.setField(-2, "exit")
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
        if CurrentProcess.isHost {
            Runtime.finishHost()
            Glibc.exit(code)
        }
        Runtime.endChild(code: code)
    }
}
