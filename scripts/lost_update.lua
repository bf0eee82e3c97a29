-- Lost updates: `v.value = v.value + 1` reads, then writes. Two processes can read the
-- same old value, and one increment is lost. With the value's lock held around the
-- read-and-write, none is.
--
--   ipcplay scripts/lost_update.lua [processes] [increments]
local ipc = require("ipc")
local processes = tonumber(arg[1]) or 4
local increments = tonumber(arg[2]) or 20000

local function run(locked)
  local v = ipc.value("i", 0)
  local ps = {}
  for p = 1, processes do
    ps[p] = ipc.spawn(function()
      for _ = 1, increments do
        if locked then
          v:with_lock(function() v.value = v.value + 1 end)
        else
          v.value = v.value + 1
        end
      end
    end)
  end
  for _, p in ipairs(ps) do p:join() end
  return v.value
end

local expected = processes * increments
local unlocked = run(false)
print(string.format("without the lock: %d of %d (%d updates lost)", unlocked, expected, expected - unlocked))
local locked = run(true)
print(string.format("with the lock:    %d of %d (%d updates lost)", locked, expected, expected - locked))
