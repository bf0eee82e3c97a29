local q = ipc.queue()
ipc.spawn(function() q:put(42) end):join()
ipc.test.eq(q:get(), 42)
