-- Race lesson 7, the bug: readers and writers, where a reader waits with `if` instead
-- of `while`. A shared document may have many readers at once or one writer alone. Who
-- is inside is kept in two shared values under a condition's lock: a reader waits while
-- a writer writes, a writer while anyone is inside, and whoever leaves wakes every waiter
-- with notify_all(). A reader checks once and, once woken, goes in without looking again.
-- But being woken only means "something changed": the writer that left woke the reader
-- and the other writer together, and the other writer got the lock first and went in:
--
--   W1: inside (writing)
--   R:  writing? yes -> wait           W2: writing? yes -> wait
--   W1: leaves, notify_all
--                                      W2: wakes, looks again, goes in (writing)
--   R:  wakes, goes in without looking again    <- reads while W2 writes
--
--   ipcplay explore scripts/races/readers_writers_if.lua
--
-- explanation: atomicity 32 43 46
--
-- The fix is in readers_writers_if_fixed.lua.
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
  if writing.value then              -- BUG: `if` looks once; after the wait, look again
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
