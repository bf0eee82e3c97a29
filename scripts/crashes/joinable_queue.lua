-- Crash lesson 2, the bug: a joinable queue counts every item put until someone calls
-- task_done() for it, and join() waits until that count is 0. A consumer killed between
-- get() and task_done() (or before it took everything) leaves a count that nobody will
-- ever bring down: the producer's join() waits for ever.
--
--   ipcplay explore --kill 1 scripts/crashes/joinable_queue.lua
--
-- explore reports a deadlock ("MainProcess: blocked in joinable_queue:join"), a
-- `kill: consumer before ...` line, and a replay line. The fix is in
-- joinable_queue_fixed.lua.
local ipc = require("ipc")
local jobs = 3

local jq = ipc.joinable_queue()
local done = ipc.array("i", jobs)  -- done[j] = j * j once job j is handled

local function consumer()
  while true do
    local job = jq:get()
    done[job] = job * job
    jq:task_done()
  end
end

for job = 1, jobs do jq:put(job) end
ipc.process{target = consumer, name = "consumer", daemon = true}:start()
jq:join()  -- a consumer that died owes a task_done() for ever

for job = 1, jobs do assert(done[job] == job * job, "job " .. job .. " was not handled") end
print("all " .. jobs .. " jobs handled")
