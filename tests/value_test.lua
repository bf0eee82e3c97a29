-- Shared values and arrays: every typecode, its limits, atomics, locks, errors.
local ipc = require("ipc")

local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), "got: " .. tostring(err))
  return err
end

-- integer typecodes: the limits fit, one past them does not
local limits = {
  b = {-128, 127}, B = {0, 255}, h = {-32768, 32767}, H = {0, 65535},
  i = {-2147483648, 2147483647}, I = {0, 4294967295},
  l = {math.mininteger, math.maxinteger}, q = {math.mininteger, math.maxinteger},
  L = {0, math.maxinteger}, Q = {0, math.maxinteger},
}
for code, range in pairs(limits) do
  local lo, hi = range[1], range[2]
  local v = ipc.value(code, lo)
  assert(v.value == lo and math.type(v.value) == "integer", code .. " low")
  v.value = hi
  assert(v.value == hi, code .. " high")
  if lo ~= math.mininteger then
    raises("^value.value: " .. tostring(lo - 1):gsub("%-", "%%-") .. " does not fit typecode '" .. code .. "'",
      function() v.value = lo - 1 end)
  end
  if hi ~= math.maxinteger then raises("does not fit typecode '" .. code .. "'", function() v.value = hi + 1 end) end
  raises("^ipc.value: 1.5 is a float; typecode '" .. code .. "' holds integers", ipc.value, code, 1.5)
  raises("is a float", function() v.value = 2.0 end)
  raises("cannot hold a string", function() v.value = "x" end)
  raises("cannot hold a boolean", function() v.value = true end)
  assert(v.typecode == code)
end
raises("^ipc.value: 300 does not fit typecode 'b' %(%-128..127%)", ipc.value, "b", 300)
raises("^ipc.value: %-1 does not fit typecode 'B'", ipc.value, "B", -1)

-- unsigned 64-bit values above maxinteger read back as floats
local u = ipc.value("Q", math.maxinteger)
u:add(1)
assert(u.value == 2^63 and math.type(u.value) == "float")

-- floats
local d = ipc.value("d", 0.1)
assert(d.value == 0.1 and math.type(d.value) == "float")
d.value = 3   -- integers are accepted by float typecodes
assert(d.value == 3.0 and math.type(d.value) == "float")
d.value = -0.0 assert(1 / d.value == -math.huge)
d.value = 0/0 assert(d.value ~= d.value)
local f = ipc.value("f", 1.5)
assert(f.value == 1.5)
f.value = 0.1
assert(math.abs(f.value - 0.1) < 1e-7 and f.value ~= 0.1, "float32 rounding")
raises("does not fit typecode 'f'", function() f.value = 1e300 end)
f.value = math.huge assert(f.value == math.huge)

-- chars and booleans
local c = ipc.value("c", "a")
assert(c.value == "a")
c.value = "\0" assert(c.value == "\0")
c.value = 65 assert(c.value == "A")
raises("one byte", function() c.value = "ab" end)
local b = ipc.value("?", true)
assert(b.value == true)
b.value = false assert(b.value == false)
raises("typecode '%?' holds a boolean", function() b.value = 2 end)

-- defaults and bad arguments
assert(ipc.value("i").value == 0)
raises("^ipc.value: bad typecode 'z'", ipc.value, "z", 1)
raises("^ipc.value: expected a typecode", ipc.value, 5)
raises("^value: cannot set field 'other'", function() local v = ipc.value("i", 1) v.other = 2 end)

-- add and compare_swap
local n = ipc.value("i", 10)
assert(n:add(5) == 15 and n:add(-20) == -5)
raises("^value:add: .* does not fit typecode 'i'", n.add, n, 2^32 | 0)
local small = ipc.value("b", 120)
raises("^value:add: 120 %+ 10 = 130 does not fit typecode 'b'", small.add, small, 10)
assert(small.value == 120, "a failed add changes nothing")
assert(n:compare_swap(-5, 7) == true and n.value == 7)
assert(n:compare_swap(-5, 8) == false and n.value == 7)
assert(n:compare_swap(1e100, 8) == false, "an old value the type cannot hold never matches")
raises("does not fit", n.compare_swap, n, 7, 2^40 | 0)
local fl = ipc.value("d", 1.0)
assert(fl:add(0.5) == 1.5)
assert(fl:compare_swap(1.5, 2.5) and fl.value == 2.5)
raises("^value:add: typecode 'c' is not numeric", c.add, c, 1)
raises("^value:add: cannot add a float", n.add, n, 0.5)

