import CLua
import CLuaShim
import CSystemShim
import IPCCore
import IPCRuntime

/// What a call's trace slice previews of the value it moved.
enum Preview { case none, argument(Int32), result }

/// What a binding tells the gate about its call, beyond its Lua results.
struct CallContext {
    let s: LuaState
    let site: CallSite
    /// When the call gives up (its timeout argument).
    let deadline: Deadline
    /// Its nesting level: 1 when Lua code made it, 2 when a finalizer or a hook made it
    /// in the middle of a level-1 call, and so on.
    let level: Int
    /// Bytes moved.
    var bytes = -1
    /// Trace ids of a message sent or received.
    var flowOut: UInt64 = 0
    var flowIn: UInt64 = 0
    /// A figure of the object after the call (a queue's items).
    var counter: (what: StaticString, value: Int)?
    /// The result as a trace says it, when the Lua results do not say it well.
    var text: String?
    /// Set when the call fell short of what it was asked in a way its results do not
    /// show (`ipc.wait` timed out: an empty list).
    var fellShort: String?

    /// The call's name, for error messages: `queue:put`.
    var name: String { site.name }

    /// The call's own buffer for the message it sends or receives (emptied when it ends).
    var buffer: ByteBuffer {
        @inline(__always) get { CallBuffers.buffer(level) }
    }

    /// The call's result as the gate's hooks see it: from the `n` Lua results on the
    /// stack (`nil, reason` fell short; a false from a call that waits timed out).
    func result(_ n: Int32, preview: Preview) -> CallResult {
        let top = s.top
        var r: CallResult
        if let fellShort {
            r = CallResult(.fell(fellShort))
        } else if n == 2 && s.type(top - 1) == LUA_TNIL && s.type(top) == LUA_TSTRING {
            r = CallResult(.fell(s.string(top) ?? ""))
        } else if n == 1 && s.type(top) == LUA_TBOOLEAN && !s.boolean(top) && site.blocking {
            r = CallResult(.fell("false"))
        } else {
            // Only a trace reads a result's text and preview: under the scheduler, every
            // call passes the gate's hooks, and making them cost a string a step.
            guard Trace.isOn else { return finish(r: CallResult(.done)) }
            r = CallResult(.done, text: n >= 1 ? s.shortText(top - n + 1) : nil)
            switch preview {
            case .none: break
            case .argument(let i): r.preview = { s.writePreview(i, into: $0) }
            case .result where n >= 1: r.preview = { s.writePreview(top - n + 1, into: $0) }
            case .result: break
            }
        }
        return finish(r: r)
    }

    /// What every result carries besides its outcome.
    private func finish(r: CallResult) -> CallResult {
        var r = r
        if let text { r.text = text }
        r.bytes = bytes
        r.flowOut = flowOut
        r.flowIn = flowIn
        r.counter = counter
        return r
    }
}

/// What the gate is told of a method or a module function besides its name: how it
/// accesses its object, whether and when it would wait (`Subject`: what tells, the object
/// or the Lua state), whether an outside program could end that wait, what its trace
/// previews.
struct GateTraits<Subject> {
    var access: Access
    /// Would the call wait if it went ahead now? (Calls that can wait.)
    var waits: ((Subject) -> Bool)?
    var preview: Preview
    /// An outside program could end its wait (sockets).
    var external: Bool

    /// Its call site, named `name`.
    func site(_ name: String) -> CallSite { CallSite.declare(name, access: access, blocking: waits != nil) }
}

/// One method of a Lua-visible type, declared once: its name, what it does to its
/// object, whether it can wait and how to tell if it would, what its trace previews.
/// Registration derives everything else from it: the call name (`queue:put`), the
/// receiver check, the timeout argument, and the passage through the gate (hang board,
/// trace slice, jitter, controlled scheduler). A body never repeats any of that.
/// (`Object` carries no protocol requirement in the type itself: each `Method<X>` would
/// then cost a search of the binary's conformance records at start-up.)
struct Method<Object: AnyObject>: @unchecked Sendable {
    let name: String
    /// What it takes after its receiver (nil: any number).
    var takes: Parameters?
    var traits: GateTraits<Object>
    /// The argument holding its timeout, if it takes one.
    var timeout: Int32?
    /// True when no timeout means "do not wait" (`c:poll()`), not "wait for ever".
    var pollsByDefault = false
    /// Only these kinds of its type have it (`task_done`: joinable queues); nil: all.
    var only: [ObjectKind]?
    /// Its simple case has a C fast path (a lock's take and release, a small item put or taken).
    var fast: FastPath?
    let body: (LuaState, Object, inout CallContext) throws(LuaRaise) -> Int32

