import CLua
import CLuaShim
import IPCCore
import IPCRuntime

/// A shared value or array as Lua sees it.
final class ScalarsObject: LuaDescribable {
    let scalars: SharedScalars
    let isArray: Bool
    init(_ scalars: SharedScalars, isArray: Bool) {
        self.scalars = scalars
        self.isArray = isArray
    }
    var label: String { isArray ? "array" : "value" }
    var luaDescription: String {
        isArray ? "<array \(scalars.name) '\(scalars.type.typecode)' x\(scalars.count)>"
            : "<value \(scalars.name) '\(scalars.type.typecode)'>"
    }
}

enum ValueBindings {
    static let lockMethods: [(name: String, function: ipc_swift_function)] = [
        ("lock", { luaEntry($0, lock) }),
        ("unlock", { luaEntry($0, unlock) }),
    ]

    static let valueType: LuaType = {
        let t = LuaType(.value, "ipc.Value", label: "value", methods: lockMethods + [
            ("add", { luaEntry($0, add) }),
            ("compare_swap", { luaEntry($0, compareSwap) }),
        ])
        t.index = { luaEntry($0, valueIndex) }
        t.newIndex = { luaEntry($0, valueNewIndex) }
        t.guardedCalls = [("with_lock", "lock", "unlock")]
        return t
    }()

    static let arrayType: LuaType = {
        let t = LuaType(.array, "ipc.Array", label: "array", methods: lockMethods + [
            ("totable", { luaEntry($0, totable) }),
            ("add", { luaEntry($0, arrayAdd) }),
        ])
        t.index = { luaEntry($0, arrayIndex) }
        t.newIndex = { luaEntry($0, arrayNewIndex) }
        t.length = { luaEntry($0, arrayLength) }
        t.guardedCalls = [("with_lock", "lock", "unlock")]
        return t
    }()

    static let types = [valueType, arrayType]

    // MARK: - Conversions

    /// The Lua value at `i` as an element, or the reason it cannot be one.
    static func scalar(_ s: LuaState, _ i: Int32, for type: ScalarType, _ call: String) throws(LuaRaise) -> UInt64 {
        let value: Scalar
        switch s.type(i) {
        case LUA_TNUMBER:
            if let v = s.integer(i) { value = .int(v) } else { value = .float(s.number(i)!) }
        case LUA_TBOOLEAN where type == .bool:
            value = .bool(s.boolean(i))
        case LUA_TSTRING where type == .char:
            let b = s.bytes(i)!
            guard b.count == 1 else { throw LuaRaise("\(call): typecode 'c' holds one byte, got a string of \(b.count)") }
            value = .byte(b[0])
        default:
            throw LuaRaise("\(call): typecode '\(type.typecode)' cannot hold \(s.typeName(i) == "no value" ? "nothing" : "a " + s.typeName(i))")
        }
        switch ScalarsObject.encode(value, type) {
        case .success(let bits): return bits
        case .failure(let e): throw LuaRaise("\(call): \(e)")
        }
    }

    static func push(_ s: LuaState, _ v: Scalar) {
        switch v {
        case .int(let x): s.push(x)
        case .uint(let x): if x <= UInt64(Int64.max) { s.push(Int64(x)) } else { s.push(Double(x)) }
        case .float(let d): s.push(d)
        case .bool(let b): s.push(b)
        case .byte(var b): s.push(bytes: &b, count: 1)
        }
    }

    static func parseType(_ s: LuaState, _ call: String) throws(LuaRaise) -> ScalarType {
        guard let code = s.string(1) else {
            throw LuaRaise("\(call): expected a typecode (one of b B h H i I l L q Q f d c ?), got \(s.typeName(1))")
        }
        guard let type = ScalarType(typecode: code) else {
            throw LuaRaise("\(call): bad typecode '\(code)' (expected one of b B h H i I l L q Q f d c ?)")
        }
        return type
    }

    // MARK: - Constructors

    /// `ipc.value(typecode [, init [, options]])`
    static func value(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let call = "ipc.value"
        let type = try parseType(s, call)
        let name = try s.nameOption(3, call) ?? RunBoard.current?.nextName(.value) ?? "value"
        let scalars = try making(s, call) { () throws(IPCError) in try SharedScalars(type: type, count: 1, name: name) }
        if !s.isNoneOrNil(2) { scalars.store(0, bits: try scalar(s, 2, for: type, call)) }
        s.push(object: ScalarsObject(scalars, isArray: false), type: valueType)
        return 1
    }

