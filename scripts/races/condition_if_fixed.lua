-- Race lesson 4, the fix: wait in a `while` loop. A consumer that wakes up checks the
-- stock again before taking, and goes back to waiting if another consumer was faster.
-- `cv:wait_for(function() return stock.value > 0 end)` is the same loop, written once.
--
--   ipcplay explore --runs 1000 scripts/races/condition_if_fixed.lua
--
-- The bug is in condition_if.lua.
local ipc = require("ipc")
local consumers = 2

local cv = ipc.condition(nil, {name = "cv"})
local stock = ipc.value("i", 0, {name = "stock"})          -- items made, not yet taken
local took = ipc.array("i", consumers, {name = "took"})   -- the stock each consumer took from

local function consumer(id)
  cv:acquire()
  while stock.value == 0 do      -- look again after every wake-up
    cv:wait()
  end
  local n = stock.value
  took[id] = n                   -- 0: there was nothing to take
  stock.value = n - 1
  cv:release()
end

local ps = {}
for i = 1, consumers do ps[i] = ipc.spawn(consumer, i) end

for _ = 1, consumers do          -- the main process produces, one item at a time
  cv:acquire()
  stock:add(1)
  cv:notify_all()
  cv:release()
end
for _, p in ipairs(ps) do p:join() end

for i, n in ipairs(took:totable()) do
  assert(n > 0, string.format("consumer %d woke up and took from an empty stock", i))
end
print("every consumer got an item")
