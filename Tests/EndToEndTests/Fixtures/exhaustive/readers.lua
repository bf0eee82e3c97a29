-- Two processes read one value: reads commute, one interleaving.
local ipc = require("ipc")
local v = ipc.value("i", 7, {name = "v"})
local ps = {}
for i = 1, 2 do ps[i] = ipc.spawn(function() assert(v.value == 7) end) end
for _, p in ipairs(ps) do p:join() end
