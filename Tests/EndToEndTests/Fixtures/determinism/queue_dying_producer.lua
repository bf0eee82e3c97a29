-- A producer puts three items, then fails; the consumer drains with a timeout.
local q = ipc.queue(2)
local p = ipc.spawn(function() for i = 1, 3 do q:put(i) end; error("producer failed") end)
while true do local v, err = q:get(1); if err then print(err) break end; print("got", v) end
p:join(); print("exitcode", p.exitcode)
