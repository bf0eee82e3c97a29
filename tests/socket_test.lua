-- Unix domain sockets: every call, timeouts, paths, datagrams, passing descriptors.
local ipc = require("ipc")
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local function path(name) return dir .. "/" .. name end

local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), "got: " .. tostring(err))
end
local function exists(p) return os.execute("test -e " .. p .. " -o -L " .. p) == true end

-- stream: listen, accept, connect, send, recv, close
local srv = ipc.unix.listen(path("s.sock"))
assert(srv:path() == path("s.sock") and exists(path("s.sock")))
local v, err = srv:accept(0.2)
assert(v == nil and err == "timeout", tostring(err))
local client = ipc.spawn(function()
  local c = assert(ipc.unix.connect(path("s.sock"), 5))
  assert(c:send("ping") == 4)
  assert(c:recv(4, 5) == "pong")
  -- a large message arrives in pieces: recv returns up to n bytes
  local got, want = 0, 6 * 1024 * 1024
  while got < want do
    local chunk = assert(c:recv(1024 * 1024, 10))
    assert(#chunk <= 1024 * 1024)
    got = got + #chunk
  end
  assert(got == want)
  c:close()
end)
local conn = assert(srv:accept(10))
assert(conn:recv(4, 5) == "ping")
conn:send("pong")
assert(conn:send(string.rep("z", 6 * 1024 * 1024)) == 6 * 1024 * 1024, "send sends everything")
assert(client:join(30) and client.exitcode == 0)
v, err = conn:recv(10, 5)
assert(v == nil and err == "closed", "end of stream: " .. tostring(err))
v, err = conn:recv(10, 0.1)
assert(v == nil and err == "closed")
conn:close()

-- recv timeout; send to a closed peer is "closed", never SIGPIPE
local a, b = ipc.unix.socketpair()
v, err = a:recv(10, 0.2)
assert(v == nil and err == "timeout")
b:close()
v, err = a:send("nobody")
assert(v == nil and err == "closed", tostring(err))
raises("^socket:recv: n must be", a.recv, a, 0)
raises("^socket:recv: timeout", a.recv, a, 1, "x")
raises("^socket:send:", a.send, a, {})

-- connect to nothing: nil and a message
v, err = ipc.unix.connect(path("nothing.sock"))
assert(v == nil and err:find("no such socket"), tostring(err))

-- paths: a live socket is an error; a stale one is replaced; a regular file is an error
raises("^ipc.unix.listen: something is already listening at", ipc.unix.listen, path("s.sock"))
local stale = ipc.spawn(function() ipc.unix.listen(path("stale.sock")) os.exit(0) end)
stale:join()
-- the child exited without closing: its file stays until the run ends; nobody listens
local replaced = ipc.unix.listen(path("stale.sock"))
replaced:close()
local f = io.open(path("plain.txt"), "w") f:write("x") f:close()
raises("exists and is not a socket", ipc.unix.listen, path("plain.txt"))
assert(exists(path("plain.txt")), "a regular file is never removed")
os.execute("ln -s " .. path("plain.txt") .. " " .. path("link.sock"))
raises("exists and is not a socket", ipc.unix.listen, path("link.sock"))
raises("^ipc.unix.listen: the socket path is %d+ bytes; a Unix socket path holds at most 107",
  ipc.unix.listen, dir .. "/" .. string.rep("x", 120))
raises("^ipc.unix.connect: the socket path is", ipc.unix.connect, string.rep("y", 200))

-- srv:close() removes the file it made
srv:close()
assert(not exists(path("s.sock")), "close removes the socket file")
v, err = srv:accept(0)
assert(v == nil and err == "closed")

-- a mode for the socket file (addition)
local private = ipc.unix.listen(path("mode.sock"), 5, {mode = tonumber("600", 8)})
local ls = io.popen("stat -c %a " .. path("mode.sock")):read("l")
assert(ls == "600", "mode " .. tostring(ls))
private:close()

-- datagrams
local d1 = ipc.unix.dgram(path("d1.sock"))
local d2 = ipc.unix.dgram(path("d2.sock"))
assert(d2:sendto(path("d1.sock"), "one") == 3)
assert(d2:sendto(path("d1.sock"), "") == 0)
local data, from = d1:recvfrom(5)
assert(data == "one" and from == path("d2.sock"), tostring(from))
data, from = d1:recvfrom(5)
assert(data == "" and from == path("d2.sock"))
v, err = d1:recvfrom(0.1)
assert(v == nil and err == "timeout")
v, err = d2:sendto(path("nobody.sock"), "x")
assert(v == nil and err:find("no such socket"))
local anon = ipc.unix.dgram()
anon:sendto(path("d1.sock"), "anonymous")
data, from = d1:recvfrom(5)
assert(data == "anonymous" and from == "")
local big = string.rep("d", 60000)
d2:sendto(path("d1.sock"), big)
assert(d1:recvfrom(5) == big)
d1:close() d2:close()
assert(not exists(path("d1.sock")))

-- passing descriptors: a Connection, a Socket, a server (SCM_RIGHTS)
local x, y = ipc.unix.socketpair()
local results = ipc.queue()
local helper = ipc.spawn(function()
  local pipeEnd = assert(y:recv_handle(10))
  results:put(pipeEnd:recv(10))
  local sock = assert(y:recv_handle(10))
  sock:send("via passed socket")
  local server = assert(y:recv_handle(10))
  local c = assert(server:accept(10))
  results:put(c:recv(100, 10))
  local _, e2 = y:recv_handle(0.1)
  results:put(e2)
end)
local r, w = ipc.pipe(false)
-- the pipe's receiving end is created after the helper started: only passing can give it
assert(x:send_handle(r) == true)
w:send({hello = "through a passed end"})
assert(results:get(10).hello == "through a passed end")
local s1, s2 = ipc.unix.socketpair()
x:send_handle(s1)
assert(s2:recv(100, 10) == "via passed socket")
local late = ipc.unix.listen(path("late.sock"))
x:send_handle(late)
local c2 = assert(ipc.unix.connect(path("late.sock"), 5))
c2:send("to the passed server")
assert(results:get(10) == "to the passed server")
assert(results:get(10) == "timeout")
helper:join()
raises("^socket:send_handle: expected a connection, socket, server or dgram, got a queue", x.send_handle, x, results)
x:send("not a handle")
v, err = pcall(y.recv_handle, y, 1)
assert(not v and err:find("^socket:recv_handle: the message received is not a handle"), err)
late:close()

-- ipc.wait over every kind of source
local pr, pw = ipc.pipe(false)
local q = ipc.queue()
local ss, sc = ipc.unix.socketpair()
local listener = ipc.unix.listen(path("w.sock"))
local dg = ipc.unix.dgram(path("w-dgram.sock"))
local all = {pr, q, ss, listener, dg}
local t0 = ipc.now()
assert(#ipc.wait(all, 0.2) == 0)
assert(ipc.now() - t0 >= 0.19)
assert(#ipc.wait(all, 0) == 0)
local feeder = ipc.spawn(function()
  ipc.sleep(0.05) q:put("queued")
  ipc.sleep(0.05) pw:send("piped")
  ipc.sleep(0.05) sc:send("socketed")
  -- luacheck: ignore 211/cc (the connection stays open while the server is waited on)
  ipc.sleep(0.05) local cc = ipc.unix.connect(path("w.sock")) ipc.sleep(0.2)
  ipc.sleep(0.05) ipc.unix.dgram():sendto(path("w-dgram.sock"), "gram")
  ipc.sleep(0.2)
end)
local seen = {}
while not (seen[1] and seen[2] and seen[3] and seen[4] and seen[5]) do
  local ready = ipc.wait(all, 10)
  assert(#ready > 0, "ipc.wait timed out")
  for _, src in ipairs(ready) do
    if src == q then assert(q:get(1) == "queued") seen[2] = true
    elseif src == pr then assert(pr:recv(1) == "piped") seen[1] = true
    elseif src == ss then assert(ss:recv(100, 1) == "socketed") seen[3] = true
    elseif src == listener then assert(listener:accept(1)) seen[4] = true
    elseif src == dg then assert(dg:recvfrom(1) == "gram") seen[5] = true
    end
  end
end
feeder:join()
raises("^ipc.wait: item 2 is an integer", ipc.wait, {q, 5})
raises("^ipc.wait: expected a table", ipc.wait, q)
assert(#ipc.wait({}, 0) == 0)
os.execute("rm -rf " .. dir)
print("sockets ok")
