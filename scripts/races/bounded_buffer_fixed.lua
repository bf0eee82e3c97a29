-- Race lesson 6, the fix: a producer reads the index, fills its slot and moves the index
-- on with the index's own lock held, so no other producer can read the index in between:
-- each item gets a slot of its own, and the slots fill in ring order, the order in which
-- the consumer takes them. (The consumer is alone, so its own index needs no lock; the
-- semaphores keep producers and consumer apart.)
--
--   ipcplay explore --runs 1000 scripts/races/bounded_buffer_fixed.lua
--   ipcplay explore --exhaustive --preemptions 2 scripts/races/bounded_buffer_fixed.lua
--
-- The bug is in bounded_buffer.lua.
local ipc = require("ipc")
local per_producer = tonumber(arg[1]) or 2
local size = 2

local slots = ipc.array("i", size, {name = "slots"})
local next_in = ipc.value("i", 1, {name = "next_in"})   -- the slot the next item goes into
local free = ipc.semaphore(size, {name = "free"})       -- slots nobody fills or reads
local filled = ipc.semaphore(0, {name = "filled"})      -- items the consumer may take

local function advance(i) return i % size + 1 end

local function producer(first)
  for item = first, first + per_producer - 1 do
    free:acquire()
    next_in:with_lock(function()        -- one producer at a time: read, fill, move on
      local i = next_in.value
      slots[i] = item
      next_in.value = advance(i)
    end)
    filled:release()
  end
end

local ps = {ipc.spawn(producer, 1), ipc.spawn(producer, 101)}

local taken, out = {}, 1                -- the main process consumes
for _ = 1, 2 * per_producer do
  filled:acquire()
  taken[#taken + 1] = slots[out]
  slots[out] = 0                        -- 0: an empty slot
  out = advance(out)
  free:release()
end
for _, p in ipairs(ps) do p:join() end

table.sort(taken)
local expected = {}
for k = 1, per_producer do expected[#expected + 1] = k end
for k = 1, per_producer do expected[#expected + 1] = 100 + k end
assert(table.concat(taken, " ") == table.concat(expected, " "),
  string.format("the consumer took %s, expected %s", table.concat(taken, " "), table.concat(expected, " ")))
print("took " .. table.concat(taken, " "))
