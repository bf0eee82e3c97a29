-- A child kills itself with a signal while holding a lock.
local m = ipc.lock({name = "m"})
local q = ipc.queue()
local a = ipc.spawn(function() m:acquire(); q:put(1); os.execute("kill -9 " .. ipc.current().pid); q:put(2) end)
local b = ipc.spawn(function() m:acquire(); print("b got m"); m:release() end)
a:join(); b:join(); print("a exitcode", a.exitcode, "queue", q:get(), q:qsize())
