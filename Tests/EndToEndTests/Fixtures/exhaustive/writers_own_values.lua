-- n processes each write once to their own value: one interleaving.
local ipc = require("ipc")
local n = tonumber(arg[1]) or 3
local ps = {}
for i = 1, n do
  local own = ipc.value("i", 0, {name = "v" .. i})
  ps[i] = ipc.spawn(function() own.value = i end)
end
for _, p in ipairs(ps) do p:join() end
