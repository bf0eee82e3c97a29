-- Race lesson 2, the bug: check-then-act on a queue. Two consumers drain a queue of
-- jobs with `while not q:empty() do ... q:get_nowait() ... end`. The check and the act
-- are two separate steps: between them the other consumer can take the last job, and
-- get_nowait() then returns nil, "empty". This code trusts its check, ignores the
-- second result and hands on nil as if it were a job: one result too many.
--
--   A: q:empty() -> false    (one job left)
--                            B: q:empty() -> false
--                            B: q:get_nowait() -> the job
--   A: q:get_nowait() -> nil, "empty"        <- A acts on a stale check
--
--   ipcplay explore scripts/races/check_then_act.lua
--   ipcplay run --jitter 1 scripts/races/check_then_act.lua   (random delays: now and then)
-- explanation: atomicity 25 26
-- The fix is in check_then_act_fixed.lua.
local ipc = require("ipc")
local jobs = tonumber(arg[1]) or 3

local q = ipc.queue(0, {name = "jobs"})
local results = ipc.queue(0, {name = "results"})

for n = 1, jobs do q:put(n) end

local function consumer()
  while not q:empty() do        -- check...
    local job = q:get_nowait()  -- ...then act: the queue may be empty by now
    results:put(job)            -- nil is a legal item: nothing stops a nil "job" here
  end
end

local ps = {ipc.spawn(consumer), ipc.spawn(consumer)}
for _, p in ipairs(ps) do p:join() end

assert(results:qsize() == jobs,
  string.format("%d results for %d jobs: a consumer took \"empty\" for a job", results:qsize(), jobs))
print(results:qsize() .. " jobs handled")
