import CLua
import CLuaShim
import IPCCore
import IPCRuntime

/// `ipc.test`: small helpers for scenario tests. They are pure Lua logic (deep equality,
/// pcall, error levels), so they are written in Lua, compiled once when the module opens.
enum TestHelpers {
    /// Set by `ipc.test.skip(reason)`: the main script's error is a skip, not a failure.
    static var skipReason: String? {
        get { LuaExecution.current.skipReason }
        set { LuaExecution.current.skipReason = newValue }
    }

    static let source = #"""
    local _, skip_marker, seed = ...
    local test = {}

    local function show(v, depth)
      depth = depth or 0
      if type(v) == "string" then return string.format("%q", v) end
      if type(v) ~= "table" or depth > 2 then return tostring(v) end
      local parts, n = {}, 0
      for k, x in pairs(v) do
        n = n + 1
        if n > 8 then parts[#parts + 1] = "..." break end
        parts[#parts + 1] = "[" .. show(k, 3) .. "] = " .. show(x, depth + 1)
      end
      return "{" .. table.concat(parts, ", ") .. "}"
    end

    local function same(a, b, seen)
      if a == b then return true end
      if type(a) == "number" and type(b) == "number" then
        return a ~= a and b ~= b and math.type(a) == math.type(b)
      end
      if type(a) ~= "table" or type(b) ~= "table" then return false end
      seen = seen or {}
      if seen[a] == b then return true end
      seen[a] = b
      for k, v in pairs(a) do if not same(v, b[k], seen) then return false end end
      for k in pairs(b) do if a[k] == nil then return false end end
      return true
    end

    --- ipc.test.eq(actual, expected [, message]): deep equality (tables by content,
    --- NaN equal to NaN); fails with the caller's file:line.
    function test.eq(actual, expected, message)
      if not same(actual, expected) then
        error((message and (message .. ": ") or "") ..
              "expected " .. show(expected) .. ", got " .. show(actual), 2)
      end
      return actual
    end

    --- ipc.test.raises(fn [, pattern]): fn must raise (an error matching the Lua pattern,
    --- if given); returns the error.
    function test.raises(fn, pattern)
      if type(fn) ~= "function" then
        error("ipc.test.raises: expected a function, got " .. type(fn), 2)
      end
      local ok, err = pcall(fn)
      if ok then error("expected an error" .. (pattern and (" matching " .. show(pattern)) or "") .. ", got none", 2) end
      if pattern and not tostring(err):find(pattern) then
        error("expected an error matching " .. show(pattern) .. ", got " .. show(tostring(err)), 2)
      end
      return err
    end

    --- ipc.test.skip(reason): ends the test as skipped.
    function test.skip(reason)
      skip_marker(tostring(reason or "skipped"))
      error("skipped: " .. tostring(reason or ""), 2)
    end

    --- ipc.test.seed(): the run's seed (`--seed`, which `ipcplay test` always sets and
    --- prints in its replay line): draw a test's randomness from it, and a failure replays.
    function test.seed()
      return seed()
    end

    return test
    """#

    /// The run's seed: its schedule's under a controlled scheduler, else `--seed`'s.
    static let seed: ipc_swift_function = { L in
        lua_pushinteger(L, Int64(bitPattern: Schedule.current?.seed ?? Runtime.this.options.seed ?? 0))
        return 1
    }

    static let markSkipped: ipc_swift_function = { L in
        luaEntry(L) { s throws(LuaRaise) in
            skipReason = s.string(1) ?? "skipped"
            return 0
        }
    }

    /// Pushes the `ipc.test` table (an empty one if the chunk fails, which would be a bug).
    static func push(_ s: LuaState) throws(LuaRaise) {
        try s.push(function: markSkipped)
        try s.push(function: seed)
        if try !LuaChunks.push(source, name: "=ipc.test", s, arguments: 2) { try s.newTable() }
    }
}
