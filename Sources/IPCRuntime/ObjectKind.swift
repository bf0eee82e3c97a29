/// A kind of IPC object a script can hold (`queue`, `lock`, ...), with its one record:
/// the registry of kinds. Call names, default names, metatables and trace objects all
/// derive from the record. A kind is declared once, by the file that binds it (the
/// runtime declares `process`); its id is given at its declaration, before the first
/// fork, so it is the same in every process of a run (as a call site's is).
public struct ObjectKind: Hashable, Sendable {
    public let rawValue: Int

    /// What a kind is.
    public struct Record: Sendable {
        /// The prefix of its call names (`queue:put`) and its name in messages and `tostring`.
        public let label: String
        /// The Lua type name of its userdata (`__name`, the registry key of its metatable).
        public let typeName: String
        /// The prefix of its default names (`queue#1`): a pipe names both of its Connections.
        public let namePrefix: String
        /// The kind whose methods it shares (a joinable queue's is `queue`); itself if none.
        public let family: Int
        /// Its waits may be ended by peers the run cannot tell apart (sockets): the
        /// controlled scheduler makes them all depend on one another.
        public let hasUnknownPeers: Bool
    }

    /// Room for kinds: the run board counts default names per kind in 32 words
    /// (`ipc_run_header.name_counters`), the fast paths know 64 metatables.
    public static let capacity = 32

    /// Declares a kind (once per label: declaring it again returns the same kind).
    public static func declare(_ label: String, typeName: String, family: ObjectKind? = nil,
                               namePrefix: String? = nil, hasUnknownPeers: Bool = false) -> ObjectKind {
        if let i = records.firstIndex(where: { $0.label == label }) { return ObjectKind(id: i) }
        let id = records.count
        precondition(id < capacity, "more than \(capacity) kinds of IPC object")
        Execution.current.kinds = records + [Record(label: label, typeName: typeName, namePrefix: namePrefix ?? label,
                                                    family: family?.rawValue ?? id, hasUnknownPeers: hasUnknownPeers)]
        return ObjectKind(id: id)
    }

    init(id: Int) { rawValue = id }

    /// The records of the kinds declared so far, by id: the runtime's `process` first.
    static var records: [Record] { Execution.current.kinds ?? [processRecord] }
    static let processRecord = Record(label: "process", typeName: "ipc.Process", namePrefix: "process", family: 0,
                                      hasUnknownPeers: false)

    /// The kind of id `rawValue`, if one was declared.
    @inline(__always)
    public init?(rawValue: Int) {
        guard rawValue >= 0 && rawValue < (Execution.current.kinds?.count ?? 1) else { return nil }
        self.rawValue = rawValue
    }

    /// Every kind declared so far, in the order of their ids.
    public static var all: [ObjectKind] { records.indices.map { ObjectKind(id: $0) } }

    public var record: Record { ObjectKind.records[rawValue] }
    public var label: String { record.label }
    public var typeName: String { record.typeName }
    public var namePrefix: String { record.namePrefix }
    /// Kinds that share their methods have one family (a joinable queue is a queue, ...).
    public var family: ObjectKind { ObjectKind(id: record.family) }

    /// The runtime's own kind, its processes: the first record of the registry, there
    /// from the start.
    public static let process = ObjectKind(id: 0)
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
