-- A child fails before its put: the main process waits for ever (a consequence).
local q = ipc.queue()
local m = ipc.lock({name = "m"})
local a = ipc.spawn(function() m:acquire(); local x = nil; q:put(x.field) end)
local b = ipc.spawn(function() m:acquire(); m:release() end)
local item = q:get()
a:join(); b:join(); print(item)
