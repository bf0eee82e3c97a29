-- Race lesson 6, the bug: a bounded buffer whose producers move the write index without
-- the lock. The buffer is a ring of slots in a shared array; a semaphore counts the free
-- slots, another the filled ones, and a shared index says which slot the next item goes
-- into. A producer reads the index, fills that slot, then moves the index on. Reading
-- and moving the index are separate steps: between them the other producer can read the
-- same index. Both then fill the same slot, one item is overwritten, and the consumer
-- later takes a slot that nobody filled:
--
--   P1: i = next_in.value  (1)
--                                 P2: i = next_in.value  (1)
--                                 P2: slots[1] = 101
--                                 P2: next_in.value = 2
--   P1: slots[1] = 1              <- overwrites 101
--   P1: next_in.value = 2         <- slot 2 is never filled
--
--   ipcplay explore scripts/races/bounded_buffer.lua
--
-- explanation: atomicity 36 38
--
-- The fix is in bounded_buffer_fixed.lua.
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
    -- BUG: the index is read, its slot filled, and the index moved on, with no lock
    local i = next_in.value
    slots[i] = item
    next_in.value = advance(i)
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
