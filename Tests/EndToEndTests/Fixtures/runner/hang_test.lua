local q = ipc.queue()
ipc.spawn(function() ipc.sleep(100) end)
q:get()
