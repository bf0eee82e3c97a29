-- Lost updates: `v.value = v.value + 1` reads, then writes. Two processes can read the
-- same old value, and one increment is lost. With the value's lock held around the
-- read-and-write, none is.
--
--   ipcplay scripts/lost_update.lua [processes] [increments]     both variants, counted
--   ipcplay explore scripts/lost_update.lua 2 20 unlocked        finds the schedule that loses one
--   ipcplay explore scripts/lost_update.lua 2 20 locked          no schedule loses any
--
-- With a variant named, the script runs only that one and fails when an update is lost.
local ipc = require("ipc")
local processes = tonumber(arg[1]) or 4
local increments = tonumber(arg[2]) or 20000
local variant = arg[3]

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
if variant then
  local got = run(variant == "locked")
  assert(got == expected, string.format("%s: %d of %d (%d updates lost)", variant, got, expected, expected - got))
  print(string.format("%s: %d of %d, none lost", variant, got, expected))
  return
end
local unlocked = run(false)
print(string.format("without the lock: %d of %d (%d updates lost)", unlocked, expected, expected - unlocked))
local locked = run(true)
print(string.format("with the lock:    %d of %d (%d updates lost)", locked, expected, expected - locked))
