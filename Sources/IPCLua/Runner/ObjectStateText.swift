import CLua
import IPCCore
import IPCRuntime

/// The state of the current call's object in a few words, for the prompts of `ipcplay
/// step`: a value's contents, a lock's holder, a queue's size, an event's flag, a
/// semaphore's value, a barrier's count. Read from the call's object (the receiver of the
/// method, at index 1 of the calling Lua thread), right after the call.
enum ObjectStateText {
    static func ofCurrentCall() -> String? {
        guard let L = Bindings.current, let call = Gate.current, let kind = call.object.kind else { return nil }
        let s = LuaState(L)
        guard s.isObject(1, of: kind) else { return nil }
        switch kind.family {
        case .lock:
            guard let o = s.boxed(1, as: LockObject.self), o.ref.id == call.object.id else { return nil }
            return holder(o.core.lock.holder, depth: kind == .rlock ? o.core.lock.depth : 1)
        case .value:
            guard let o = s.boxed(1, as: ScalarsObject.self), o.ref.id == call.object.id else { return nil }
            let x = o.core
            let shown = (0..<min(x.count, 6)).map { text(x.load($0)) }.joined(separator: ", ")
            let contents = o.isArray ? "{" + shown + (x.count > 6 ? ", ..." : "") + "}" : shown
            let lock = x.lock.holder
            return "= " + contents + (lock == 0 ? "" : ", locked by " + name(lock))
        case .queue:
            guard let o = s.boxed(1, as: QueueObject.self), o.ref.id == call.object.id else { return nil }
            let n = o.core.count
            return n == 1 ? "1 item" : "\(n) items"
        case .event:
            guard let o = s.boxed(1, as: EventObject.self), o.ref.id == call.object.id else { return nil }
            return o.core.isSet ? "set" : "clear"
        case .semaphore:
            guard let o = s.boxed(1, as: SemaphoreObject.self), o.ref.id == call.object.id else { return nil }
            return "value \(o.core.value)"
        case .barrier:
            guard let o = s.boxed(1, as: BarrierObject.self), o.ref.id == call.object.id else { return nil }
            let b = o.core
            return b.isBroken ? "broken" : "\(b.waiting) of \(b.parties) waiting"
        case .condition:
            guard let o = s.boxed(1, as: ConditionObject.self), o.ref.id == call.object.id else { return nil }
            return "lock " + holder(o.core.lock.holder, depth: 1)
        default:
            // A process is a column of its own; a pipe's or a socket's contents are bytes in
            // the kernel that only a read could count.
            return nil
        }
    }

    static func holder(_ pid: Int32, depth: Int) -> String {
        guard pid != 0 else { return "free" }
        return "held by " + name(pid) + (depth > 1 ? " (depth \(depth))" : "")
    }

    /// The run's name of process `pid` (its pid when the board does not list it).
    static func name(_ pid: Int32) -> String { RunBoard.current?.processName(pid: pid) ?? "pid \(pid)" }

    /// A scalar as Lua would print it.
    static func text(_ v: Scalar) -> String {
        switch v {
        case .int(let x): return String(x)
        case .uint(let x): return String(x)
        case .float(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) + ".0" : String(d)
        case .bool(let b): return b ? "true" : "false"
        case .byte(let b): return "'" + String(decoding: [b], as: UTF8.self) + "'"
        }
    }
}
