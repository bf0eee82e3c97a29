-- The holder of a lock is killed while another waits for it.
local m = ipc.lock({name = "m"})
local held = ipc.event()
local a = ipc.spawn(function() m:acquire(); held:set(); ipc.sleep(100) end)
local b = ipc.spawn(function() held:wait(); print("b acquires:", m:acquire(10)); m:release() end)
held:wait(); a:kill(); a:join(); b:join(); print("exitcodes", a.exitcode, b.exitcode)
