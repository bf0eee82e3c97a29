-- Blocking gets, puts from two processes, a get_nowait that may find the queue empty.
local ipc = require("ipc")
local q = ipc.queue(0, {name = "q"})
local consumer = ipc.spawn(function() q:get(); q:get() end)
local producer = ipc.spawn(function() q:put(1); q:put(2) end)
q:put(3)
q:get_nowait()
consumer:join(); producer:join()
