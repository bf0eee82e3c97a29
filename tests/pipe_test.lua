-- Pipes: duplex and simplex, every call, timeouts, end of stream, misuse.
local ipc = require("ipc")

local a, b = ipc.pipe()
assert(a:readable() and a:writable() and not a:closed())
a:send("ping")
assert(b:poll() == true)
assert(b:recv() == "ping")
b:send({reply = "pong"})
assert(a:recv(5).reply == "pong")
assert(a:poll() == false)
assert(a:poll(0.1) == false)
local t0 = ipc.now()
local v, err = a:recv(0.2)
assert(v == nil and err == "timeout", tostring(err))
assert(ipc.now() - t0 >= 0.19)

-- simplex: the first end receives, the second sends
local r, w = ipc.pipe(false)
assert(r:readable() and not r:writable() and w:writable() and not w:readable())
local ok, e = pcall(r.send, r, 1)
assert(not ok and e:find("^connection:send: this end only receives"), e)
ok, e = pcall(w.recv, w)
assert(not ok and e:find("^connection:recv: this end only sends"), e)

-- send_bytes / recv_bytes, binary safe
w:send_bytes("\0\1\2\255")
assert(r:recv_bytes(5) == "\0\1\2\255")
w:send_bytes("raw via recv")
assert(r:recv(5) == "raw via recv")
w:send(42)
assert(#r:recv_bytes(5) >= 1, "recv_bytes returns the encoded bytes of a send")

-- end of stream once every sending end is closed, in every process
local p = ipc.spawn(function() w:send("from child") w:close() end)
p:join()
w:close()
assert(r:recv(5) == "from child")
v, err = r:recv(5)
assert(v == nil and err == "closed", tostring(err))
assert(r:poll() == true, "poll is true at end of stream")

-- calls on a closed end
r:close()
v, err = r:recv()
assert(v == nil and err == "closed")
assert(r:closed())
local x, y = ipc.pipe()
y:close()
v, err = x:send("nobody reads")
-- the other end is still open in this process? no: y is closed, so x's peer is gone
assert(v == nil and err == "closed", "send to a closed peer: " .. tostring(err))

-- several senders on one end: messages never interleave, even large ones
local rr, ww = ipc.pipe(false)
local senders = {}
for s = 1, 4 do
  senders[s] = ipc.spawn(function()
    for i = 1, 30 do ww:send(string.rep(tostring(s), 10000 + i) ) end
  end)
end
local counts = {}
for _ = 1, 120 do
  local msg = rr:recv(30)
  local d = msg:sub(1, 1)
  assert(msg == string.rep(d, #msg), "messages interleaved")
  counts[d] = (counts[d] or 0) + 1
end
for s = 1, 4 do assert(counts[tostring(s)] == 30) senders[s]:join() end

-- several receivers on one end: every message to exactly one of them
local r2, w2 = ipc.pipe(false)
local out = ipc.queue()
local receivers = {}
for k = 1, 3 do
  receivers[k] = ipc.spawn(function()
    w2:close()
    local n = 0
    while true do
      local m, rerr = r2:recv()
      if rerr == "closed" or m == "stop" then break end
      assert(#m == 50000)
      n = n + 1
    end
    out:put(n)
  end)
end
for _ = 1, 60 do w2:send(string.rep("m", 50000)) end
for _ = 1, 3 do w2:send("stop") end
local total = 0
for _ = 1, 3 do total = total + out:get(30) end
assert(total == 60, "messages lost or duplicated: " .. total)
for _, rc in ipairs(receivers) do rc:join() end

-- misuse
ok, e = pcall(ipc.pipe, "yes")
assert(not ok and e:find("^ipc.pipe:"), e)
ok, e = pcall(a.recv, a, "soon")
assert(not ok and e:find("^connection:recv: timeout"), e)
ok, e = pcall(a.send_bytes, a, {})
assert(not ok and e:find("^connection:send_bytes:"), e)
ok, e = pcall(a.send, a)
assert(not ok and e:find("^connection:send:"), e)
print("pipes ok")
