-- terminate() ends a sleeping child with SIGTERM.
local p = ipc.spawn(function() ipc.sleep(50); print("not reached") end)
ipc.sleep(1); p:terminate(); p:join(); print("exitcode", p.exitcode)
