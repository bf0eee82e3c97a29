-- A barrier of three with two parties: it breaks at the timeout.
local b = ipc.barrier(3)
local p = ipc.spawn(function() print("p:", b:wait(1)) end)
print("main:", b:wait(2)); p:join()
