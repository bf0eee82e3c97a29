-- A process blocked in get is killed; its exit code is -9.
local q = ipc.queue()
local p = ipc.spawn(function() print("got", q:get()) end)
ipc.sleep(1)
p:kill(); p:join(); print("exitcode", p.exitcode, "alive", p:is_alive())
