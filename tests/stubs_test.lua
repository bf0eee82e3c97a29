-- The LuaLS definitions in types/ipc.lua name everything the module registers: every key
-- of ipc, ipc.unix and ipc.test, every method of every type (each metatable's `methods`
-- table, reached through one object of each type and through the registry), and the
-- fields that the contract names. Run from the repository's root, as `ipcplay test` is;
-- `ipcplay run tests/stubs_test.lua FILE` checks another copy of the definitions.
--
-- The definitions' format, as this test reads it:
--   function ipc.spawn(fn, ...) end            a module function (ipc.unix.X, ipc.test.X too)
--   ipc._VERSION = ""                          any other key of the module
--   ---@class ipc.Queue                       a type, then the local its methods go on:
--   local Queue = {}
--   function Queue:put(v, timeout) end
--   ---@class ipc.JoinableQueue: ipc.Queue    a type that inherits its parent's methods
--   ---@field pid integer|nil                  a field, in its class's annotation block
local ipc = require("ipc")
local t = ipc.test

local path = arg[1]
if not path then
  path = "types/ipc.lua"
  local f = io.open(path)
  if f then
    f:close()
  else  -- not run from the root: the root is the folder above this file's
    local dir = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
    path = dir .. "/types/ipc.lua"
  end
end
local f = assert(io.open(path), "cannot open " .. path)
local text = "\n" .. f:read("a")
f:close()

-- The classes: their parent, their fields, and the local their methods are defined on.
local classes = {}
do
  local current
  for line in text:gmatch("[^\n]*") do
    local name, rest = line:match("^%-%-%-@class%s+([%w_.]+)%s*(.*)$")
    if name then
      current = {parent = rest:match("^:%s*([%w_.]+)"), fields = {}}
      classes[name] = current
    elseif current and line:match("^%-%-%-") then
      local field = line:match("^%-%-%-@field%s+([%w_]+)")
      if field then current.fields[field] = true end
    elseif current then
      current.methods_on = line:match("^local%s+([%w_]+)%s*=%s*{}%s*$")
      current = nil
    end
  end
end

local function has(s) return text:find(s, 1, true) ~= nil end

-- Does `class` or one of its ancestors satisfy `defines(c)` (c: its entry in `classes`)?
local function inherits(class, defines)
  local seen = {}
  while class and not seen[class] do
    seen[class] = true
    local c = classes[class]
    if not c then return false end
    if defines(c) then return true end
    class = c.parent
  end
  return false
end

-- Is `method` defined on `class` or on one of its ancestors?
local function has_method(class, method)
  return inherits(class, function(c)
    return c.methods_on and has("\nfunction " .. c.methods_on .. ":" .. method .. "(")
  end)
end

local function has_field(class, field)
  return inherits(class, function(c) return c.fields[field] end)
end

local function sorted_keys(tbl)
  local keys = {}
  for k in pairs(tbl) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local missing = {}
