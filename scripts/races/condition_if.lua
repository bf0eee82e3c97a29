-- Race lesson 4, the bug: waiting on a condition with `if` instead of `while`. Two
-- consumers each take one item from a shared stock; the main process adds two items,
-- one at a time, and wakes every waiter with notify_all(). A consumer that finds the stock
-- empty waits once and then takes an item without looking again. But waking up only
-- means "something changed", not "there is an item for you": notify_all() woke both
-- consumers for one item, and the one that gets the lock second finds the stock empty.
--
--   C1: stock 0, wait         C2: stock 0, wait
--   main: stock 1, notify_all
--   C1: wakes, takes it (stock 0)
--                             C2: wakes, takes... from 0 (stock -1)   <- the bug
--
--   ipcplay explore scripts/races/condition_if.lua
--   ipcplay run scripts/races/condition_if.lua   (fails now and then)
-- explanation: atomicity 26 29 31
-- The fix is in condition_if_fixed.lua.
local ipc = require("ipc")
local consumers = 2

local cv = ipc.condition(nil, {name = "cv"})
local stock = ipc.value("i", 0, {name = "stock"})          -- items made, not yet taken
local took = ipc.array("i", consumers, {name = "took"})   -- the stock each consumer took from

local function consumer(id)
  cv:acquire()
  if stock.value == 0 then       -- BUG: `if` checks once; after the wait, look again
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
