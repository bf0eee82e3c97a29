-- A locked increment, then a check-then-write: locks, reads and writes on two values.
local ipc = require("ipc")
local v = ipc.value("i", 0, {name = "v"})
local w = ipc.value("i", 0, {name = "w"})
local ps = {}
for i = 1, 2 do
  ps[i] = ipc.spawn(function()
    v:lock(); v.value = v.value + 1; v:unlock()
    if w.value == 0 then w.value = i end
  end)
end
for _, p in ipairs(ps) do p:join() end