    /// `takes`: the names of its parameters after the receiver (a call given more is an
    /// error); `python`: how to write here a Python habit that gives more.
    init(_ name: String, takes: [String]?, python: String? = nil, access: Access = .write, timeout: Int32? = nil, pollsByDefault: Bool = false,
         waits: ((Object) -> Bool)? = nil, preview: Preview = .none, only: [ObjectKind]? = nil, external: Bool = false,
         fast: FastPath? = nil, _ body: @escaping (LuaState, Object, inout CallContext) throws(LuaRaise) -> Int32) {
        self.name = name
        self.takes = takes.map { Parameters($0, python: python) }
        traits = GateTraits(access: access, waits: waits, preview: preview, external: external)
        self.timeout = timeout
        self.pollsByDefault = pollsByDefault
        self.only = only
        self.fast = fast
        self.body = body
    }
}

extension Method where Object: GateObject {
    /// The callable form, with one call site per kind of its type that has it.
    func erased(kinds: [ObjectKind]) -> Bindings.Entry {
        var sites = [CallSite?](repeating: nil, count: (kinds.map(\.rawValue).max() ?? 0) + 1)
        for k in kinds where only?.contains(k) ?? true {
            sites[k.rawValue] = traits.site("\(k.label):\(name)")
        }
        // The closure captures the fields it uses, not the whole declaration: a captured
        // struct would be copied at every call, retaining each of its references.
        let (name, only, timeout, pollsByDefault, body) = (self.name, self.only, self.timeout, pollsByDefault, self.body)
        let (waits, preview, external, takes) = (traits.waits, traits.preview, traits.external, self.takes)
        return Bindings.Entry(name: name, kinds: only ?? kinds, fast: fast) { s, registered throws(LuaRaise) in
            // Nearly always, self is of the kind whose method table the method came from.
            let kind = registered.flatMap { s.isObject(1, of: $0) ? $0 : nil } ?? s.kind(1)
            guard let kind, kind.rawValue < sites.count, let site = sites[kind.rawValue], let o = s.boxed(1, as: Object.self) else {
                throw s.wrongSelf((registered ?? only?.first ?? kinds[0]).label, name)
            }
            if let takes { try takes.check(s, from: 2, site.name) }
            var deadline = Deadline.never
            if let i = timeout {
                deadline = pollsByDefault && s.isNoneOrNil(i) ? .now : try s.deadline(i, site.name)
            }
            // `o` is retained for the whole call: a finalizer in the middle of it may run the
            // userdata's `__gc`, which lets the object go.
            return try Bindings.pass(s, site, o.ref, deadline: deadline, external: external, preview: preview,
                                     wouldBlock: { waits?(o) ?? false }) { call throws(LuaRaise) in try body(s, o, &call) }
        }
    }
}

/// A module function (`ipc.queue`, `ipc.sleep`, `ipc.unix.connect`), declared once.
struct Function: @unchecked Sendable {
    /// The table it is a field of.
    enum Table: String { case ipc = "ipc", unix = "ipc.unix" }

    /// Its key in its table (`spawn`), as Lua scripts write it.
    let key: String
    let table: Table
    /// Its call name (`ipc.spawn`, `ipc.unix.connect`).
    let name: String
    /// What it takes (nil: any number).
    var takes: Parameters?
    /// The keys its options table may have besides `name`, when it takes one: the
    /// argument named `options` (or `spec`) in `takes`. Any other key is an error.
    var options: [String]?
    var traits: GateTraits<LuaState>
    /// Computes its deadline from its arguments, when it can wait.
    var deadline: ((LuaState, String) throws(LuaRaise) -> Deadline)?
    let body: (LuaState, inout CallContext) throws(LuaRaise) -> Int32

    /// `takes` and `python` as a Method's.
    init(_ key: String, in table: Table = .ipc, takes: [String]?, python: String? = nil, options: [String]? = nil,
         access: Access = .write, deadline: ((LuaState, String) throws(LuaRaise) -> Deadline)? = nil,
         waits: ((LuaState) -> Bool)? = nil, preview: Preview = .none, external: Bool = false,
         _ body: @escaping (LuaState, inout CallContext) throws(LuaRaise) -> Int32) {
        self.key = key
        self.table = table
        name = "\(table.rawValue).\(key)"
        self.takes = takes.map { Parameters($0, python: python) }
        if takes?.contains("options") == true || takes?.contains("spec") == true { self.options = options ?? [] }
        traits = GateTraits(access: access, waits: waits, preview: preview, external: external)
        self.deadline = deadline
        self.body = body
    }

