import CLua
import CLuaShim
import CSystemShim
import IPCCore
import IPCRuntime

/// A shared value or array as Lua sees it.
typealias ScalarsObject = Boxed<SharedScalars, Void>

extension ObjectKind {
    static let value = declare("value", typeName: "ipc.Value")
    static let array = declare("array", typeName: "ipc.Array", family: .value)
}

extension Boxed where Core == SharedScalars, Local == Void {
    convenience init(_ scalars: SharedScalars, ref: ObjectRef) {
        self.init(scalars, ref: ref, local: (), fastAccess: FastAccess(shared: scalars.region.base)) { x, ref, _ in
            ref.kind == .array ? "<array \(ref.name) '\(x.type.typecode)' x\(x.count)>" : "<value \(ref.name) '\(x.type.typecode)'>"
        }
    }

    var scalars: SharedScalars { core }
    var isArray: Bool { ref.kind == .array }

    /// Would `lock` wait now?
    var lockIsTaken: Bool { scalars.lock.acquireWouldBlock }
}

enum ValueBindings: Primitive {
    /// `v.value`, `v.value = x`, `a[i]`, `a[i] = x`: where races happen, so each is a call.
    static let valueRead = FieldAccess("value read", field: "value.value", access: .read)
    static let valueWrite = FieldAccess("value write", field: valueRead.field, access: .write)
    static let arrayRead = FieldAccess("array read", access: .read)
    static let arrayWrite = FieldAccess("array write", access: .write)

    static let lockMethods: [Method<ScalarsObject>] = [
        Method("lock", takes: ["timeout"], python: "Python's acquire(block, timeout) is lock(timeout) here, and lock(false) does not block", timeout: 2, waits: { $0.lockIsTaken }, fast: .acquire) { s, x, call throws(LuaRaise) in
            switch x.scalars.lock.acquire(deadline: call.deadline) {
            case .acquired: s.push(true)
            case .timedOut: s.push(false)
            case .wouldDeadlock: throw LuaRaise("\(call.name): deadlock")  // re-entrant: cannot happen
            }
            return 1
        },
        Method("unlock", takes: [], fast: .release) { _, x, call throws(LuaRaise) in
            guard x.scalars.lock.release() else {
                throw LuaRaise("\(call.name): the lock of \(x.ref.name) is not held by this process")
            }
            return 0
        },
    ]

    /// A value's or an array's type: the lock's methods and `with_lock`, then `methods`,
    /// the fields (`fields`, `newIndex`: their calls are `accesses`), the fast paths' layout.
    static func scalarsType(_ kind: ObjectKind, _ methods: [Method<ScalarsObject>], accesses: [FieldAccess],
                            fields: ipc_swift_function, newIndex: ipc_swift_function) -> LuaType {
        var t = LuaType([kind], lockMethods + methods)
        t.fields = fields
        t.newIndex = newIndex
        t.fieldAccesses = accesses
        t.guarded = [("with_lock", "lock", "unlock")]
        t.fastLayout = scalarsLayout
        return t
    }

    static let valueType = scalarsType(.value, [
        Method("add", takes: ["n"], preview: .result, fast: .valueAdd) { s, v, call throws(LuaRaise) in
            try add(s, v, element: 0, deltaAt: 2, orOne: false, call.name)
        },
        Method("compare_swap", takes: ["old", "new"]) { s, v, call throws(LuaRaise) in
            let type = v.scalars.type
            let new = try scalar(s, 3, for: type, call.name)
            // An `old` that the type cannot hold can never match.
            let old: UInt64
            do throws(LuaRaise) { old = try scalar(s, 2, for: type, call.name) } catch {
                if s.type(2) == LUA_TNUMBER || s.type(2) == LUA_TBOOLEAN || s.type(2) == LUA_TSTRING { s.push(false); return 1 }
                throw error
            }
            switch v.scalars.compareSwap(0, oldBits: old, newBits: new) {
            case .success(let swapped): s.push(swapped); return 1
            case .failure(let e): throw LuaRaise("\(call.name): \(e)")
            }
        },
    ], accesses: [valueRead, valueWrite], fields: { luaEntry($0, valueIndex) }, newIndex: { luaEntry($0, valueNewIndex) })

