-- The misuse matrix: every function and method of the contract is called with every wrong
-- kind of argument (nil, boolean, number, NaN, inf, negative, string, table, function,
-- coroutine, another ipc object, a missing self); a wrong one must raise a Lua error whose
-- message starts with the call's name, and nothing may crash the host. (A value that is
-- right for a parameter is tried too, unless it would make the call wait for ever.)
local ipc = require("ipc")
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

-- The wrong kinds, with names for messages.
local other = ipc.event()
local values = {
  {"nil", nil}, {"true", true}, {"false", false}, {"zero", 0}, {"one", 1}, {"negative", -1}, {"fraction", 1.5},
  {"NaN", 0/0}, {"inf", math.huge}, {"-inf", -math.huge}, {"huge integer", math.maxinteger}, {"string", "x"},
  {"empty string", ""}, {"table", {}}, {"function", print}, {"coroutine", coroutine.create(print)},
  {"file", io.stdout}, {"ipc object", other},
}

-- Which values a parameter accepts; nil means "accepted but would block or has effects:
-- do not call".
local function number(v) return type(v) == "number" and v == v end
local kinds = {
  any = function(v) return type(v) ~= "function" and type(v) ~= "thread" and type(v) ~= "userdata" end,
  timeout = function(v)
    if v == nil or v == true or v == math.huge then return nil end      -- waits for ever
    if type(v) == "boolean" then return true end
    if number(v) then return v <= 0 and true or nil end                   -- positive: slow
    return false
  end,
  posint = function(v) return math.type(v) == "integer" and v >= 1 and v <= 1 << 20 end,
  optposint = function(v) return v == nil or (math.type(v) == "integer" and v >= 1 and v <= 1 << 20) end,
  count = function(v)                                           -- maxsize, notify(n), backlog
    if v == nil then return true end
    if math.type(v) == "integer" then return v >= 0 and v <= 65535 or (v >= 0 and nil) end
    return false
  end,
  semcount = function(v)
    if v == nil then return true end
    if math.type(v) == "integer" then return v >= 0 and v <= 0x7fffffff end
    return false
  end,
  length = function(v)                                          -- ipc.array's second argument
    if type(v) == "table" then return true end
    if math.type(v) == "integer" then return v >= 0 and v <= 1000 end
    return false
  end,
  string = function(v) return type(v) == "string" and nil end,   -- strings: not tried (paths)
  optstring = function(v) if v == nil then return true end return type(v) == "string" and nil end,
  ["function"] = function(v) return type(v) == "function" and nil end,
  options = function(v) return v == nil or (type(v) == "table" and nil) end,
  bool = function(v) return v == nil or type(v) == "boolean" end,
  seconds = function(v) return number(v) and v >= 0 and v < 1 and true or (number(v) and v >= 0 and nil) end,
  typecode = function() return false end,                      -- none of the values is a typecode
  lock = function(v) return v == nil or (type(v) == "table" and nil) end,
  handle = function() return false end,
  list = function(v) return type(v) == "table" end,
  element = function(v) return math.type(v) == "integer" and v >= -128 and v <= 127 end,
  index = function(v) return math.type(v) == "integer" and v >= 1 and v <= 4 end,
  delta = function(v) return math.type(v) == "integer" and v >= -10 and v <= 10 end,
  optdelta = function(v) return v == nil or (math.type(v) == "integer" and v >= -10 and v <= 10) end,
  none = function(v) return v == nil end,
}

-- Fresh objects, made so that accepted calls return at once.
local made = 0
local function objects()
  made = made + 1
  local r, w = ipc.pipe(false)
  local a, b = ipc.pipe()
  local sa, sb = ipc.unix.socketpair()
  local srv = ipc.unix.listen(dir .. "/srv" .. made .. ".sock")
  local dg = ipc.unix.dgram(dir .. "/dg" .. made .. ".sock")
  local jq = ipc.joinable_queue()
  local ev = ipc.event()
  ev:set()
  return {
    queue = ipc.queue(), joinable_queue = jq, connection = a, receiver = r, sender = w, b = b,
    value = ipc.value("b", 1), array = ipc.array("b", 4), semaphore = ipc.semaphore(1000000),
    bounded_semaphore = ipc.bounded_semaphore(5), lock = ipc.lock(), rlock = ipc.rlock(), event = ev,
    condition = ipc.condition(), barrier = ipc.barrier(1), socket = sa, peer = sb, server = srv, dgram = dg,
    process = ipc.process{target = function() end},
  }
