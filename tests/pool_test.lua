-- ipc.pool: Python's multiprocessing.Pool on the module's queues and processes.
local ipc = require("ipc")
local t = ipc.test

local function square(x) return x * x end

local pool = ipc.pool(3)
t.eq(pool:map(square, {1, 2, 3, 4, 5, 6, 7}), {1, 4, 9, 16, 25, 36, 49})
t.eq(pool:map(square, {}), {})
t.eq(pool:starmap(function(a, b) return a + b end, {{1, 2}, {3, 4}}), {3, 7})

-- apply_async: a result to get, with every value the function returned.
local r = pool:apply_async(function(x, y) return x + y, x * y, nil end, {3, 4})
t.eq({r:get(30)}, {7, 12})
t.eq(select("#", r:get()), 3)
t.eq(r:ready(), true)
t.eq(r:successful(), true)
t.eq(pool:apply(square, {9}), 81)

-- imap_unordered gives every result once; imap in order.
local seen = {}
for v in pool:imap_unordered(square, {1, 2, 3, 4}) do seen[#seen + 1] = v end
table.sort(seen)
t.eq(seen, {1, 4, 9, 16})
local ordered = {}
for v in pool:imap(square, {5, 6, 7}) do ordered[#ordered + 1] = v end
t.eq(ordered, {25, 36, 49})

-- The work runs in other processes.
local pids = pool:map(function() return ipc.current().pid end, {1, 2, 3})
for _, pid in ipairs(pids) do assert(pid ~= ipc.current().pid) end

-- A task that raises passes its error to get (and to map); the pool goes on.
local bad = pool:apply_async(function() error("boom") end)
local err = t.raises(function() bad:get(30) end, "boom")
assert(err:find("stack traceback"), "with the worker's traceback")
t.eq(bad:successful(), false)
t.raises(function() pool:map(function(x) if x == 2 then error("two") end return x end, {1, 2, 3}) end, "two")
t.eq(pool:map(square, {2}), {4})

-- get with a timeout.
local gate = ipc.event()
local slow = pool:apply_async(function() gate:wait() return "done" end)
t.eq({slow:get(0.1)}, {nil, "timeout"})
t.eq(slow:ready(), false)
t.raises(function() slow:successful() end, "result:successful: the task is not done yet")
gate:set()
t.eq(slow:get(30), "done")

-- A result that cannot travel back is an error of the task.
t.raises(function() pool:apply(function() return print end) end, "cannot be sent back")
-- Arguments that cannot travel are the caller's error.
t.raises(function() pool:apply_async(square, {print}) end, "^[^\n]*pool:apply_async: cannot send a function")

pool:close()
t.raises(function() pool:apply_async(square, {1}) end, "pool:apply_async: the pool is closed")
t.eq(pool:join(30), true)
t.eq(#ipc.active_children(), 0, "join ended every worker")

-- A worker killed in the middle of a task: that task fails (saying so), the tasks it
-- had not started go to the others, a new worker replaces it, and map does not hang.
local one = ipc.pool(1)
local started = ipc.queue()
local hold = ipc.event()
local function job(x)
  started:put(ipc.current().pid)
  if x == 1 then hold:wait() end
  return x * 10
end
local first = one:apply_async(job, {1})
local second = one:apply_async(job, {2})
local third = one:apply_async(job, {3})
local victim = started:get(30)
for _, p in ipairs(ipc.active_children()) do if p.pid == victim then p:kill() end end
t.raises(function() first:get(30) end, "pool: worker [^ ]+ died %(exitcode %-9%) while running this task")
t.eq(second:get(30), 20)
t.eq(third:get(30), 30)
t.eq(one:map(job, {4, 5}), {40, 50})
-- A task that ends its worker (os.exit) fails the same way.
t.raises(function() one:apply(function() os.exit(5) end) end, "died %(exitcode 5%)")
t.eq(one:apply(job, {6}), 60)

-- terminate ends the workers now; unfinished tasks fail.
local stuck = one:apply_async(function() ipc.event():wait() end)
one:terminate()
t.raises(function() stuck:get(30) end, "pool: terminated before this task was done")
t.eq(one:join(30), true)
t.eq(#ipc.active_children(), 0)

-- Misuse.
t.raises(function() ipc.pool(0) end, "ipc.pool: n must be at least 1")
t.raises(function() ipc.pool(1.5) end, "ipc.pool: n must be an integer")
t.raises(function() ipc.pool(2, 3) end, "ipc.pool: takes at most 1 arguments")
local p2 = ipc.pool(1)
t.raises(function() p2:map(square) end, "pool:map: expected a list, got nil")
t.raises(function() p2:apply_async(5) end, "pool:apply_async: expected a function, got number")
t.raises(function() p2:join() end, "pool:join: close%(%) or terminate%(%) the pool first")
t.raises(function() p2:map(square, {1}, 4) end, "pool:map: takes at most 2 arguments")
do
  local p3 <close> = ipc.pool(2)
  t.eq(p3:map(square, {3}), {9})
end
t.eq(#ipc.active_children(), 0, "a pool closed as a to-be-closed variable is terminated")
print("pool ok")
