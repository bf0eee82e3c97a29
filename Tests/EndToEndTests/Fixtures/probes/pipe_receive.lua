-- A receive on a pipe: its end's buffered input is the receiver's own memory and the
-- descriptor's state the kernel's, so only the receiver can tell whether it can go (a
-- visit of the deciding process).
local ipc = require("ipc")
local a, b = ipc.pipe()
local p = ipc.spawn(function() for i = 1, 5 do b:send(i) end end)
local sum = 0
for _ = 1, 5 do sum = sum + a:recv() end
p:join()
print("sum", sum)