end

-- name, how to call, parameter kinds
local functions = {
  {"ipc.spawn", ipc.spawn, {"function"}},
  {"ipc.process", ipc.process, {"list"}},
  {"ipc.sleep", ipc.sleep, {"seconds"}},
  {"ipc.pipe", ipc.pipe, {"bool", "options"}},
  {"ipc.queue", ipc.queue, {"count", "options"}},
  {"ipc.joinable_queue", ipc.joinable_queue, {"count", "options"}},
  {"ipc.value", ipc.value, {"typecode"}},
  {"ipc.array", function(x, y) return ipc.array("b", x, y) end, {"length", "options"}, "ipc.array"},
  {"ipc.semaphore", ipc.semaphore, {"semcount", "options"}},
  {"ipc.bounded_semaphore", ipc.bounded_semaphore, {"semcount", "options"}},
  {"ipc.lock", ipc.lock, {"options"}},
  {"ipc.rlock", ipc.rlock, {"options"}},
  {"ipc.event", ipc.event, {"options"}},
  {"ipc.condition", ipc.condition, {"lock"}},
  {"ipc.barrier", ipc.barrier, {"posint", "options"}},
  {"ipc.wait", ipc.wait, {"list", "timeout"}},
  {"ipc.unix.listen", ipc.unix.listen, {"string", "count"}},
  {"ipc.unix.connect", ipc.unix.connect, {"string", "timeout"}},
  {"ipc.unix.dgram", ipc.unix.dgram, {"optstring", "options"}},
}

-- object key, method, parameter kinds (after self)
local methods = {
  {"process", "start", {}}, {"process", "join", {"timeout"}}, {"process", "is_alive", {}},
  {"process", "terminate", {}}, {"process", "kill", {}},
  {"connection", "send", {"any"}}, {"receiver", "recv", {"timeout"}}, {"receiver", "poll", {"timeout"}},
  {"sender", "send_bytes", {"string"}}, {"receiver", "recv_bytes", {"timeout"}}, {"connection", "close", {}},
  {"queue", "put", {"any", "timeout"}}, {"queue", "get", {"timeout"}}, {"queue", "put_nowait", {"any"}},
  {"queue", "get_nowait", {}}, {"queue", "qsize", {}}, {"queue", "empty", {}}, {"queue", "full", {}},
  {"queue", "close", {}}, {"joinable_queue", "task_done", {}}, {"joinable_queue", "join", {"timeout"}},
  {"value", "lock", {"timeout"}}, {"value", "unlock", {}}, {"value", "with_lock", {"function"}},
  {"value", "add", {"delta"}}, {"value", "compare_swap", {"element", "element"}},
  {"array", "totable", {}}, {"array", "lock", {"timeout"}}, {"array", "unlock", {}},
  {"array", "with_lock", {"function"}}, {"array", "add", {"index", "optdelta"}},
  {"semaphore", "acquire", {"timeout"}}, {"semaphore", "release", {"optposint"}}, {"semaphore", "get_value", {}},
  {"bounded_semaphore", "acquire", {"timeout"}}, {"bounded_semaphore", "release", {"optposint"}},
  {"lock", "acquire", {"timeout"}}, {"lock", "release", {}}, {"lock", "with", {"function"}},
  {"rlock", "acquire", {"timeout"}}, {"rlock", "release", {}}, {"rlock", "with", {"function"}},
  {"event", "set", {}}, {"event", "clear", {}}, {"event", "is_set", {}}, {"event", "wait", {"timeout"}},
  {"condition", "acquire", {"timeout"}}, {"condition", "release", {}}, {"condition", "wait", {"timeout"}},
  {"condition", "notify", {"count"}}, {"condition", "notify_all", {}}, {"condition", "with", {"function"}},
  {"barrier", "wait", {"timeout"}},
  {"server", "accept", {"timeout"}}, {"server", "close", {}},
  {"socket", "send", {"string"}}, {"socket", "recv", {"posint", "timeout"}}, {"socket", "close", {}},
  {"socket", "send_handle", {"handle"}}, {"socket", "recv_handle", {"timeout"}},
  {"dgram", "sendto", {"string", "string"}}, {"dgram", "recvfrom", {"timeout"}}, {"dgram", "close", {}},
}

