-- A process that may die holding a lock the main script takes too: the death is a
-- step on the lock (the next acquire takes it over from a dead holder).
local ipc = require("ipc")
local l = ipc.lock({name = "l"})
local v = ipc.value("i", 0, {name = "v"})
local p = ipc.spawn(function() l:acquire(); v.value = 1; l:release() end)
l:acquire()
v.value = v.value + 10
l:release()
p:join()
