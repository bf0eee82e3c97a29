-- A daemon holds a lock when the main script ends: it is ended, and nothing waits.
local m = ipc.lock({name = "m"})
local d = ipc.process{target = function() m:acquire(); ipc.sleep(100) end, daemon = true}
d:start(); ipc.sleep(1); print("main acquires:", m:acquire(1))
