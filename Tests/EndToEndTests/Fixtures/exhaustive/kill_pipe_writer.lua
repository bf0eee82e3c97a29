-- A writer that may die before or between its sends: the reader gets what was sent,
-- then the end of the stream (its death closes the last sending end).
local ipc = require("ipc")
local reader, writer = ipc.pipe(false)
local p = ipc.spawn(function() writer:send(1); writer:send(2) end)
writer:close()
local got = 0
while reader:recv() do got = got + 1 end
p:join()
print(got)
