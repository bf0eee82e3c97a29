-- Race lesson 9, the fix: a barrier's parties are exactly the processes that call its
-- wait(). The workers are the parties; the main process, which joins them rather than
-- waiting at the barrier, is not one. (A process that may skip the barrier, or die before
-- it, needs a timeout on its wait, or the barrier's `abort()`, so the others are not left
-- waiting.)
--
--   ipcplay explore --runs 1000 scripts/races/barrier_party_fixed.lua
--   ipcplay explore --exhaustive scripts/races/barrier_party_fixed.lua
--
-- The bug is in barrier_party.lua.
local ipc = require("ipc")
local numbers = {3, 1, 4, 1, 5, 9, 2, 6}
local workers = 2

local parts = ipc.array("i", workers, {name = "parts"})
local done = ipc.barrier(workers, {name = "parts done"})  -- exactly the processes that wait
local totals = ipc.queue(0, {name = "totals"})

local function worker(id)
  local sum = 0
  for k = id, #numbers, workers do sum = sum + numbers[k] end
  parts[id] = sum
  done:wait()                        -- every part is written past this point
  local total = 0
  for k = 1, workers do total = total + parts[k] end
  totals:put(total)
end

local ps = {}
for id = 1, workers do ps[id] = ipc.spawn(worker, id) end
for _, p in ipairs(ps) do p:join() end

for _ = 1, workers do
  local total = totals:get()
  assert(total == 31, string.format("a worker saw the total %d, expected 31", total))
end
print("total: 31")
