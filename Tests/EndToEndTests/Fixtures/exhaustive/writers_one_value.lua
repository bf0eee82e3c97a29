-- n processes each write once to one shared value: n! interleavings.
local ipc = require("ipc")
local n = tonumber(arg[1]) or 3
local v = ipc.value("i", 0, {name = "v"})
local ps = {}
for i = 1, n do ps[i] = ipc.spawn(function() v.value = i end) end
for _, p in ipairs(ps) do p:join() end
