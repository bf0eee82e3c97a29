local q = ipc.queue()
local p = ipc.spawn(function() ipc.sleep(100) end)
q:get()
