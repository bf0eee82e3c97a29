ipc.spawn(function() error("nobody looks at me") end)
ipc.sleep(0.2)
