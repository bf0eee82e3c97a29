-- Values that travel: every kind keeps its type and bits, through a queue and a pipe.
local ipc = require("ipc")

local function same(a, b, path)
  path = path or "value"
  if type(a) ~= type(b) then error(path .. ": type " .. type(a) .. " ~= " .. type(b), 2) end
  if type(a) == "number" then
    assert(math.type(a) == math.type(b), path .. ": subtype " .. math.type(a) .. " ~= " .. math.type(b))
    if a ~= a then assert(b ~= b, path .. ": NaN lost") return end
    assert(a == b, path .. ": " .. tostring(a) .. " ~= " .. tostring(b))
    if a == 0 and math.type(a) == "float" then
      assert(1 / a == 1 / b, path .. ": sign of zero lost")
    end
  elseif type(a) == "table" then
    for k, v in pairs(a) do same(v, b[k], path .. "[" .. tostring(k) .. "]") end
    for k in pairs(b) do assert(a[k] ~= nil, path .. ": extra key " .. tostring(k)) end
  else
    assert(a == b, path .. ": " .. tostring(a) .. " ~= " .. tostring(b))
  end
end

local deep = {}
local cur = deep
for i = 1, 150 do cur.next = {depth = i} cur = cur.next end

local samples = {
  0, 1, -1, 63, 64, 127, 128, -64, math.maxinteger, math.mininteger, 2^53,
  0.0, -0.0, 1.5, -2.25, 1e308, -1e-308, math.huge, -math.huge, 0/0, 3.0,
  true, false, "", "a", string.rep("x", 31), string.rep("y", 32), "nul\0inside\255\254",
  "héllo wörld ✓",
  {}, {1, 2, 3}, {1, nil, 3}, {a = 1, b = {c = {d = "e"}}},
  {[1.5] = "float key", [true] = "bool key", [-7] = "negative", [0] = "zero", ["with space"] = 1},
  {{}, {{}}, {{{}}}},
  deep,
}

local q = ipc.queue()
local a, b = ipc.pipe()
local child = ipc.spawn(function()
  for _ = 1, #samples do
    local v, err = q:get(30)
    assert(err == nil, err)
    b:send(v)
  end
  b:send_bytes(string.rep("\0\1\2", 5))
end)
for i = 1, #samples do assert(q:put(samples[i])) end
for i = 1, #samples do
  local v, err = a:recv(30)
  assert(err == nil, err)
  same(samples[i], v, "sample " .. i)
end
assert(a:recv_bytes(30) == string.rep("\0\1\2", 5))
assert(child:join(30))
assert(child.exitcode == 0)

-- nil is a legal item
assert(q:put(nil))
local v, err = q:get(5)
assert(v == nil and err == nil, "nil item: " .. tostring(err))

-- shared sub-tables arrive as copies
local shared = {x = 1}
q:put({shared, shared})
local got = q:get(5)
assert(got[1].x == 1 and got[2].x == 1 and got[1] ~= got[2])

-- table keys that are tables
q:put({[{1, 2}] = "t"})
local k, val = next(q:get(5))
assert(type(k) == "table" and k[2] == 2 and val == "t")

-- a 64 MiB string, through the queue and a pipe
local big = string.rep("0123456789abcdef", 4 * 1024 * 1024)
local c = ipc.spawn(function() local s = q:get(60) b:send(s) b:send(#s) end)
assert(q:put(big, 60))
local back = a:recv(60)
assert(back == big, "64 MiB string changed")
assert(a:recv(60) == #big)
assert(c:join(60))
print("values ok")
