-- A process fails holding the only unit of a semaphore: it is not given back.
local s = ipc.semaphore(1)
local a = ipc.spawn(function() print("a acquires:", s:acquire(5)); error("failed holding the unit") end)
local b = ipc.spawn(function() print("b acquires:", s:acquire(2)) end)
a:join(); b:join(); print("value", s:get_value())
