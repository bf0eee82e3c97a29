/// Every kind of IPC object a script can hold: the one list (call names, default names,
/// metatables, trace objects all derive from it).
public enum ObjectKind: Int, CaseIterable, Sendable {
    case process, connection, queue, joinableQueue, value, array, semaphore, boundedSemaphore
    case lock, rlock, event, condition, barrier, server, socket, dgram

    /// The prefix of its call names (`queue:put`) and its name in messages and `tostring`.
    public var label: String {
        switch self {
        case .process: return "process"
        case .connection: return "connection"
        case .queue: return "queue"
        case .joinableQueue: return "joinable_queue"
        case .value: return "value"
        case .array: return "array"
        case .semaphore: return "semaphore"
        case .boundedSemaphore: return "bounded_semaphore"
        case .lock: return "lock"
        case .rlock: return "rlock"
        case .event: return "event"
        case .condition: return "condition"
        case .barrier: return "barrier"
        case .server: return "server"
        case .socket: return "socket"
        case .dgram: return "dgram"
        }
    }

    /// The prefix of its default names (`queue#1`): a pipe names both of its Connections.
    public var namePrefix: String { self == .connection ? "pipe" : label }

    /// The Lua type name of its userdata (`__name`, the registry key of its metatable).
    public var typeName: String {
        switch self {
        case .process: return "ipc.Process"
        case .connection: return "ipc.Connection"
        case .queue: return "ipc.Queue"
        case .joinableQueue: return "ipc.JoinableQueue"
        case .value: return "ipc.Value"
        case .array: return "ipc.Array"
        case .semaphore: return "ipc.Semaphore"
        case .boundedSemaphore: return "ipc.BoundedSemaphore"
        case .lock: return "ipc.Lock"
        case .rlock: return "ipc.RLock"
        case .event: return "ipc.Event"
        case .condition: return "ipc.Condition"
        case .barrier: return "ipc.Barrier"
        case .server: return "ipc.Server"
        case .socket: return "ipc.Socket"
        case .dgram: return "ipc.Dgram"
        }
    }

    /// Kinds that share their methods (a joinable queue is a queue, ...).
    public var family: Family {
        switch self {
        case .process: return .process
        case .connection: return .connection
        case .queue, .joinableQueue: return .queue
        case .value, .array: return .scalars
        case .semaphore, .boundedSemaphore: return .semaphore
        case .lock, .rlock: return .lock
        case .event: return .event
        case .condition: return .condition
        case .barrier: return .barrier
        case .server, .socket, .dgram: return .socket
        }
    }

    public enum Family: Sendable { case process, connection, queue, scalars, semaphore, lock, event, condition, barrier, socket }
}

/// What the runtime knows of one IPC object: its run-wide id (the same in every process:
/// given before the fork that shares the object), its kind and its name.
public struct ObjectRef: Sendable {
    public let id: UInt32
    public let kind: ObjectKind?
    public let name: String
    /// The object whose state its calls depend on: itself, but for a condition, its lock.
    public let key: UInt32

    public init(id: UInt32, kind: ObjectKind?, name: String, key: UInt32? = nil) {
        self.id = id
        self.kind = kind
        self.name = name
        self.key = key ?? id
    }

    /// Module-level calls (`ipc.sleep`, `ipc.now`, `ipc.wait`) act on no object.
    public static let none = ObjectRef(id: 0, kind: nil, name: "")
}

/// An object that passes the gate with its calls.
public protocol GateObject: AnyObject {
    var ref: ObjectRef { get }
}
