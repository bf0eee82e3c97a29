-- Race lesson 5, the bug: a missed wake-up, an event cleared too late. A producer
-- posts jobs by raising a shared counter and setting the event `ready`. The worker
-- waits for `ready`, handles every job posted so far, and only then clears the event.
-- If the producer posts its next job (and sets the already-set event) after the
-- worker read the counter but before it cleared the event, the clear erases that
-- signal: the worker waits for a job that has been posted, and the producer, done,
-- never sets the event again. Nobody can move: a deadlock.
--
--   W: ready:wait() -> true; posted = 1, handles job 1
--                            P: posted = 2; ready:set()   (already set)
--   W: ready:clear()         <- erases the signal for job 2
--   W: ready:wait() ...      for ever
--
--   ipcplay explore scripts/races/missed_wakeup.lua
--   ipcplay run --jitter 1 scripts/races/missed_wakeup.lua   (random delays: now and then)
--
-- (A plain run does not hang: ipcplay sees that every process is blocked for ever,
-- reports where, and exits 124.)
-- explanation: atomicity 31 37 39
-- The fix is in missed_wakeup_fixed.lua.
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
    handled.value = posted.value -- handle every job posted so far
    ready:clear()                -- BUG: too late, a job posted since the read is lost
  end
end

local ps = {ipc.spawn(worker), ipc.spawn(producer)}
for _, p in ipairs(ps) do p:join() end

assert(handled.value == jobs, string.format("%d of %d jobs handled", handled.value, jobs))
print("all " .. handled.value .. " jobs handled")
