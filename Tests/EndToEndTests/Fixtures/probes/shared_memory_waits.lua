-- Every kind of wait on shared memory, each of them blocking at least once under most
-- schedules: queue get and put, a joinable queue's join, a semaphore, a lock, a value's
-- lock, an event, a barrier, a condition's wait, a join and a sleep. Under --sched their
-- readiness is a probe the deciding process evaluates itself: no visit.
local ipc = require("ipc")
local q = ipc.queue(3)
local jobs = ipc.joinable_queue()
local s = ipc.semaphore(0)
local l = ipc.lock()
local e = ipc.event()
local v = ipc.value("i", 0)
local w = ipc.value("i", 0)
local b = ipc.barrier(3)
local c = ipc.condition()
local ready = ipc.value("i", 0)
local ps = {}
for i = 1, 2 do
  ps[i] = ipc.spawn(function()
    for k = 1, 20 do q:put(k) end
    s:release()
    e:wait()
    for _ = 1, 10 do
      l:acquire(); v.value = v.value + 1; l:release()
      w:lock(); w.value = w.value + 1; w:unlock()
    end
    b:wait()
    c:acquire()
    ready.value = ready.value + 1
    c:notify_all()
    c:release()
    local job = jobs:get()
    jobs:task_done()
    ipc.sleep(0.01 * i + job)
  end)
end
for _ = 1, 40 do q:get() end
s:acquire(); s:acquire()
e:set()
b:wait()
c:acquire()
while ready.value < 2 do c:wait() end
c:release()
jobs:put(0); jobs:put(0)
jobs:join()
for _, p in ipairs(ps) do p:join() end
print("value", v.value + w.value)