local checked, errors = 0, 0
local function try(name, fn, ...)
  local ok, err = pcall(fn, ...)
  checked = checked + 1
  if not ok then
    errors = errors + 1
    local msg = tostring(err)
    assert(msg:sub(1, #name + 1) == name .. ":",
      string.format("%s: the error does not start with the call's name: %s", name, msg))
  end
  return ok
end

local current = ""
local function must_fail(name, fn, ...)
  local ok, err = pcall(fn, ...)
  checked = checked + 1
  errors = errors + 1
  assert(not ok, name .. ": expected an error for " .. current)
  local msg = tostring(err)
  assert(msg:sub(1, #name + 1) == name .. ":",
    string.format("%s: the error does not start with the call's name: %s", name, msg))
end

-- Module functions: each parameter in turn gets each value.
for _, f in ipairs(functions) do
  local name, fn, params = f[1], f[2], f[3]
  for p, kind in ipairs(params) do
    for _, pair in ipairs(values) do
      local v = pair[2]
      current = pair[1] .. " as argument " .. p
      local accepted = kinds[kind](v)
      local args = {}
      -- earlier parameters get a value they accept
      if name == "ipc.unix.listen" or name == "ipc.unix.connect" then args[1] = dir .. "/nothing.sock" end
      if name == "ipc.value" and p > 1 then args[1] = "b" end
      if name == "ipc.barrier" and p > 1 then args[1] = 1 end
      if name == "ipc.wait" and p > 1 then args[1] = {} end
      if name == "ipc.unix.listen" and p == 2 then args[1] = dir .. "/l" .. checked .. ".sock" end
      args[p] = v
      local n = p
      if name == "ipc.wait" and p == 1 then args[2] = 0; n = 2 end   -- never wait for ever here
      if accepted == false then
        must_fail(name, fn, table.unpack(args, 1, n))
      elseif accepted == true then
        try(name, fn, table.unpack(args, 1, n))
      end
    end
  end
end

-- Methods: a wrong or missing self, then each parameter in turn.
for _, m in ipairs(methods) do
  local key, method, params = m[1], m[2], m[3]
  local objs = objects()
  local obj = objs[key]
  local label = ({receiver = "connection", sender = "connection"})[key] or key
  local name = label .. ":" .. method
  local fn = obj[method]
  assert(type(fn) == "function", name .. " is missing")
  -- missing self, and every wrong self
  current = "a missing self"
  must_fail(name, fn)
  for _, pair in ipairs(values) do
    current = pair[1] .. " as self"
    local same_type = type(pair[2]) == "userdata" and getmetatable(pair[2]) == getmetatable(obj)
    if pair[2] ~= nil and not same_type then must_fail(name, fn, pair[2]) end
  end
  for p, kind in ipairs(params) do
    for _, pair in ipairs(values) do
      local v = pair[2]
      current = pair[1] .. " as argument " .. p
      local accepted = kinds[kind](v)
      if accepted ~= nil then
        local o = objects()[key]
        local args = {}
        if key == "array" and method == "add" and p == 2 then args[1] = 1 end
        if key == "value" and method == "compare_swap" and p == 2 then args[1] = 1 end
        if key == "dgram" and p == 2 then args[1] = dir .. "/nobody.sock" end
        if key == "socket" and method == "recv" and p == 2 then args[1] = 1 end
        args[p] = v
        local n = p
        -- a later timeout parameter gets 0: an accepted value must not wait for ever
        for q = p + 1, #params do if params[q] == "timeout" then args[q] = 0; n = q end end
        if accepted then
          try(name, o[method], o, table.unpack(args, 1, n))
        else
          must_fail(name, o[method], o, table.unpack(args, 1, n))
        end
      end
    end
  end
  collectgarbage()
end

-- Fields that take assignments.
local p = ipc.process{target = function() end}
for _, pair in ipairs(values) do
  local v = pair[2]
  if type(v) ~= "boolean" then must_fail("process.daemon", function() p.daemon = v end) end
  if type(v) ~= "string" or v == "" then must_fail("process.name", function() p.name = v end) end
end
local v = ipc.value("b", 0)
for _, pair in ipairs(values) do
  if math.type(pair[2]) ~= "integer" or pair[2] > 127 or pair[2] < -128 then
    must_fail("value.value", function() v.value = pair[2] end)
  end
end
local a = ipc.array("b", 4)
for _, pair in ipairs(values) do
  local key = pair[2] == 1 and 5 or pair[2]
  if type(key) == "number" then       -- outside 1..#a (or not whole): nothing there, as in a table
    assert(a[key] == nil, "array: a read outside 1..#a finds nil, for " .. pair[1])
  elseif type(key) ~= "string" then   -- a string key looks up a method (nil when none)
    must_fail("array", function() return a[key] end)
  end
  if type(key) ~= "string" then must_fail("array", function() a[key] = 1 end) end
end
-- A metatable is no proof of kind: debug.setmetatable can give any userdata any kind's
-- metatable; every call then refuses it by name, and its finalizer and tostring leave it
-- alone. An ipc object keeps its own metatable, and a C function its upvalues (which
-- the bindings read unchecked).
do
  local fq, fsem, fv = ipc.queue(), ipc.semaphore(1), ipc.value("i", 5)
  local function file() return io.open("/dev/null") end
  current = "a forged metatable"
  for label, victim in pairs({queue = fq, value = fv}) do
    local f = file()
    debug.setmetatable(f, getmetatable(victim))
    assert(tostring(f) == "<not an ipc object>")
    for _, m in ipairs({"put", "get", "lock", "unlock", "add", "close"}) do
      local method = getmetatable(victim).__index
      method = type(method) == "table" and method[m] or nil
      if method then must_fail(label .. ":" .. m, function() return method(f) end) end
    end
  end
  must_fail("debug.setmetatable", debug.setmetatable, fq, getmetatable(fsem))
  must_fail("debug.setmetatable", debug.setmetatable, fq, getmetatable(io.stdout))
  must_fail("debug.setupvalue", debug.setupvalue, fq.put, 1, "x")
  must_fail("debug.setuservalue", debug.setuservalue, ipc.process{target = print}, 42, 1)
  must_fail("debug.setupvalue", debug.setupvalue, debug.getmetatable(getmetatable(fv).__index).__index, 1, "x")
  assert(fq:put(1) == true and fq:get() == 1)
  local upvalue = 1
  local function lua_function() return upvalue end
  assert(debug.setupvalue(lua_function, 1, 2) == "upvalue" and lua_function() == 2)
  local f = file()
  debug.setmetatable(f, getmetatable(fv))
  must_fail("value.value", function() f.value = 3 end)
  must_fail("value.value", function() return getmetatable(fv).__newindex(fq, "value", 1) end)
  local fa = ipc.array("i", 2)
  local g = file()
  debug.setmetatable(g, getmetatable(fa))
  must_fail("array", function() return g[1] end)
  must_fail("array", function() g[1] = 1 end)
  must_fail("array", function() return #g end)
  collectgarbage() collectgarbage()
  assert(fv.value == 5 and fsem:acquire() == true)
  -- The kind's metatable, reached through the registry and changed: a new value is made
  -- from what registration kept, or refused by name.
  local kind
  for _, t in pairs(debug.getregistry()) do
    if type(t) == "table" and rawget(t, "__name") == "ipc.Value" then kind = t end
  end
  local kept_methods, kept_index = kind.methods, kind.__index
  kind.methods = 1
  local fresh = ipc.value("i", 1)
  assert(fresh.value == 1 and fresh:lock() == true) fresh:unlock()
  kind.__index = function() return 42, print end
  must_fail("ipc.value", ipc.value, "i", 0)
  kind.methods, kind.__index = kept_methods, kept_index
  assert(ipc.value("i", 7).value == 7)
  local registry = debug.getregistry()
  registry["ipc.Value"] = 42
  must_fail("ipc.value", ipc.value, "i", 0)
  registry["ipc.Value"] = kind
  assert(ipc.value("i", 8).value == 8)
end
os.execute("rm -rf " .. dir)
print(string.format("misuse matrix: %d calls, %d errors, all named after their call", checked, errors))
