-- Race lesson 7, the fix: every waiter looks again after each wait, with `while`. A
-- woken reader that finds a writer inside (one that got the lock first) waits again,
-- and goes in only when, holding the lock, it sees no writer. (`cv:wait_for(function()
-- return not writing.value end)` is the same loop, written once.)
--
--   ipcplay explore --runs 1000 scripts/races/readers_writers_if_fixed.lua
--   ipcplay explore --exhaustive --preemptions 2 scripts/races/readers_writers_if_fixed.lua
--
-- The bug is in readers_writers_if.lua.
local ipc = require("ipc")

local cv = ipc.condition(nil, {name = "room"})
local readers = ipc.value("i", 0, {name = "readers"})      -- readers inside
local writing = ipc.value("?", false, {name = "writing"})  -- a writer is inside
local document = ipc.value("i", 0, {name = "document"})

local function write(n)
  cv:acquire()
  while writing.value or readers.value > 0 do  -- writers look again after each wait
    cv:wait()
  end
  writing.value = true
  cv:release()
  document.value = n                 -- writing, alone
  cv:acquire()
  writing.value = false
  cv:notify_all()
  cv:release()
end

local function read()
  cv:acquire()
  while writing.value do             -- look again after every wait
    cv:wait()
  end
  assert(not writing.value, "a reader went in while a writer was inside")
  readers.value = readers.value + 1
  cv:release()
  local _ = document.value           -- reading, maybe with other readers
  cv:acquire()
  readers.value = readers.value - 1
  if readers.value == 0 then cv:notify_all() end
  cv:release()
end

local ps = {ipc.spawn(write, 1), ipc.spawn(read), ipc.spawn(write, 2)}
for _, p in ipairs(ps) do p:join() end
print("document: " .. document.value)
