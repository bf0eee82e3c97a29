-- Locked increments of one shared value by two processes: v:with_lock(...), the
-- equivalent of Python's `with v.get_lock(): v.value += 1`; and v:add(1) for contrast.
local ipc = require("ipc")
local n = tonumber(arg[1]) or 200000
local mode = arg[2] or "lock"
local v = ipc.value("q", 0)
local per = n // 2
local function work()
  if mode == "add" then
    for _ = 1, per do v:add(1) end
  else
    for _ = 1, per do
      v:lock()
      v.value = v.value + 1
      v:unlock()
    end
  end
end
local t0 = ipc.now()
local a, b = ipc.spawn(work), ipc.spawn(work)
a:join() b:join()
assert(v.value == 2 * per)
print(string.format("value_%s %d %.6f", mode, 2 * per, ipc.now() - t0))
