local ipc = require("ipc")
local counter = ipc.value("i", 0, {name = "counter"})
local ps = {}
for i = 1, 2 do ps[i] = ipc.spawn(function() local x = counter.value; counter.value = x + 1 end) end
for _, p in ipairs(ps) do p:join() end
assert(counter.value == 2, "lost update")
