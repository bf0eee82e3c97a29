-- Two locks taken in opposite orders, through one helper used from two places: a
-- location that says only "lock:acquire at line 9" names neither order.
local ipc = require("ipc")
local a = ipc.lock({name = "a"})
local b = ipc.lock({name = "b"})

local function atomic_begin(first, second)
  first:acquire()
  second:acquire()
end

local function atomic_end(first, second)
  second:release()
  first:release()
end

local p = ipc.spawn(function()
  atomic_begin(a, b)
  atomic_end(a, b)
end)
atomic_begin(b, a)
atomic_end(b, a)
p:join()
