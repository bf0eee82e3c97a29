-- A condition wait in a loop, woken by a notify.
local ipc = require("ipc")
local cv = ipc.condition(nil, {name = "cv"})
local n = ipc.value("i", 0, {name = "n"})
local consumer = ipc.spawn(function()
  cv:acquire()
  while n.value == 0 do cv:wait() end
  n.value = n.value - 1
  cv:release()
end)
cv:acquire(); n.value = 1; cv:notify(); cv:release()
consumer:join()
