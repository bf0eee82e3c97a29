-- Race lesson 5, the fix: clear the event before looking for work. A job posted after
-- the clear sets the event again, so the next wait returns at once; a job posted
-- between the clear and the read is handled now (and its set only costs one extra,
-- empty turn of the loop). No signal can fall between the read and the clear any more.
-- (A semaphore released once per job, or a queue of jobs, would count the signals
-- instead of merging them.)
--
--   ipcplay explore --runs 1000 scripts/races/missed_wakeup_fixed.lua
--
-- The bug is in missed_wakeup.lua.
local ipc = require("ipc")
local jobs = tonumber(arg[1]) or 3

local ready = ipc.event({name = "ready"})
local posted = ipc.value("i", 0, {name = "posted"})    -- jobs posted so far
local handled = ipc.value("i", 0, {name = "handled"})  -- jobs the worker handled

local function producer()
  for _ = 1, jobs do
    posted:add(1)                -- post a job...
    ready:set()                  -- ...and signal it
  end
end

local function worker()
  while handled.value < jobs do
    ready:wait()
    ready:clear()                -- clear first: a later post sets it again
    handled.value = posted.value -- then handle every job posted so far
  end
end

local ps = {ipc.spawn(worker), ipc.spawn(producer)}
for _, p in ipairs(ps) do p:join() end

assert(handled.value == jobs, string.format("%d of %d jobs handled", handled.value, jobs))
print("all " .. handled.value .. " jobs handled")
