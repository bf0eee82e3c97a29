-- A value's own lock held by a process that fails.
local v = ipc.value("i", 0)
local a = ipc.spawn(function() v:lock(); v.value = 1; error("failed in the critical section") end)
local b = ipc.spawn(function() v:with_lock(function() v.value = v.value + 10 end) end)
a:join(); b:join(); print("value", v.value)
