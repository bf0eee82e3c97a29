-- Crash lesson 3, the bug: a pool-like set of workers takes jobs from one shared queue and
-- puts each result on a results queue; the main process collects one result per job. A
-- worker killed after it took a job and before it put the result (an OOM kill, say)
-- takes the job with it: the main process waits for a result that will never come.
--
--   ipcplay explore --kill 1 scripts/crashes/worker_pool.lua
--
-- explore reports a deadlock ("MainProcess: blocked in queue:get on results"), a
-- `kill: worker-... before ...` line, and a replay line. The fix is in
-- worker_pool_fixed.lua.
local ipc = require("ipc")
local jobs, workers = 4, 2

local tasks = ipc.queue(0, {name = "tasks"})
local results = ipc.queue(0, {name = "results"})

local function worker()
  while true do
    local job = tasks:get()
    if job == 0 then return end    -- 0: no more jobs
    results:put({job = job, square = job * job})
  end
end

for job = 1, jobs do tasks:put(job) end
local ps = {}
for w = 1, workers do
  ps[w] = ipc.process{target = worker, name = "worker-" .. w}
  ps[w]:start()
end

local sum = 0
for _ = 1, jobs do sum = sum + results:get().square end
for _ = 1, workers do tasks:put(0) end
for _, p in ipairs(ps) do p:join() end
assert(sum == 30, "the squares add up to " .. sum .. ", not 30")
print("sum of squares " .. sum)
