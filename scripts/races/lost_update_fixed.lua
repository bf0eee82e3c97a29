-- Race lesson 1, the fix: the read and the write of the counter happen while holding
-- the value's own lock, so no other process can write between them (with_lock releases
-- it even if the function raises). `counter:add(1)`, an atomic add, would do as well.
--
--   ipcplay explore --runs 1000 scripts/races/lost_update_fixed.lua
--   ipcplay run scripts/races/lost_update_fixed.lua [increments]
--
-- The bug is in lost_update.lua.
local ipc = require("ipc")
local workers = 2
local increments = tonumber(arg[1]) or 3

local counter = ipc.value("i", 0, {name = "counter"})

local function worker()
  for _ = 1, increments do
    counter:with_lock(function()
      local x = counter.value
      counter.value = x + 1      -- nobody else can write between the read and this write
    end)
  end
end

local ps = {}
for i = 1, workers do ps[i] = ipc.spawn(worker) end
for _, p in ipairs(ps) do p:join() end

local expected = workers * increments
assert(counter.value == expected,
  string.format("lost update: the counter is %d, expected %d", counter.value, expected))
print("counter = " .. counter.value)
