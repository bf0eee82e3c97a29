-- ipc.barrier's options as Python's threading.Barrier(parties, action, timeout):
-- the action runs once per passage, in the last party to arrive, before any party is
-- released; an error in it breaks the barrier and the raising party gets the error; the
-- default timeout applies to a wait that gives none, and breaks the barrier.
local ipc = require("ipc")
local t = ipc.test

-- The action runs once per passage, before anyone leaves.
local parties, passages = 3, 4
local runs = ipc.value("i", 0)
local seen_early = ipc.value("i", 0)
local b = ipc.barrier(parties, {action = function() runs:add(1) end})
local function party()
  for k = 1, passages do
    local index = assert(b:wait(30))
    if runs.value < k then seen_early:add(1) end
    assert(index >= 0 and index < parties)
  end
end
local ps = {}
for k = 1, parties - 1 do ps[k] = ipc.spawn(party) end
party()
for _, p in ipairs(ps) do p:join() ; t.eq(p.exitcode, 0) end
t.eq(runs.value, passages, "the action runs exactly once per passage")
t.eq(seen_early.value, 0, "no party is released before the action has run")

-- It runs in the last party to arrive.
local ran_in = ipc.value("i", 0)
local last = ipc.barrier(2, {action = function() ran_in.value = ipc.current().pid end})
local early = ipc.spawn(function() assert(last:wait(30)) end)
while last.n_waiting < 1 do ipc.sleep(0.01) end
assert(last:wait(30))
early:join()
t.eq(ran_in.value, ipc.current().pid, "the last to arrive runs the action")

-- An error in the action breaks the barrier: the raising party gets it, the others get
-- nil, "broken", and so do later callers until reset().
local failing = ipc.barrier(2, {action = function() error("no luck") end})
local other = ipc.queue()
local waiter = ipc.spawn(function() other:put({failing:wait(30)}) end)
while failing.n_waiting < 1 do ipc.sleep(0.01) end
local err = t.raises(function() failing:wait(30) end, "^barrier:wait: the barrier's action raised")
assert(err:find("no luck"), err)
t.eq(other:get(30), {nil, "broken"})
waiter:join()
t.eq(failing.broken, true)
t.eq({failing:wait(1)}, {nil, "broken"})
failing:reset()
t.eq(failing.broken, false)

-- The default timeout: a wait with no timeout gives up after it and breaks the barrier
-- (the late party gets nil, "broken"); a wait's own timeout overrides it.
local timed = ipc.barrier(2, {timeout = 0.2})
local t0 = ipc.now()
t.eq({timed:wait()}, {nil, "timeout"})
local waited = ipc.now() - t0
assert(waited >= 0.18 and waited < 5, "waited " .. waited)
t.eq(timed.broken, true)
t.eq({timed:wait()}, {nil, "broken"}, "the late party")
timed:reset()
local partner = ipc.spawn(function() ipc.sleep(0.5) timed:wait(30) end)
assert(timed:wait(30), "a wait's own timeout overrides the default")
partner:join()

-- Options are checked.
t.raises(function() ipc.barrier(2, {action = 5}) end, "^ipc.barrier: options.action must be a function")
t.raises(function() ipc.barrier(2, {timeout = "soon"}) end, "^ipc.barrier: options.timeout must be a number")
t.raises(function() ipc.barrier(2, {timeout = -1}) end, "^ipc.barrier: options.timeout must be")
print("barrier options ok")
