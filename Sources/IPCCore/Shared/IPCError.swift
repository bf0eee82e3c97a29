/// A failure of an IPC operation that is not one of its ordinary outcomes (timeouts and
/// closed ends are results, not errors). The bindings prefix the call's name.
public enum IPCError: Error, Equatable, CustomStringConvertible {
    /// The caller used the object wrongly (task_done too often, a lock not held, ...).
    case misuse(String)
    /// The system refused a resource: memory, descriptors, processes.
    case resource(String)
    /// Bytes that are not a valid message.
    case malformed(String)
    /// A system call failed unexpectedly.
    case system(String)

    public var description: String {
        switch self {
        case .misuse(let m), .resource(let m), .malformed(let m), .system(let m): return m
        }
    }
}
