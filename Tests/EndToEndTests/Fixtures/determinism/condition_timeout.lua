-- A waiter on a condition nobody notifies times out; a notified one wakes.
local c = ipc.condition()
local a = ipc.spawn(function() c:acquire(); print("a waited:", c:wait(2)); c:release() end)
local b = ipc.spawn(function() c:acquire(); print("b waited:", c:wait(20)); c:release() end)
ipc.sleep(5); c:acquire(); c:notify(); c:release()
a:join(); b:join()