    func erased() -> Bindings.Entry {
        let site = traits.site(name)
        // Captures its fields, not the whole declaration (see Method.erased).
        let (makeDeadline, body) = (self.deadline, self.body)
        let (waits, preview, external, takes) = (traits.waits, traits.preview, traits.external, self.takes)
        let optionsIndex = takes?.names.firstIndex { $0 == "options" || $0 == "spec" }.map { Int32($0 + 1) }
        let allowed = ["name"] + (options ?? [])
        return Bindings.Entry(name: key, kinds: []) { s, _ throws(LuaRaise) in
            if let takes { try takes.check(s, from: 1, site.name) }
            if let optionsIndex, s.type(optionsIndex) == LUA_TTABLE {
                try s.checkOptions(optionsIndex, site.name, allowed: allowed, parameters: takes?.names ?? [])
            }
            let deadline = try makeDeadline?(s, site.name) ?? .never
            return try Bindings.pass(s, site, .none, deadline: deadline, external: external, preview: preview,
                                     wouldBlock: { waits?(s) ?? false }) { call throws(LuaRaise) in try body(s, &call) }
        }
    }
}

/// What a method or a function takes: the names of its parameters, so that a call given
/// more is an error that says what it takes (and, for a Python habit, how to write it
/// here) rather than one that silently drops them. Trailing nils do not count.
struct Parameters {
    let names: [String]
    let python: String?

    init(_ names: [String], python: String?) {
        self.names = names
        self.python = python
    }

    @inline(__always)
    func check(_ s: LuaState, from first: Int32, _ call: @autoclosure () -> String) throws(LuaRaise) {
        let given = s.top - first + 1
        if given > Int32(names.count) { try tooMany(s, from: first, call()) }
    }

    @inline(never)
    func tooMany(_ s: LuaState, from first: Int32, _ call: String) throws(LuaRaise) {
        var last = s.top
        while last >= first && s.type(last) == LUA_TNIL { last -= 1 }
        let given = Int(last - first + 1)
        guard given > names.count else { return }
        let takes = names.isEmpty ? "takes no arguments" : "takes (\(names.joined(separator: ", ")))"
        var message = "\(call): \(takes), got \(given) argument\(given == 1 ? "" : "s")"
        if let python { message += "; \(python)" }
        throw LuaRaise(message)
    }
}

/// A field read or write that is an IPC call (`v.value`, `a[i]`, `p.exitcode`): its
/// call site, declared once; the type's `__index`/`__newindex` pass the gate with it.
struct FieldAccess {
    let site: CallSite
    /// How its errors name it (`value.value`): a field is not called by a name.
    let field: String

    init(_ name: String, field: String? = nil, access: Access) {
        site = CallSite.declare(name, access: access)
        self.field = field ?? name
    }

    /// Runs `body` as this call on `object`.
    @inline(__always)
    func pass(_ s: LuaState, _ object: ObjectRef, preview: Preview = .none, _ body: (inout CallContext) throws(LuaRaise) -> Int32) throws(LuaRaise) -> Int32 {
        try Bindings.pass(s, site, object, deadline: .never, external: false, preview: preview, wouldBlock: { false }, body)
    }
}

/// A Lua-visible type: one metatable per kind, with its method table (LuaSocket-style),
/// `__index` (the method table, or a C function that looks there first and then asks
/// the type's fields), `__newindex`, `__len`, `__close`, `__tostring`, `__gc`, `__name`.
/// With its kinds' records (`ObjectKind.declare`) and its constructors (`Primitive`), it
/// is what the registry knows of a kind.
struct LuaType: @unchecked Sendable {
    let kinds: [ObjectKind]
    let methods: [Bindings.Entry]
    /// The fields that are calls (`v.value`, `p.exitcode`): declared with the type, so
    /// that their sites exist from module open in every process.
    var fieldAccesses: [FieldAccess] = []
    /// Where the C fast paths find the lock (a queue's state lock) and the name in the
    /// shared memory of an object of each kind (nil: the type has no fast path).
    var fastLayout: ((ObjectKind) -> FastPath.Layout)?
    var fields: ipc_swift_function?
    var newIndex: ipc_swift_function?
    var length: ipc_swift_function?
    /// Guarded calls written in C: `with_lock`, `with` (acquire, call, always release).
    var guarded: [(name: String, acquire: String, release: String)] = []
    /// Methods written in Lua (they call back into methods): name and source, a chunk
    /// that returns the function.
    var luaMethods: [(name: String, source: String)] = []
    /// `__close` (to-be-closed variables) calls this method.
    var closeMethod: String?

