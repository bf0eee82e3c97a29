-- A process that dies holding a lock, an rlock, a value's lock or a condition's lock
-- does not freeze the others: holders are SIGKILLed at random moments, and the
-- survivors finish. (multiprocessing deadlocks here.)
local ipc = require("ipc")
local rounds = tonumber(arg[1]) or 20
math.randomseed(tonumber(arg[2]) or ipc.test.seed())

local lock, rlock = ipc.lock(), ipc.rlock()
local value = ipc.value("q", 0)
local cond = ipc.condition(ipc.lock())
local shared = ipc.array("i", 4)

local function hammer(which)
  return function()
    while true do
      if which == 1 then lock:with(function() shared[1] = shared[1] + 1 end)
      elseif which == 2 then rlock:with(function() rlock:with(function() shared[2] = shared[2] + 1 end) end)
      elseif which == 3 then value:with_lock(function() value.value = value.value + 1 end)
      else cond:with(function() shared[4] = shared[4] + 1 cond:notify_all() cond:wait(0.001) end)
      end
    end
  end
end

for round = 1, rounds do
  local victims = {}
  for which = 1, 4 do victims[which] = ipc.spawn(hammer(which)) end
  ipc.sleep(math.random() * 0.03)
  for _, v in ipairs(victims) do v:kill() end
  for _, v in ipairs(victims) do v:join() end
  -- Everything is usable again, from the main process and from a new child.
  assert(lock:acquire(10), "lock frozen") lock:release()
  assert(rlock:acquire(10), "rlock frozen") rlock:release()
  assert(value:lock(10), "value's lock frozen") value:unlock()
  assert(cond:acquire(10), "condition's lock frozen") cond:release()
  local survivor = ipc.spawn(function()
    for _ = 1, 10 do
      lock:with(function() end)
      rlock:with(function() end)
      value:with_lock(function() end)
      cond:with(function() cond:notify() end)
    end
  end)
  assert(survivor:join(30) and survivor.exitcode == 0, "survivor failed in round " .. round)
end
print("dead holders ok")
