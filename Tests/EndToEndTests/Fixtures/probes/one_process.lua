-- One process making 6,000 calls: under --sched each step is decided where it is made,
-- with no handoff and no syscall (the process goes on).
local ipc = require("ipc")
local q = ipc.queue()
local v = ipc.value("i", 0)
for i = 1, 2000 do q:put(i); v.value = v.value + q:get() end
print(v.value)
