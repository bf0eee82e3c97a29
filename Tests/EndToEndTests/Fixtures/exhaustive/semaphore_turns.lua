-- A semaphore of one taken in turn by three processes.
local ipc = require("ipc")
local s = ipc.semaphore(1, {name = "s"})
local v = ipc.value("i", 0, {name = "v"})
local ps = {}
for i = 1, 2 do ps[i] = ipc.spawn(function() s:acquire(); v.value = v.value * 2 + i; s:release() end) end
s:acquire(); v.value = v.value + 10; s:release()
for _, p in ipairs(ps) do p:join() end
