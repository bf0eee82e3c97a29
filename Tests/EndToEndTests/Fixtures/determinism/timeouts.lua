-- Timeouts on the virtual clock.
local q, l, e = ipc.queue(), ipc.lock(), ipc.event()
local p = ipc.spawn(function() l:acquire(); ipc.sleep(3); l:release(); e:set() end)
print("get", q:get(0.5)); print("acquire", l:acquire(1)); print("wait", e:wait(10))
p:join(); print("now", ipc.now() > 0)
