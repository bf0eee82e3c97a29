-- Race lesson 10, the fix: act, then look at the result. A worker calls get_nowait()
-- and reads its second result: nil, "empty" means the jobs are all taken, whoever took
-- the last one, and the loop ends. Taking a job and finding none are one step, so
-- nothing can come between a check and the act. (When more jobs may still come, put one
-- sentinel per worker after the last job, or use `jobs:get(timeout)`.)
--
--   ipcplay explore --runs 1000 scripts/races/qsize_check_fixed.lua
--   ipcplay explore --exhaustive scripts/races/qsize_check_fixed.lua
--
-- The bug is in qsize_check.lua.
local ipc = require("ipc")
local count = tonumber(arg[1]) or 3

local jobs = ipc.queue(0, {name = "jobs"})
local results = ipc.queue(0, {name = "results"})
for n = 1, count do jobs:put(n) end

local function worker()
  while true do
    local job, err = jobs:get_nowait()  -- act, then look: one step takes a job or finds none
    if err == "empty" then break end
    results:put(job * job)
  end
end

local ps = {ipc.spawn(worker), ipc.spawn(worker)}
for _, p in ipairs(ps) do p:join() end

local total = 0
for _ = 1, count do total = total + results:get() end
print("sum of squares: " .. total)