    /// `ipc.array(typecode, init_or_length [, options])`
    static func array(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let call = "ipc.array"
        let type = try parseType(s, call)
        let name = try s.nameOption(3, call) ?? RunBoard.current?.nextName(.array) ?? "array"
        var count = 0
        switch s.type(2) {
        case LUA_TNUMBER:
            let n = try s.integerArgument(2, call, "length")
            guard n >= 0 else { throw LuaRaise("\(call): length must not be negative, got \(n)") }
            guard n <= Int64(Int.max / 16) else { throw LuaRaise("\(call): cannot allocate \(n) elements") }
            count = Int(n)
        case LUA_TTABLE:
            count = s.rawLength(2)
        case LUA_TSTRING where type == .char:
            count = s.bytes(2)!.count
        default:
            throw LuaRaise("\(call): expected a table of values or a length, got \(s.typeName(2))")
        }
        let scalars = try making(s, call) { () throws(IPCError) in try SharedScalars(type: type, count: count, name: name) }
        if s.type(2) == LUA_TTABLE {
            for k in 0..<count {
                s.rawGet(2, index: Int64(k + 1))
                let bits = try scalar(s, -1, for: type, "\(call): element \(k + 1)")
                s.pop()
                scalars.store(k, bits: bits)
            }
        } else if s.type(2) == LUA_TSTRING {
            let b = s.bytes(2)!
            for k in 0..<count { scalars.store(k, bits: UInt64(b[k])) }
        }
        s.push(object: ScalarsObject(scalars, isArray: true), type: arrayType)
        return 1
    }

    // MARK: - Value fields

