-- The scenario of the `schedules` benchmark: three processes and about 100 steps (two
-- producers and a consumer on a queue of two items, and a shared counter).
local ipc = require("ipc")
local q = ipc.queue(2)
local count = ipc.value("i", 0)
local producers = {}
for p = 1, 2 do
  producers[p] = ipc.spawn(function()
    for i = 1, 14 do
      q:put(p * 100 + i)
      count:add(1)
    end
  end)
end
local sum = 0
for _ = 1, 28 do sum = sum + q:get() end
for _, p in ipairs(producers) do p:join() end
assert(count.value == 28 and sum == 2 * 105 + 3 * 1400)
