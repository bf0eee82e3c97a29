-- Race lesson 3, the bug: deadlock by lock order. Two accounts, each guarded by its
-- own lock. A transfer locks the account it takes money from, then the one it pays
-- into. One process pays from A to B while the other pays from B to A, so they take
-- the two locks in opposite orders. If each gets its first lock before the other
-- asks for its second, each waits for the lock the other holds, for ever:
--
--   P1: lock A                P2: lock B
--   P1: lock B ... waits      P2: lock A ... waits      <- deadlock
--
--   ipcplay explore scripts/races/lock_order.lua
--   ipcplay run --jitter 1 scripts/races/lock_order.lua   (random delays: often)
--
-- (A plain run does not hang: ipcplay sees that every process is blocked for ever,
-- reports where, and exits 124.)
-- explanation: cycle
-- The fix is in lock_order_fixed.lua.
local ipc = require("ipc")
local transfers = tonumber(arg[1]) or 2

local a = ipc.value("i", 100, {name = "A"})
local b = ipc.value("i", 100, {name = "B"})

local function transfer(from, to, amount)
  from:lock()                   -- first the payer's lock...
  to:lock()                     -- ...then the payee's: the order depends on the direction
  from.value = from.value - amount
  to.value = to.value + amount
  to:unlock()
  from:unlock()
end

local function pay(from, to)
  for _ = 1, transfers do transfer(from, to, 10) end
end

local ps = {ipc.spawn(pay, a, b), ipc.spawn(pay, b, a)}
for _, p in ipairs(ps) do p:join() end

assert(a.value + b.value == 200, "money was created or lost")
assert(a.value == 100 and b.value == 100, string.format("A = %d, B = %d", a.value, b.value))
print(string.format("A = %d, B = %d", a.value, b.value))
