-- An event wait and an is_set probe, a semaphore released by either.
local ipc = require("ipc")
local e = ipc.event({name = "e"})
local s = ipc.semaphore(0, {name = "s"})
local waiter = ipc.spawn(function() e:wait(); s:release() end)
local prober = ipc.spawn(function() if e:is_set() then s:release() end end)
e:set()
s:acquire()
waiter:join(); prober:join()
