-- Two processes write their own values: one interleaving without a kill, and with one
-- kill 3 kill points for each (before its start, its write, its end), whatever the
-- other did by then: 1 + 2 * 3 = 7 interleavings.
local ipc = require("ipc")
local a, b = ipc.value("i", 0, {name = "a"}), ipc.value("i", 0, {name = "b"})
local p = ipc.spawn(function() a.value = 1 end)
local q = ipc.spawn(function() b.value = 1 end)
p:join()
q:join()
