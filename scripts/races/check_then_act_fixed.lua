-- Race lesson 2, the fix: do not check and then act; act, then check the result. A
-- consumer calls get_nowait() directly and looks at its second result: nil, "empty"
-- means there is nothing left (whoever took the last job), and the loop ends. There is
-- no separate q:empty() step, so nothing can change between a check and the act.
-- (When more jobs may still come, `local job, err = q:get(timeout)` is the usual form.)
--
--   ipcplay explore --runs 1000 scripts/races/check_then_act_fixed.lua
--
-- The bug is in check_then_act.lua.
local ipc = require("ipc")
local jobs = tonumber(arg[1]) or 3

local q = ipc.queue(0, {name = "jobs"})
local results = ipc.queue(0, {name = "results"})

for n = 1, jobs do q:put(n) end

local function consumer()
  while true do
    local job, err = q:get_nowait()   -- act, then look at what happened
    if err then break end             -- "empty": the other consumer took the rest
    results:put(job)
  end
end

local ps = {ipc.spawn(consumer), ipc.spawn(consumer)}
for _, p in ipairs(ps) do p:join() end

assert(results:qsize() == jobs,
  string.format("%d results for %d jobs: a consumer took \"empty\" for a job", results:qsize(), jobs))
print(results:qsize() .. " jobs handled")
