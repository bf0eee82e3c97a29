-- One producer, one consumer, N small integers through ipc.queue(1000).
-- Prints "<workload> <messages> <seconds>".
local ipc = require("ipc")
local n = tonumber(arg[1]) or 200000
local q = ipc.queue(1000)
local consumer = ipc.spawn(function()
  for _ = 1, n do q:get() end
end)
local t0 = ipc.now()
for i = 1, n do q:put(i) end
consumer:join()
print(string.format("queue_stream %d %.6f", n, ipc.now() - t0))
