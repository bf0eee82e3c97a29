-- One process writes once: with one kill, 1 + 3 interleavings (killed before its start,
-- before its write, before its end; or not killed).
local ipc = require("ipc")
local v = ipc.value("i", 0, {name = "v"})
local p = ipc.spawn(function() v.value = 1 end)
p:join()
