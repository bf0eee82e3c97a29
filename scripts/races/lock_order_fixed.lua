-- Race lesson 3, the fix: one global lock order. Every transfer takes the two account
-- locks in the same order (here, by account name) whatever the direction of the
-- payment. A process holding the second lock then already holds the first, so nobody
-- can hold one lock while waiting for a lock held by a process that waits for it.
--
--   ipcplay explore --runs 1000 scripts/races/lock_order_fixed.lua
--
-- The bug is in lock_order.lua.
local ipc = require("ipc")
local transfers = tonumber(arg[1]) or 2

local a = ipc.value("i", 100, {name = "A"})
local b = ipc.value("i", 100, {name = "B"})

local function transfer(from, to, amount)
  local first, second = from, to
  if second.name < first.name then first, second = second, first end
  first:lock()                  -- always A before B, whichever way the money goes
  second:lock()
  from.value = from.value - amount
  to.value = to.value + amount
  second:unlock()
  first:unlock()
end

local function pay(from, to)
  for _ = 1, transfers do transfer(from, to, 10) end
end

local ps = {ipc.spawn(pay, a, b), ipc.spawn(pay, b, a)}
for _, p in ipairs(ps) do p:join() end

assert(a.value + b.value == 200, "money was created or lost")
assert(a.value == 100 and b.value == 100, string.format("A = %d, B = %d", a.value, b.value))
print(string.format("A = %d, B = %d", a.value, b.value))
