import CLua
import Glibc
import IPCCore
import IPCRuntime

/// Who holds what the call in progress waits for, read from the call's object: the
/// receiver of the method being called, at index 1 of the calling Lua thread. The board
/// asks when a call parks (and, under a controlled scheduler, when a call is found to
/// wait at the gate), so that a deadlock's report can name its wait-for cycle.
enum AwaitedHolders {
    static func ofCurrentCall() -> RunBoard.Awaited {
        guard let L = Bindings.current, let call = Gate.current, let kind = call.object.kind else { return .unknown }
        let s = LuaState(L)
        guard s.isObject(1, of: kind) else { return .unknown }
        switch kind.family {
        case .lock:
            guard let o = s.boxed(1, as: LockObject.self), o.ref.id == call.object.id else { return .unknown }
            return owner(o.core.lock.holder)
        case .value:
            guard let o = s.boxed(1, as: ScalarsObject.self), o.ref.id == call.object.id else { return .unknown }
            return owner(o.core.lock.holder)
        case .condition:
            // Its acquire waits for the lock's owner; its wait, for a notify from anybody.
            guard call.site.name.hasSuffix(":acquire"), let o = s.boxed(1, as: ConditionObject.self),
                  o.ref.id == call.object.id else { return .unknown }
            return owner(o.core.lock.holder)
        case .connection:
            guard let o = s.boxed(1, as: ConnectionObject.self), o.ref.id == call.object.id, o.core.readFD >= 0 else { return .unknown }
            var st = stat()
            guard fstat(o.core.readFD, &st) == 0, st.st_mode & S_IFMT == S_IFIFO else { return .unknown }
            return .writeEnd(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        default:
            // A join is answered by the runtime; nobody owns a queue's items, an event, a
            // barrier's other parties or a semaphore's units (any process may release one).
            return .unknown
        }
    }

    static func owner(_ pid: Int32) -> RunBoard.Awaited { pid == 0 ? .unknown : .processes([pid]) }
}
