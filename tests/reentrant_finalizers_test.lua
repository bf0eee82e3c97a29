-- Calls into ipc from a finalizer or a hook in the middle of another ipc call (issue 16):
-- every call owns its buffers, so the message a call is decoding is never touched by the
-- calls a finalizer makes meanwhile. Drives __gc-triggered ipc through every path that
-- pushes what it received: queue, pipe, socket and ipc.wait.
local ipc = require("ipc")

local q = ipc.queue()
local a, b = ipc.pipe()
local s1, s2 = ipc.unix.socketpair()
-- The finalizers' own objects: what they send, they receive back at once.
local fq = ipc.queue()
local fa, fb = ipc.pipe()
local fs1, fs2 = ipc.unix.socketpair()

local ran = 0         -- finalizers that have run
local phase           -- the call in progress ("queue", "pipe", ...), set around it
local reentered = {}  -- phase -> ipc calls made by finalizers or hooks inside it
local wrong = {}      -- what a finalizer's own calls got wrong (an error in __gc is only a warning)

local function reenter(tag)
  fa:send({gc = tag, pad = string.rep("g", 64)})
  local got = fb:recv(0)
  if not (got and got.gc == tag) then wrong[#wrong + 1] = "pipe got " .. tostring(got and got.gc) end
  fq:put({gc = tag})
  got = fq:get(0)
  if not (got and got.gc == tag) then wrong[#wrong + 1] = "queue got " .. tostring(got and got.gc) end
  fs1:send("gc" .. tag)
  got = fs2:recv(64, 0)
  if got ~= "gc" .. tag then wrong[#wrong + 1] = "socket got " .. tostring(got) end
  fq:put(tag)
  local ready = ipc.wait({fb, fq}, 0)
  if #ready ~= 1 or ready[1] ~= fq then wrong[#wrong + 1] = "wait got " .. #ready .. " ready" end
  fq:get(0)
  if phase then reentered[phase] = (reentered[phase] or 0) + 1 end
  ran = ran + 1
end

-- Garbage whose finalizers call ipc.
local function litter(n)
  for i = 1, n do setmetatable({}, {__gc = function() reenter(i) end}) end
end

-- 2,000 nested tables, about 40 KB encoded: under a pipe's 64 KiB, so that one process
-- can send it and then receive it.
local function message(i)
  local t = {}
  for k = 1, 2000 do t[k] = {k, {i}} end
  return t
end

local function check(t, i, what)
  assert(type(t) == "table" and #t == 2000, what .. ": got " .. tostring(t))
  for k = 1, 2000 do
    local e = t[k]
    assert(e[1] == k and e[2][1] == i, what .. ": entry " .. k .. " is wrong")
  end
end

-- Finalizers run at the first allocation inside the call: the collector is stopped,
-- stepped by hand (one basic step at a time: a step size of 2 bytes, no pause) until it
-- has begun to run finalizers (10 per step), and restarted just before the call, so that
-- the first allocation in the call (the decode's first table, the received string,
-- ipc.wait's list) runs a step, which runs pending finalizers there.
collectgarbage("incremental", 1, 100, 1)
local function armed()
  collectgarbage("stop")
  ran = 0
  litter(50)
  while ran == 0 do collectgarbage("step", 0) end
  collectgarbage("restart")
end

local function round(i)
  local t = message(i)
  q:put(t)
  armed()
  phase = "queue"
  local got = q:get(5)
  phase = nil
  check(got, i, "q:get")

  a:send(t)
  armed()
  phase = "pipe"
  got = b:recv(5)
  phase = nil
  check(got, i, "b:recv")

  local text = string.rep(string.char(65 + i % 26), 5000 + i)
  s1:send(text)
  armed()
  phase = "socket"
  got = s2:recv(#text, 5)
  phase = nil
  assert(got == text, "s2:recv: got " .. #tostring(got) .. " bytes")

  a:send(i)
  q:put(i)
  local list = {b, q, fb, fq}
  armed()
  phase = "wait"
  local ready = ipc.wait(list, 5)
  phase = nil
  assert(#ready == 2 and ready[1] == b and ready[2] == q, "ipc.wait: " .. #ready .. " ready")
  assert(b:recv(0) == i and q:get(0) == i)
end

for i = 1, 10 do round(i) end
collectgarbage("incremental", 200, 100, 13)  -- Lua's defaults
collectgarbage()
assert(#wrong == 0, "a finalizer's own calls went wrong: " .. table.concat(wrong, "; "))
for _, p in ipairs({"queue", "pipe", "socket", "wait"}) do
  assert(reentered[p], "no finalizer ran inside a " .. p .. " call: this test proves nothing there")
end
-- A call hook runs at every function call, C ones included: inside a binding, at each
-- protected call it makes (the decode of a table is one). Its ipc calls must not disturb
-- the call they interrupt.
local inHook = false
local insideCalls = 0
debug.sethook(function()
  -- Level 2 is the function being called; level 3 its caller: a binding (C) when the
  -- hook runs inside one.
  if phase and not inHook and debug.getinfo(3, "S").what == "C" then
    inHook = true
    reenter(0)
    insideCalls = insideCalls + 1
    inHook = false
  end
end, "c")
for i = 1, 20 do
  local t = message(i)
  q:put(t)
  phase = "queue"
  local got = q:get(5)
  phase = nil
  check(got, i, "q:get under a hook")
  a:send(t)
  phase = "pipe"
  got = b:recv(5)
  phase = nil
  check(got, i, "b:recv under a hook")
end
debug.sethook()
assert(#wrong == 0, "a hook's own calls went wrong: " .. table.concat(wrong, "; "))
assert(insideCalls >= 40, "the hook ran inside " .. insideCalls .. " of 40 calls")

-- A finalizer that runs an object's own __gc in the middle of that object's call: the call
-- holds the object until it ends (it must neither crash nor see it vanish), and the object
-- is gone for the calls after it.
do
  collectgarbage("incremental", 10, 1000)
  local arr = ipc.array("c", 2000000)
  local victim, inside, during = arr, false, false
  setmetatable({}, {__gc = function() during = inside; getmetatable(victim).__gc(victim) end})
  inside = true
  local items = arr:totable()  -- each one-byte string allocates: the finalizer runs inside
  inside = false
  assert(during, "the finalizer ran inside the call")
  assert(#items == 2000000, "totable returned " .. #items .. " items")
  collectgarbage("collect")
  local ok, err = pcall(function() return arr:totable() end)
  assert(not ok and tostring(err):find("array:totable", 1, true), "a call on a finalized array: " .. tostring(err))
  collectgarbage("generational")
  collectgarbage("incremental")
end