-- add is atomic across processes
local counter = ipc.value("q", 0)
local ps = {}
for k = 1, 6 do ps[k] = ipc.spawn(function() for _ = 1, 3000 do counter:add(1) end end) end
for _, p in ipairs(ps) do p:join() end
assert(counter.value == 18000, "lost adds: " .. counter.value)

-- arrays
local a = ipc.array("i", {1, 2, 3})
assert(#a == 3 and a[1] == 1 and a[3] == 3)
a[2] = 20
assert(a[2] == 20)
local t = a:totable()
assert(#t == 3 and t[2] == 20)
-- A read outside 1..#a finds nothing, as in a Lua table (so `ipairs` stops after a[#a]);
-- a write there is an error.
assert(a[4] == nil and a[0] == nil and a[-1] == nil and a[1.5] == nil)
local walked = {}
for i, x in ipairs(a) do walked[i] = x end
assert(#walked == 3 and walked[2] == 20, "ipairs walks 1..#a")
raises("^array: index 0 is outside 1..3", function() a[0] = 1 end)
raises("^array: index 4 is outside 1..3", function() a[4] = 1 end)
raises("^array: index must be an integer", function() a[1.5] = 1 end)
raises("^array%[2%]: 300000000000 does not fit", function() a[2] = 300000000000 end)
raises("^ipc.array: length must not be negative", ipc.array, "i", -1)
raises("^ipc.array: element 2: typecode 'i' cannot hold a string", ipc.array, "i", {1, "x"})
local zeros = ipc.array("d", 5)
for i = 1, 5 do assert(zeros[i] == 0.0) end
local chars = ipc.array("c", "hello")
assert(#chars == 5 and chars[1] == "h" and chars[5] == "o")
assert(#ipc.array("b", 0) == 0)

-- ten million elements
local big = ipc.array("d", 10000000)
big[10000000] = 1.5
local writer = ipc.spawn(function() big[1] = 2.5 big[5000000] = 3.5 end)
writer:join()
assert(big[1] == 2.5 and big[5000000] == 3.5 and big[10000000] == 1.5 and #big == 10000000)

-- each object's lock; with_lock unlocks even when fn raises
local v = ipc.value("i", 0)
assert(v:lock() == true)
assert(v:lock() == true, "a value's lock is re-entrant, as Python's RLock")
v:unlock() v:unlock()
raises("^value:unlock: the lock of .* is not held by this process", v.unlock, v)
local ok, err = pcall(v.with_lock, v, function() error("inside with_lock") end)
assert(not ok and err:find("inside with_lock"))
local other = ipc.spawn(function() assert(v:lock(5), "the lock was left held") v:unlock() end)
assert(other:join(30) and other.exitcode == 0)
assert(select("#", v:with_lock(function() return 1, 2, 3 end)) == 3)
local held = ipc.spawn(function() v:lock() ipc.sleep(60) end)
ipc.sleep(0.3)
local t0 = ipc.now()
assert(v:lock(0.2) == false, "lock with a timeout returns false while another process holds it")
assert(ipc.now() - t0 >= 0.19)
held:kill() held:join()
assert(a:lock(1) and a:unlock() == nil)
raises("^array:unlock", a.unlock, a)
-- each value has its own metatable, whose __index table holds the methods (found with no
-- call into C); it is still a value to every check, and is collected with the value
local v1, v2 = ipc.value("i", 1), ipc.value("d", 2.5)
assert(getmetatable(v1) ~= getmetatable(v2))
for _, m in ipairs({"lock", "unlock", "add", "with_lock"}) do
  assert(type(rawget(getmetatable(v1).__index, m)) == "function", m .. " in the own method table")
end
assert(v1.lock(v2) == true and v2.value == 2.5) v2:unlock()
raises("^queue:put: expected a queue as self, got value", ipc.queue().put, v1, 1)
raises("^value:lock: expected a value as self, got queue", v1.lock, ipc.queue())
assert(tostring(v1):find("^<value value#%d+ 'i'>$") and v1.typecode == "i" and v1.nothing == nil)
v1.value = 41
assert(v1:add(1) == 42 and v1.value == 42)
local adder = ipc.spawn(function() for _ = 1, 1000 do v1:lock() v1.value = v1.value + 1 v1:unlock() end end)
for _ = 1, 1000 do v1:lock() v1.value = v1.value + 1 v1:unlock() end
assert(adder:join(30) and v1.value == 2042)
local gone = setmetatable({}, {__mode = "k"})
for _ = 1, 1000 do gone[ipc.value("i", 0)] = true end
collectgarbage() collectgarbage()
assert(next(gone) == nil, "values with their own metatables are collected")
print("values and arrays ok")