    static let arrayType: LuaType = {
        var t = scalarsType(.array, [
            Method("totable", takes: [], access: .read) { s, a, _ throws(LuaRaise) in
                let n = a.scalars.count
                try s.newTable(array: Int32(clamping: n))
                for k in 0..<n {
                    try push(s, a.scalars.load(k))
                    try s.rawSet(-2, index: Int64(k + 1))
                }
                return 1
            },
            // `a:add(i [, n=1])`: atomic add on element i, the new value.
            Method("add", takes: ["i", "n"], preview: .result) { s, a, call throws(LuaRaise) in
                guard let k = try element(s, a, 2, call.name, reading: false) else {
                    throw LuaRaise("\(call.name): index must be an integer, got \(s.typeName(2))")
                }
                return try add(s, a, element: k, deltaAt: 3, orOne: true, call.name)
            },
        ], accesses: [arrayRead, arrayWrite], fields: { luaEntry($0, arrayIndex) }, newIndex: { luaEntry($0, arrayNewIndex) })
        t.length = { luaEntry($0, arrayLength) }
        return t
    }()

    /// `v:add(n)` and `a:add(i [, n])`: adds the number at `i` (1 when `orOne` and there is
    /// none) to element `k` atomically, and pushes the new value.
    static func add(_ s: LuaState, _ x: ScalarsObject, element k: Int, deltaAt i: Int32, orOne: Bool,
                    _ call: String) throws(LuaRaise) -> Int32 {
        let delta: Scalar
        if orOne && s.isNoneOrNil(i) { delta = .int(1) } else if let n = s.integer(i) { delta = .int(n) } else if let d = s.number(i) { delta = .float(d) } else {
            throw LuaRaise("\(call): expected a number, got \(s.typeName(i))")
        }
        switch x.scalars.add(k, delta) {
        case .success(let r): try push(s, r); return 1
        case .failure(let e): throw LuaRaise("\(call): \(e)")
        }
    }

