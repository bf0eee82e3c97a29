import IPCCore
import IPCRuntime

// `ipc.rwlock()` as Lua sees it: readers share it, a writer excludes (an addition).

extension ObjectKind {
    static let rwlock = declare("rwlock", typeName: "ipc.RWLock")
}

typealias RWLockObject = Boxed<SharedRWLock, Void>

extension Boxed where Core == SharedRWLock, Local == Void {
    convenience init(_ l: SharedRWLock, ref: ObjectRef) {
        self.init(l, ref: ref, local: ()) { l, ref, _ in "<rwlock \(ref.name) readers=\(l.readers)>" }
    }
}

enum RWLockBindings: Primitive {
    static func outcome(_ s: LuaState, _ o: RWLockObject, _ call: CallContext, _ r: SharedRWLock.Outcome) throws(LuaRaise) -> Int32 {
        switch r {
        case .acquired: s.push(true)
        case .timedOut: s.push(false)
        case .wouldDeadlock:
            let holds = o.core.isWriter ? "writes" : "reads"
            throw LuaRaise("\(call.name): this process already \(holds) \(o.ref.name); waiting for it would never end")
        }
        return 1
    }

    static let type: LuaType = {
        var t = LuaType([.rwlock], [
            Method<RWLockObject>("acquire_read", takes: ["timeout"], timeout: 2, waits: { $0.core.readWouldWait }) { s, o, call throws(LuaRaise) in
                try outcome(s, o, call, o.core.acquireRead(deadline: call.deadline))
            },
            Method<RWLockObject>("release_read", takes: []) { _, o, call throws(LuaRaise) in
                guard o.core.releaseRead() else { throw LuaRaise("\(call.name): this process does not read \(o.ref.name)") }
                return 0
            },
            Method<RWLockObject>("acquire_write", takes: ["timeout"], timeout: 2, waits: { $0.core.writeWouldWait }) { s, o, call throws(LuaRaise) in
                try outcome(s, o, call, o.core.acquireWrite(deadline: call.deadline))
            },
            Method<RWLockObject>("release_write", takes: []) { _, o, call throws(LuaRaise) in
                guard o.core.releaseWrite() else { throw LuaRaise("\(call.name): this process does not write \(o.ref.name)") }
                return 0
            },
            Method<RWLockObject>("readers", takes: [], access: .read) { s, o, _ in s.push(Int64(o.core.readers)); return 1 },
        ])
        t.guarded = [("with_read", "acquire_read", "release_read"), ("with_write", "acquire_write", "release_write")]
        return t
    }()

    static var types: [LuaType] { [type] }

    static let functions = [
        Function("rwlock", takes: ["options"]) { s, call throws(LuaRaise) in
            let ref = try s.newObject(.rwlock, nameOption: 1, call.name)
            let l = try making(s, call.name) { () throws(IPCError) in try SharedRWLock(name: ref.name) }
            try s.push(object: RWLockObject(l, ref: ref), kind: .rwlock)
            return 1
        },
    ]
}
