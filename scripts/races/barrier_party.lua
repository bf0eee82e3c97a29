-- Race lesson 9, the bug: a barrier with a missing party. Workers each add up their part
-- of a list, wait at a barrier until every part is done, then each reads the total. The
-- barrier was made for the workers plus the main process ("it collects the results
-- after the barrier"), but the main process never waits at it: it joins the workers. A
-- barrier lets its parties go only when all of them have arrived, so the workers wait
-- for a party that will never come, and the main process waits for the workers:
--
--   W1: parts[1] = ..., barrier:wait()  (1 of 3 arrived)
--   W2: parts[2] = ..., barrier:wait()  (2 of 3 arrived)
--   main: W1:join() ...                 <- nobody is left to be the third party
--
-- This is no race: every schedule deadlocks, whatever the order of the steps.
--
--   ipcplay run scripts/races/barrier_party.lua       (reports the deadlock, exits 124)
--   ipcplay explore scripts/races/barrier_party.lua
--
-- explanation: not a race
--
-- The fix is in barrier_party_fixed.lua.
local ipc = require("ipc")
local numbers = {3, 1, 4, 1, 5, 9, 2, 6}
local workers = 2

local parts = ipc.array("i", workers, {name = "parts"})
local done = ipc.barrier(workers + 1, {name = "parts done"})  -- BUG: the main process is no party
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
