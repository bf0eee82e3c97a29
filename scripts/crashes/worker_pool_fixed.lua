-- Crash lesson 3, the fix: acknowledgement. The supervisor hands each job to one worker
-- through that worker's own inbox and writes down the assignment first; a job is done
-- only when its result (the acknowledgement) has come back. The supervisor waits for
-- results a while at a time (virtual time under explore), and when it sees a worker dead
-- it starts a replacement and hands it every job the dead one had not acknowledged. A
-- result arrives whole or not at all (a queue's put survives a kill), and a job is
-- acknowledged once: the first result counts, a late duplicate is ignored.
--
--   ipcplay explore --kill 1 --runs 1000 scripts/crashes/worker_pool_fixed.lua
--
-- explore reports no failure: "1000 schedules, ... no failure".
local ipc = require("ipc")
local jobs, workers = 4, 2

local results = ipc.queue(0, {name = "results"})

local function worker(inbox)
  while true do
    local job = inbox:get()
    if job == 0 then return end    -- 0: no more jobs
    results:put({job = job, square = job * job})
  end
end

local pool = {}     -- pool[w] = {process = ..., inbox = ...}
local owner = {}    -- owner[job] = w: the worker the job was last handed to
local acked = {}    -- acked[job] = its square, once its result came back
local started = 0

local function start_worker(w)
  started = started + 1
  local inbox = ipc.queue(0, {name = "inbox-" .. started})
  local p = ipc.process{target = worker, args = {inbox}, name = "worker-" .. started}
  p:start()
  pool[w] = {process = p, inbox = inbox}
end

local function hand(job, w)
  owner[job] = w              -- written down before the job leaves
  pool[w].inbox:put(job)
end

for w = 1, workers do start_worker(w) end
for job = 1, jobs do hand(job, (job - 1) % workers + 1) end

local count, sum = 0, 0
while count < jobs do
  local r = results:get(1)
  if r then
    if not acked[r.job] then
      acked[r.job] = r.square
      count = count + 1
      sum = sum + r.square
    end
  else
    for w = 1, workers do
      if not pool[w].process:is_alive() then
        pool[w].process:join()
        start_worker(w)
        for job = 1, jobs do
          if owner[job] == w and not acked[job] then hand(job, w) end
        end
      end
    end
  end
end
for w = 1, workers do pool[w].inbox:put(0) end
for w = 1, workers do pool[w].process:join() end
assert(sum == 30, "the squares add up to " .. sum .. ", not 30")
print("sum of squares " .. sum)
