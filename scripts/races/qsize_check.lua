-- Race lesson 10, the bug: check-then-act on q:qsize(). Two workers share a queue of
-- jobs and loop `while jobs:qsize() > 0 do local job = jobs:get() ... end`. The check
-- and the get are two steps: between them the other worker can take the last job. The
-- get then waits for a job that will never come (nobody puts any more), and the main
-- process waits for that worker:
--
--   A: jobs:qsize() -> 1
--                            B: jobs:qsize() -> 1
--                            B: jobs:get()   -> the last job
--   A: jobs:get() ... waits for ever         <- A acts on a stale check
--
-- qsize() is a snapshot: it may be stale by the time you act on it (Python's docs say
-- the same of Queue.qsize()).
--
--   ipcplay explore scripts/races/qsize_check.lua
--
-- explanation: atomicity 28 29
--
-- The fix is in qsize_check_fixed.lua.
local ipc = require("ipc")
local count = tonumber(arg[1]) or 3

local jobs = ipc.queue(0, {name = "jobs"})
local results = ipc.queue(0, {name = "results"})
for n = 1, count do jobs:put(n) end

local function worker()
  while jobs:qsize() > 0 do          -- check...
    local job = jobs:get()           -- ...then act: the last job may be gone by now
    results:put(job * job)
  end
end

local ps = {ipc.spawn(worker), ipc.spawn(worker)}
for _, p in ipairs(ps) do p:join() end

local total = 0
for _ = 1, count do total = total + results:get() end
print("sum of squares: " .. total)
