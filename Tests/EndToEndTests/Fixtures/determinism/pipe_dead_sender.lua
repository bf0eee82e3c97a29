-- A sender ends without closing its end: the receiver reads what was sent, then "closed".
local r, w = ipc.pipe(false)
local p = ipc.spawn(function() r:close(); w:send("one"); w:send("two") end)
w:close()
while true do local v, err = r:recv(); if err then print(err) break end; print("recv", v) end
p:join()
