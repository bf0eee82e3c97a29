-- The bounded buffer, as the textbook solves it: a circular array in shared memory,
-- `empty` counts free slots, `full` counts filled ones, and a lock guards the indices.
--
--   ipcplay scripts/bounded_buffer.lua [items]
local ipc = require("ipc")
local items = tonumber(arg[1]) or 8
local size = 3

local buffer = ipc.array("i", size)          -- the slots
local cursor = ipc.array("i", {1, 1})        -- [1] where to put, [2] where to take
local mutex = ipc.lock({name = "mutex"})
local empty = ipc.semaphore(size, {name = "empty"})  -- free slots: producers wait on it
local full = ipc.semaphore(0, {name = "full"})       -- filled slots: consumers wait on it

local function producer(id, count)
  for n = 1, count do
    ipc.sleep(0.05)                          -- producing an item takes a while
    local item = id * 100 + n
    empty:acquire()                          -- wait for a free slot
    mutex:with(function()
      local at = cursor[1]
      buffer[at] = item
      cursor[1] = at % size + 1
      print(string.format("producer %d put %d in slot %d", id, item, at))
    end)
    full:release()                           -- one more filled slot
  end
end

local function consumer(id, count)
  for _ = 1, count do
    full:acquire()                           -- wait for a filled slot
    local item
    mutex:with(function()
      local at = cursor[2]
      item = buffer[at]
      cursor[2] = at % size + 1
      print(string.format("consumer %d took %d from slot %d", id, item, at))
    end)
    empty:release()                          -- one more free slot
    ipc.sleep(0.08)                          -- consuming it takes longer: producers wait on `empty`
  end
end

local half = items // 2
local ps = {
  ipc.spawn(producer, 1, half), ipc.spawn(producer, 2, items - half),
  ipc.spawn(consumer, 1, half), ipc.spawn(consumer, 2, items - half),
}
for _, p in ipairs(ps) do p:join() end
print(string.format("done: %d items through a buffer of %d slots (empty=%d, full=%d)",
  items, size, empty:get_value(), full:get_value()))
