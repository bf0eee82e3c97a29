-- Every blocking call survives EINTR and resumes with the time left: while the main
-- process waits (with a timeout) on each kind of object, children keep exiting, and each
-- exit interrupts it with SIGCHLD. Each wait must still end after its timeout: not
-- early, and not restarted with a fresh timeout (the deadline is absolute).
local ipc = require("ipc")
local timeout = 0.6

local stop = ipc.event()
local storm = ipc.spawn(function()
  -- A child that spawns short-lived children, each of which exits at once, and our own
  -- children too: see below.
  while not stop:is_set() do ipc.spawn(function() end):join() end
end)

local function interrupted_wait(name, wait)
  -- Our own children exit while we wait, so SIGCHLD reaches this very process.
  local kids = {}
  for i = 1, 12 do kids[i] = ipc.process{target = function() ipc.sleep(0.04 * i) end} kids[i]:start() end
  local t0 = ipc.now()
  local a, b = wait()
  local dt = ipc.now() - t0
  for _, k in ipairs(kids) do k:join() end
  assert(dt >= timeout * 0.95, string.format("%s returned early (%.3f s): EINTR was not resumed", name, dt))
  assert(dt < timeout + 1.5, string.format("%s took %.3f s: the timeout restarted after EINTR", name, dt))
  return a, b
end

local q = ipc.queue()
local v, err = interrupted_wait("queue:get", function() return q:get(timeout) end)
assert(v == nil and err == "timeout")
local full = ipc.queue(1) full:put(1)
v, err = interrupted_wait("queue:put", function() return full:put(2, timeout) end)
assert(v == nil and err == "timeout")
local r, w = ipc.pipe(false) -- luacheck: ignore 211/w (kept open: recv must time out, not see the end)
v, err = interrupted_wait("connection:recv", function() return r:recv(timeout) end)
assert(v == nil and err == "timeout")
assert(interrupted_wait("connection:poll", function() return r:poll(timeout) end) == false)
local s = ipc.semaphore(0)
assert(interrupted_wait("semaphore:acquire", function() return s:acquire(timeout) end) == false)
local held = ipc.lock()
local holder = ipc.spawn(function() held:acquire() stop:wait() held:release() end)
ipc.sleep(0.1)
assert(interrupted_wait("lock:acquire", function() return held:acquire(timeout) end) == false)
local e = ipc.event()
assert(interrupted_wait("event:wait", function() return e:wait(timeout) end) == false)
local c = ipc.condition()
c:acquire()
assert(interrupted_wait("condition:wait", function() return c:wait(timeout) end) == false)
c:release()
local b = ipc.barrier(2)
v, err = interrupted_wait("barrier:wait", function() return b:wait(timeout) end)
assert(v == nil and err == "timeout")
local jq = ipc.joinable_queue() jq:put(1)
assert(interrupted_wait("joinable_queue:join", function() return jq:join(timeout) end) == false)
local sleeper = ipc.spawn(function() stop:wait() end)
assert(interrupted_wait("process:join", function() return sleeper:join(timeout) end) == false)
local sa, sb = ipc.unix.socketpair() -- luacheck: ignore 211/sb (kept open: recv must time out)
v, err = interrupted_wait("socket:recv", function() return sa:recv(10, timeout) end)
assert(v == nil and err == "timeout")
local dir = os.tmpname() os.remove(dir) os.execute("mkdir -p " .. dir)
local srv = ipc.unix.listen(dir .. "/i.sock")
v, err = interrupted_wait("server:accept", function() return srv:accept(timeout) end)
assert(v == nil and err == "timeout")
local d = ipc.unix.dgram(dir .. "/d.sock")
v, err = interrupted_wait("dgram:recvfrom", function() return d:recvfrom(timeout) end)
assert(v == nil and err == "timeout")
assert(#interrupted_wait("ipc.wait", function() return ipc.wait({q, r, sa, srv, d}, timeout) end) == 0)
interrupted_wait("ipc.sleep", function() ipc.sleep(timeout) end)
stop:set()
storm:join() holder:join() sleeper:join()
srv:close() d:close()
os.execute("rm -rf " .. dir)
print("every timed wait survived its interruptions")