    static func scalarsLayout(_: ObjectKind) -> FastPath.Layout {
        FastPath.Layout(lock: MemoryLayout<ipc_scalar_header>.offset(of: \.lock)!,
                        name: MemoryLayout<ipc_scalar_header>.offset(of: \.name)!, recursive: true)
    }

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
        switch SharedScalars.encode(value, as: type) {
        case .success(let bits): return bits
        case .failure(let e): throw LuaRaise("\(call): \(e)")
        }
    }

    static func push(_ s: LuaState, _ v: Scalar) throws(LuaRaise) {
        switch v {
        case .int(let x): s.push(x)
        case .uint(let x): if x <= UInt64(Int64.max) { s.push(Int64(x)) } else { s.push(Double(x)) }
        case .float(let d): s.push(d)
        case .bool(let b): s.push(b)
        case .byte(var b): try s.push(bytes: &b, count: 1)
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

    static let functions = [
        /// `ipc.value(typecode [, init [, options]])`
        Function("value", takes: ["typecode", "init", "options"], python: "Python's Value(typecode, init, lock=...) is ipc.value(typecode, init) here: every value has its own lock (x:lock(), x:with_lock())") { s, call throws(LuaRaise) in
            let type = try parseType(s, call.name)
            let ref = try s.newObject(.value, nameOption: 3, call.name)
            let scalars = try making(s, call.name) { () throws(IPCError) in try SharedScalars(type: type, count: 1, name: ref.name) }
            if !s.isNoneOrNil(2) { scalars.store(0, bits: try scalar(s, 2, for: type, call.name)) }
            try s.push(object: ScalarsObject(scalars, ref: ref), kind: .value)
            return 1
        },
        /// `ipc.array(typecode, init_or_length [, options])`
        Function("array", takes: ["typecode", "init", "options"], python: "Python's Array(typecode, init, lock=...) is ipc.array(typecode, init) here: every array has its own lock (x:lock(), x:with_lock())") { s, call throws(LuaRaise) in
            let type = try parseType(s, call.name)
            let ref = try s.newObject(.array, nameOption: 3, call.name)
            var count = 0
            switch s.type(2) {
            case LUA_TNUMBER:
                let n = try s.integerArgument(2, call.name, "length")
                guard n >= 0 else { throw LuaRaise("\(call.name): length must not be negative, got \(n)") }
                guard n <= Int64(Int.max / 16) else { throw LuaRaise("\(call.name): cannot allocate \(n) elements") }
                count = Int(n)
            case LUA_TTABLE:
                count = s.rawLength(2)
            case LUA_TSTRING where type == .char:
                count = s.bytes(2)!.count
            default:
                throw LuaRaise("\(call.name): expected a table of values or a length, got \(s.typeName(2))")
            }
            let scalars = try making(s, call.name) { () throws(IPCError) in try SharedScalars(type: type, count: count, name: ref.name) }
            if s.type(2) == LUA_TTABLE {
                for k in 0..<count {
                    s.rawGet(2, index: Int64(k + 1))
                    let bits = try scalar(s, -1, for: type, "\(call.name): element \(k + 1)")
                    s.pop()
                    scalars.store(k, bits: bits)
                }
            } else if s.type(2) == LUA_TSTRING {
                let b = s.bytes(2)!
                for k in 0..<count { scalars.store(k, bits: UInt64(b[k])) }
            }
            try s.push(object: ScalarsObject(scalars, ref: ref), kind: .array)
            return 1
        },
    ]

    // MARK: - Value fields

    /// `__index` for what is not a method: `value` (a call), `typecode`, `name`.
    static func valueIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let v = s.object(1, .value, as: ScalarsObject.self) else { throw s.wrongFieldSelf(valueRead.field, "value") }
        if s.key(2) == Keys.value {
            return try valueRead.pass(s, v.ref, preview: .result) { _ throws(LuaRaise) in try push(s, v.scalars.load(0)); return 1 }
        }
        return try pushPlainField(s, of: v)
    }

    /// The fields that are not IPC calls, which values and arrays share: `typecode` and
    /// `name` at key 2 (nil for any other key).
    static func pushPlainField(_ s: LuaState, of x: ScalarsObject) throws(LuaRaise) -> Int32 {
        switch s.key(2) {
        case Keys.typecode: try s.push(x.scalars.type.typecode)
        case Keys.name: try s.push(x.ref.name)
        default: s.pushNil()
        }
        return 1
    }

    static func valueNewIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let v = s.object(1, .value, as: ScalarsObject.self) else { throw s.wrongFieldSelf(valueWrite.field, "value") }
        guard s.key(2) == Keys.value else {
            throw LuaRaise("value: cannot set field '\(s.string(2) ?? s.typeName(2))' (only value can be set)")
        }
        let bits = try scalar(s, 3, for: v.scalars.type, valueWrite.field)
        return try valueWrite.pass(s, v.ref, preview: .argument(3)) { _ in v.scalars.store(0, bits: bits); return 0 }
    }

    // MARK: - Array elements

    /// The element index of the key at `i`, 0-based: nil when the key is not a number.
    /// Outside 1..#a, a read finds nothing (nil, as a Lua table: `ipairs` stops) and a
    /// write is an error.
    static func element(_ s: LuaState, _ a: ScalarsObject, _ i: Int32, _ call: String, reading: Bool) throws(LuaRaise) -> Int? {
        guard s.type(i) == LUA_TNUMBER else { return nil }
        guard let k = s.integer(i) else {
            if reading { return -1 }
            throw LuaRaise("\(call): index must be an integer, got \(s.number(i)!)")
        }
        guard k >= 1 && k <= Int64(a.scalars.count) else {
            if reading { return -1 }
            throw LuaRaise("\(call): index \(k) is outside 1..\(a.scalars.count)")
        }
        return Int(k - 1)
    }

    static func arrayIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let a = s.object(1, .array, as: ScalarsObject.self) else { throw s.wrongFieldSelf("array", "array") }
        if let k = try element(s, a, 2, "array", reading: true) {
            return try arrayRead.pass(s, a.ref, preview: .result) { _ throws(LuaRaise) in
                if k < 0 { s.pushNil() } else { try push(s, a.scalars.load(k)) }
                return 1
            }
        }
        guard s.type(2) == LUA_TSTRING else {
            throw LuaRaise("array: index must be an integer, got \(s.typeName(2))")
        }
        return try pushPlainField(s, of: a)
    }

    static func arrayNewIndex(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let a = s.object(1, .array, as: ScalarsObject.self) else { throw s.wrongFieldSelf("array", "array") }
        guard let k = try element(s, a, 2, "array", reading: false) else {
            throw LuaRaise("array: index must be an integer, got \(s.typeName(2))")
        }
        let bits = try scalar(s, 3, for: a.scalars.type, "array[\(k + 1)]")
        return try arrayWrite.pass(s, a.ref, preview: .argument(3)) { _ in a.scalars.store(k, bits: bits); return 0 }
    }

    static func arrayLength(_ s: LuaState) throws(LuaRaise) -> Int32 {
        guard let a = s.object(1, .array, as: ScalarsObject.self) else { throw s.wrongFieldSelf("array", "array") }
        s.push(Int64(a.scalars.count))
        return 1
    }
}
