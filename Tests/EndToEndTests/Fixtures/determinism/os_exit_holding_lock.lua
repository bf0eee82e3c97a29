-- A holder leaves with os.exit while another waits for the lock.
local m = ipc.lock({name = "m"})
local a = ipc.spawn(function() m:acquire(); print("a holds m"); os.exit(3) end)
local b = ipc.spawn(function() m:acquire(); print("b has m"); m:release() end)
a:join(); b:join(); print("exitcodes", a.exitcode, b.exitcode)