    init<Object: GateObject>(_ kinds: [ObjectKind], _ methods: [Method<Object>]) {
        self.kinds = kinds
        self.methods = methods.map { $0.erased(kinds: kinds) }
    }
}

/// The registry of every method and function of the module, and the one entry point
/// every Lua call of them goes through.
enum Bindings {
    /// A callable method or function.
    struct Entry: @unchecked Sendable {
        let name: String
        /// The kinds whose method tables hold it (none for a module function).
        let kinds: [ObjectKind]
        /// Its C fast path, if it has one.
        var fast: FastPath? = nil
        /// Runs it; told the kind whose method table it was taken from (for the error of a
        /// wrong `self`).
        let invoke: (LuaState, ObjectKind?) throws(LuaRaise) -> Int32
    }

    /// The Lua thread of the call in progress.
    static var current: OpaquePointer? {
        @inline(__always) get { LuaExecution.current.thread }
        @inline(__always) set { LuaExecution.current.thread = newValue }
    }

    /// The `invoke` of every entry registered in this process's Lua state, in a plain
    /// buffer (an array of entries would cost a once-check and a retain of each field
    /// per call); a Lua closure holds its index as upvalue 2, and the kind whose method
    /// table holds it (or -1) as upvalue 3.
    static var invokers: UnsafeMutablePointer<Invoke>? {
        @inline(__always) get { LuaExecution.current.invokers }
        set { LuaExecution.current.invokers = newValue }
    }
    static var registered: Int {
        get { LuaExecution.current.registered }
        set { LuaExecution.current.registered = newValue }
    }
    typealias Invoke = (LuaState, ObjectKind?) throws(LuaRaise) -> Int32

    /// The C-callable entry point of every method and function.
    static let dispatch: ipc_swift_function = { L in
        luaEntry(L) { s throws(LuaRaise) in
            let invoke = invokers![Int(lua_tointegerx(s.L, ipc_lua_upvalueindex(2), nil))]
            return try invoke(s, ObjectKind(rawValue: Int(lua_tointegerx(s.L, ipc_lua_upvalueindex(3), nil))))
        }
    }

    /// Pushes `entry` as a Lua function (taken from the method table of `kind`, whose fast
    /// paths find their lock and name at `layout`).
    static func push(_ entry: Entry, _ s: LuaState, kind: ObjectKind? = nil, layout: FastPath.Layout? = nil,
                     metatable: UnsafeRawPointer? = nil) throws(LuaRaise) {
        // Entries are registered once per process (a few hundred): the buffer grows by
        // doubling and is never freed.
        if registered & (registered - 1) == 0 {
            let bigger = UnsafeMutablePointer<Invoke>.allocate(capacity: max(1, registered * 2))
            if let invokers { bigger.moveInitialize(from: invokers, count: registered); invokers.deallocate() }
            invokers = bigger
        }
        (invokers! + registered).initialize(to: entry.invoke)
        registered += 1
        s.push(Int64(registered - 1))
        s.push(Int64(kind?.rawValue ?? -1))
        if let fast = entry.fast, let kind, let layout, let metatable {
            lua_pushlightuserdata(s.L, UnsafeMutableRawPointer(mutating: metatable))
            try s.check(ipc_lua_pushfast(s.L, dispatch, Int32(fast.rawValue), layout.lock, layout.name,
                                             layout.recursive ? 1 : 0, "\(kind.label):\(entry.name)"))
            return
        }
        try s.push(function: dispatch, upvalues: 2)
    }

    /// One call through the gate: before it takes effect, the gate's hooks see it (and
    /// may hold this process there); after it, they see its result. A finalizer or a
    /// hook may make another call in the middle of it (at any Lua allocation): the inner
    /// call passes here too, one level deeper, with buffers of its own.
    @inline(__always)
    static func pass(_ s: LuaState, _ site: CallSite, _ object: ObjectRef, deadline: Deadline, external: Bool,
                     preview: Preview, wouldBlock: () -> Bool,
                     _ body: (inout CallContext) throws(LuaRaise) -> Int32) throws(LuaRaise) -> Int32 {
        let level = CallBuffers.enter()
        defer { CallBuffers.leave(level) }
        var call = CallContext(s: s, site: site, deadline: deadline, level: level)
        // The Lua thread making the call (a process's target runs in a coroutine): where
        // reports and schedules say the call is.
        let outer = current
        current = s.L
        defer { current = outer }
        Gate.enter(site, object, deadline: deadline, external: external, wouldBlock: wouldBlock)
        do {
            let n = try body(&call)
            Gate.leave { call.result(n, preview: preview) }
            return n
        } catch {
            var error = error
            if !error.named {
                error.message = "\(site.name): \(error.message)"
                error.named = true
            }
            Gate.leave { CallResult(.raised(error.message)) }
            throw error
        }
    }

