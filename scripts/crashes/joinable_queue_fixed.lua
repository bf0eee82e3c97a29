-- Crash lesson 2, the fix: a supervisor that counts and re-queues. The producer never
-- waits on join() alone: it waits a while (virtual time under explore: no real delay),
-- then looks at its consumer. When the consumer is dead, nothing else takes from the
-- queue, so the supervisor can count: it takes back what is still queued, pays the
-- task_done() the dead consumer owed (join(0) says how many: while it is false, one is
-- missing), puts back every job not yet handled, and starts a new consumer. Handling a
-- job is idempotent (done[j] = j * j), so a job handled twice does no harm.
--
--   ipcplay explore --kill 1 --runs 1000 scripts/crashes/joinable_queue_fixed.lua
--
-- explore reports no failure: "1000 schedules, ... no failure".
local ipc = require("ipc")
local jobs = 3

local jq = ipc.joinable_queue()
local done = ipc.array("i", jobs)

local function consumer()
  while true do
    local job = jq:get()
    done[job] = job * job
    jq:task_done()
  end
end

local function start_consumer()
  local p = ipc.process{target = consumer, name = "consumer", daemon = true}
  p:start()
  return p
end

-- With no consumer alive: empty the queue, settle what the dead one owed, put back
-- what is not handled.
local function repair()
  while true do
    local job = jq:get_nowait()
    if job == nil then break end
    jq:task_done()
  end
  local owed = 0
  while not jq:join(0) do
    jq:task_done()
    owed = owed + 1
  end
  local requeued = 0
  for job = 1, jobs do
    if done[job] ~= job * job then
      jq:put(job)
      requeued = requeued + 1
    end
  end
  print(string.format("consumer died: %d task_done() owed, %d jobs put back", owed, requeued))
end

for job = 1, jobs do jq:put(job) end
local consumer_process = start_consumer()
while not jq:join(1) do
  if not consumer_process:is_alive() then
    consumer_process:join()
    repair()
    consumer_process = start_consumer()
  end
end

for job = 1, jobs do assert(done[job] == job * job, "job " .. job .. " was not handled") end
print("all " .. jobs .. " jobs handled")