local checked = 0
local function expect(ok, what)
  checked = checked + 1
  if not ok then missing[#missing + 1] = what end
end

-- The module's own keys.
local function module_keys(tbl, prefix)
  for _, k in ipairs(sorted_keys(tbl)) do
    local name = prefix .. tostring(k)
    if type(tbl[k]) == "function" then
      expect(has("\nfunction " .. name .. "("), name .. " (as `function " .. name .. "(`)")
    else
      expect(has("\n" .. name .. " = "), name .. " (as `" .. name .. " = `)")
    end
  end
end
module_keys(ipc, "ipc.")
module_keys(ipc.unix, "ipc.unix.")
module_keys(ipc.test, "ipc.test.")

-- The fields of ipc.current().
for _, k in ipairs(sorted_keys(ipc.current())) do
  expect(has_field("ipc.ProcessInfo", k), "ipc.ProcessInfo." .. k .. " (as `---@field " .. k .. "`)")
end

-- One object of each type.
local q = ipc.queue()
local jq = ipc.joinable_queue()
local pa, pb = ipc.pipe()
local sa, sb = ipc.unix.socketpair()
local dgram = ipc.unix.dgram()
local socket_path = os.tmpname()  -- a file with a fresh name: removed, and the server bound there
os.remove(socket_path)
local server = ipc.unix.listen(socket_path)
local objects = {
  {"ipc.queue()", q, "ipc.Queue"},
  {"ipc.joinable_queue()", jq, "ipc.JoinableQueue"},
  {"ipc.pipe()", pa, "ipc.Connection"},
  {"ipc.value('i', 0)", ipc.value("i", 0), "ipc.Value", {"value", "typecode", "name"}},
  {"ipc.array('i', {1})", ipc.array("i", {1}), "ipc.Array", {"typecode", "name"}},
  {"ipc.semaphore(1)", ipc.semaphore(1), "ipc.Semaphore"},
  {"ipc.bounded_semaphore(1)", ipc.bounded_semaphore(1), "ipc.BoundedSemaphore"},
  {"ipc.lock()", ipc.lock(), "ipc.Lock"},
  {"ipc.rlock()", ipc.rlock(), "ipc.RLock"},
  {"ipc.event()", ipc.event(), "ipc.Event"},
  {"ipc.condition()", ipc.condition(), "ipc.Condition"},
  {"ipc.barrier(1)", ipc.barrier(1), "ipc.Barrier", {"parties", "n_waiting", "broken", "name"}},
  {"ipc.unix.socketpair()", sa, "ipc.Socket"},
  {"ipc.unix.dgram()", dgram, "ipc.Dgram"},
  {"ipc.unix.listen(path)", server, "ipc.Server"},
  {"ipc.process{...}", ipc.process{target = function() end}, "ipc.Process", {"pid", "name", "daemon", "exitcode"}},
}

-- The registry's name of each metatable (luaL_newmetatable's key), when debug is there.
local registered = {}
if debug and debug.getregistry then
  for k, v in pairs(debug.getregistry()) do
    if type(k) == "string" and type(v) == "table" then registered[v] = k end
  end
end

local function check_methods(class, methods)
  for _, m in ipairs(sorted_keys(methods)) do
    expect(has_method(class, m), class .. ":" .. tostring(m))
  end
end

local done = {}
for _, o in ipairs(objects) do
  local made, object, class, fields = o[1], o[2], o[3], o[4]
  local mt = getmetatable(object)
  t.eq(type(mt) == "table" and type(mt.methods), "table", made .. ": a metatable with a methods table")
  if registered[mt] then t.eq(registered[mt], class, made .. ": the metatable's registered name") end
  expect(classes[class] ~= nil, class .. " (as `---@class " .. class .. "`)")
  check_methods(class, mt.methods)
  for _, field in ipairs(fields or {}) do
    assert(pcall(function() return object[field] end), made .. ": reading ." .. field .. " raised")
    expect(has_field(class, field), class .. "." .. field .. " (as `---@field " .. field .. "`)")
  end
  done[mt] = true
end

-- Any other type the module registers, even one no constructor above makes.
local others = {}
for mt, name in pairs(registered) do
  if not done[mt] and name:match("^ipc%.") and type(mt.methods) == "table" then others[name] = mt end
end
for _, name in ipairs(sorted_keys(others)) do
  expect(classes[name] ~= nil, name .. " (as `---@class " .. name .. "`)")
  check_methods(name, others[name].methods)
end

pa:close() pb:close() sa:close() sb:close() dgram:close() server:close() q:close() jq:close()

if #missing > 0 then
  error(string.format("%s lacks %d of the %d names the module registers:\n  %s", path, #missing, checked,
    table.concat(missing, "\n  ")), 0)
end
t.eq(checked > 100, true, "names checked (" .. checked .. ")")
print(string.format("stubs: %s declares all %d names the module registers", path, checked))