    static func valueIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let v = try s.receiver(.value, "value", as: ScalarsObject.self)
        let key = s.key(2)
        if key == Keys.value { push(s, v.scalars.load(0)); return 1 }
        if s.pushMethod() { return 1 }
        switch key {
        case Keys.typecode: s.push(v.scalars.type.typecode)
        case Keys.name: s.push(v.scalars.name)
        default: s.pushNil()
        }
        return 1
    }

    static func valueNewIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let v = try s.receiver(.value, "value", as: ScalarsObject.self)
        guard s.key(2) == Keys.value else {
            throw LuaRaise("value: cannot set field '\(s.string(2) ?? s.typeName(2))' (only value can be set)")
        }
        v.scalars.store(0, bits: try scalar(s, 3, for: v.scalars.type, "value.value"))
        return 0
    }

    static func add(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let v = try s.receiver(.value, "value:add", as: ScalarsObject.self)
        let delta: Scalar
        if let i = s.integer(2) { delta = .int(i) } else if let d = s.number(2) { delta = .float(d) } else {
            throw LuaRaise("value:add: expected a number, got \(s.typeName(2))")
        }
        Calls.enter("value:add", v.scalars.name)
        switch v.scalars.add(0, delta) {
        case .success(let r):
            push(s, r)
            if Trace.isOn { Traced.call(s, "value:add", v.scalars.name, value: -1) }
            return 1
        case .failure(let e): throw LuaRaise("value:add: \(e)")
        }
    }

    /// `a:add(i [, n=1])`: atomic add on element i (addition), the new value.
    static func arrayAdd(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let a = try s.receiver(.array, "array:add", as: ScalarsObject.self)
        guard let k = try element(s, a, 2, "array:add") else {
            throw LuaRaise("array:add: index must be an integer, got \(s.typeName(2))")
        }
        let delta: Scalar
        if s.isNoneOrNil(3) { delta = .int(1) } else if let i = s.integer(3) { delta = .int(i) } else if let d = s.number(3) { delta = .float(d) } else {
            throw LuaRaise("array:add: expected a number, got \(s.typeName(3))")
        }
        switch a.scalars.add(k, delta) {
        case .success(let r): push(s, r); return 1
        case .failure(let e): throw LuaRaise("array:add: \(e)")
        }
    }

    static func compareSwap(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let v = try s.receiver(.value, "value:compare_swap", as: ScalarsObject.self)
        let type = v.scalars.type
        let new = try scalar(s, 3, for: type, "value:compare_swap")
        // An `old` that the type cannot hold can never match.
        let old: UInt64
        do { old = try scalar(s, 2, for: type, "value:compare_swap") } catch {
            if s.type(2) == LUA_TNUMBER || s.type(2) == LUA_TBOOLEAN || s.type(2) == LUA_TSTRING { s.push(false); return 1 }
            throw error
        }
        switch v.scalars.compareSwap(0, oldBits: old, newBits: new) {
        case .success(let swapped): s.push(swapped); return 1
        case .failure(let e): throw LuaRaise("value:compare_swap: \(e)")
        }
    }

    // MARK: - Array elements

    static func element(_ s: LuaState, _ a: ScalarsObject, _ i: Int32, _ call: String = "array") throws(LuaRaise) -> Int? {
        guard s.type(i) == LUA_TNUMBER else { return nil }
        guard let k = s.integer(i) else {
            throw LuaRaise("\(call): index must be an integer, got \(s.number(i)!)")
        }
        guard k >= 1 && k <= Int64(a.scalars.count) else {
            throw LuaRaise("\(call): index \(k) is outside 1..\(a.scalars.count)")
        }
        return Int(k - 1)
    }

    static func arrayIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let a = try s.receiver(.array, "array", as: ScalarsObject.self)
        if let k = try element(s, a, 2) {
            push(s, a.scalars.load(k))
            return 1
        }
        guard s.type(2) == LUA_TSTRING else {
            throw LuaRaise("array: index must be an integer, got \(s.typeName(2))")
        }
        if s.pushMethod() { return 1 }
        switch s.key(2) {
        case Keys.typecode: s.push(a.scalars.type.typecode)
        case Keys.name: s.push(a.scalars.name)
        default: s.pushNil()
        }
        return 1
    }

    static func arrayNewIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let a = try s.receiver(.array, "array", as: ScalarsObject.self)
        guard let k = try element(s, a, 2) else {
            throw LuaRaise("array: index must be an integer, got \(s.typeName(2))")
        }
        a.scalars.store(k, bits: try scalar(s, 3, for: a.scalars.type, "array[\(k + 1)]"))
        return 0
    }

    static func arrayLength(_ s: LuaState) throws(LuaRaise) -> Int32 {
        s.push(Int64(try s.receiver(.array, "array", as: ScalarsObject.self).scalars.count))
        return 1
    }

    static func totable(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let a = try s.receiver(.array, "array:totable", as: ScalarsObject.self)
        let n = a.scalars.count
        s.newTable(array: Int32(clamping: n))
        for k in 0..<n {
            push(s, a.scalars.load(k))
            s.rawSet(-2, index: Int64(k + 1))
        }
        return 1
    }

    // MARK: - The object's lock

    static func lock(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let x = try s.receiver(family: .scalars, "value:lock", as: ScalarsObject.self)
        let call = x.isArray ? "array:lock" : "value:lock"
        let deadline = try s.deadline(2, call)
        Calls.enter(call, x.scalars.name)
        let outcome = x.scalars.lock.acquire(deadline: deadline, during: call)
        if Trace.isOn { Traced.call(s, call, x.scalars.name, result: outcome == .acquired ? "true" : "false") }
        switch outcome {
        case .acquired: s.push(true)
        case .timedOut: s.push(false)
        case .wouldDeadlock: throw LuaRaise("\(call): deadlock")  // re-entrant: cannot happen
        }
        return 1
    }

    static func unlock(_ s: LuaState) throws(LuaRaise) -> Int32 {
        let x = try s.receiver(family: .scalars, "value:unlock", as: ScalarsObject.self)
        let call = x.isArray ? "array:unlock" : "value:unlock"
        Calls.enter(call, x.scalars.name)
        defer { if Trace.isOn { Traced.call(s, call, x.scalars.name) } }
        guard x.scalars.lock.release() else {
            throw LuaRaise("\(x.label):unlock: the lock of \(x.scalars.name) is not held by this process")
        }
        return 0
    }
}

extension ScalarsObject {
    static func encode(_ value: Scalar, _ type: ScalarType) -> Result<UInt64, IPCError> {
        SharedScalars.encode(value, as: type)
    }
}
