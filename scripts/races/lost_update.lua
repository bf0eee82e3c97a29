-- Race lesson 1, the bug: a lost update. Each worker adds 1 to a shared counter by
-- reading it on one line and writing it back on the next. Both steps are atomic, the
-- pair is not: if the other worker writes between this worker's read and its write,
-- this worker writes back a stale value plus one and the other's increment is gone.
--
--   A reads 0          B reads 0
--   A writes 1
--                      B writes 1     <- two increments, the counter says 1
--
-- With 3 increments a plain run rarely shows it (with 100000 it loses thousands);
-- explore finds a schedule that loses some:
--
--   ipcplay explore scripts/races/lost_update.lua
--   ipcplay run scripts/races/lost_update.lua [increments]
-- explanation: atomicity 25 26
-- The fix is in lost_update_fixed.lua.
local ipc = require("ipc")
local workers = 2
local increments = tonumber(arg[1]) or 3

local counter = ipc.value("i", 0, {name = "counter"})

local function worker()
  for _ = 1, increments do
    local x = counter.value      -- read...
    counter.value = x + 1        -- ...and write: another process may have written in between
  end
end

local ps = {}
for i = 1, workers do ps[i] = ipc.spawn(worker) end
for _, p in ipairs(ps) do p:join() end

local expected = workers * increments
assert(counter.value == expected,
  string.format("lost update: the counter is %d, expected %d", counter.value, expected))
print("counter = " .. counter.value)