    /// Creates the metatables of `type` in the registry. Call once per Lua state.
    static func register(_ type: LuaType, in s: LuaState) throws(LuaRaise) {
        let L = s.L
        for kind in type.kinds {
            try s.check(ipc_lua_p_newmetatable(L, kind.typeName))
            let mt = s.top
            Metatables.pointers[kind.rawValue] = lua_topointer(L, mt)
            try s.newTable(hash: Int32(type.methods.count + type.guarded.count + type.luaMethods.count))
            let methods = s.top
            for m in type.methods where m.kinds.contains(kind) {
                try push(m, s, kind: kind, layout: type.fastLayout?(kind), metatable: lua_topointer(L, mt))
                try s.setField(methods, m.name)
            }
            for (name, source) in type.luaMethods {
                if try LuaChunks.push(source, name: "=\(kind.typeName).\(name)", s) { try s.setField(methods, name) }
            }
            for g in type.guarded {
                try s.rawField(methods, g.acquire)
                try s.rawField(methods, g.release)
                try s.check(ipc_lua_pushguardedcall(L, "\(kind.label):\(g.name)"))
                try s.setField(methods, g.name)
            }
            if let fields = type.fields {
                // Methods resolve in C (no Swift frame); other keys go to the fields. (A
                // value's own metatable serves its methods from a table and reads `value`
                // in C: ipc_lua_p_setownmetatable, over this closure's upvalues.)
                s.pushValue(methods)
                try s.push(function: fields)
                try s.check(ipc_lua_pushindex(L))
            } else {
                s.pushValue(methods)
            }
            try s.setField(mt, "__index")
            s.pushValue(methods)
            try s.setField(mt, "methods")
            if let f = type.newIndex {
                if kind == .value {
                    lua_pushlightuserdata(L, UnsafeMutableRawPointer(mutating: Keys.value))
                    lua_pushlightuserdata(L, UnsafeMutableRawPointer(mutating: lua_topointer(L, mt)))
                    try s.check(ipc_lua_pushfastnewindex(L, f))
                } else {
                    try s.push(function: f)
                }
                try s.setField(mt, "__newindex")
            }
            if let f = type.length { try s.push(function: f); try s.setField(mt, "__len") }
            if let close = type.closeMethod {
                try s.rawField(methods, close)
                try s.setField(mt, "__close")
            }
            try s.push(function: LuaObjects.toString)
            try s.setField(mt, "__tostring")
            try s.push(function: LuaObjects.collect)
            try s.setField(mt, "__gc")
            try s.push(kind.typeName)
            try s.setField(mt, "__name")
            s.setTop(mt - 1)
        }
    }
}

extension LuaState {
    /// A short text for a trace of the value at `i`: booleans and numbers; nil otherwise.
    func shortText(_ i: Int32) -> String? {
        switch type(i) {
        case LUA_TBOOLEAN: return boolean(i) ? "true" : "false"
        case LUA_TNUMBER: return integer(i).map { String($0) } ?? number(i).map { String($0) }
        default: return nil
        }
    }
}

/// The calls with a C fast path for their simple case (`ipc_fast.c`): taking and
/// releasing the lock of an `ipc.lock()`, `ipc.rlock()`, value or array, uncontended; a
/// queue's `put` and `get` of an item that is not a table and encodes in a few hundred
/// bytes, without a wait; a connection's `send` and `recv` (and `_bytes`) of a message of
/// one small frame, without a wait; a semaphore's `acquire` and `release` of one unit,
/// without a wait; a value's `add` of an integer that fits. They apply only while no hook watches the gate; otherwise, and
/// in every other case, the call goes through the Swift binding and the gate.
enum FastPath: Int, Sendable {
    case acquire = 1, release = 2, put = 3, get = 4, send = 5, recv = 6, sendBytes = 7, recvBytes = 8
    case semaphoreAcquire = 9, semaphoreRelease = 10, valueAdd = 11, putNowait = 12, getNowait = 13, taskDone = 14

    /// Where the lock (a queue's state lock) and the name lie in the shared memory of an
    /// object, and whether the lock is re-entrant (each type says it: `LuaType.fastLayout`).
    struct Layout {
        var lock: Int, name: Int, recursive: Bool
    }
}
