import CLuaShim
import IPCCore

/// An ipc object is a small userdata to Lua's collector, which cannot see the descriptors
/// and shared memory behind it: a loop that makes objects and drops them can run out of
/// descriptors before the collector runs. So when the system refuses a resource, collect
/// the garbage (closing what nothing references) and try once more.
@inline(__always)
func making<T>(_ s: LuaState, _ call: String, _ make: () throws(IPCError) -> T) throws(LuaRaise) -> T {
    do {
        return try make()
    } catch {
        guard case .resource = error else { throw LuaRaise("\(call): \(error)") }
        ipc_lua_fullgc(s.L)
        do { return try make() } catch { throw LuaRaise("\(call): \(error)") }
    }
}
