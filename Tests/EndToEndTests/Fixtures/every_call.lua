-- Makes every call of the `ipc` module at least once, fields included, then prints the
-- methods of each type (from its metatable): GateTests checks that the trace has a slice
-- for each. A method added to a type and not called here fails that test.
local ipc = require("ipc")
local dir = arg[1]
local function use(...) return select("#", ...) end

-- Processes.
local p = ipc.process{target = function(x) return x end, args = {1}, name = "worker"}
p:start()
p:join()
use(p.exitcode, p.pid, p.name, p.daemon)
local child = ipc.spawn(function() ipc.sleep(100) end)
local _ = child:is_alive()
child:terminate()
child:join()
local killed = ipc.spawn(function() ipc.sleep(100) end)
killed:kill()
killed:join()
ipc.current()
ipc.sleep(0)
ipc.now()
ipc.cpu_count()
ipc.parent_process()
ipc.active_children()

-- Pipes.
local a, b = ipc.pipe()
a:send(1)
b:poll(0)
b:recv()
a:send_bytes("x")
b:recv_bytes()
use(a:closed(), a:readable(), a:writable())
a:close()

-- Queues.
local q = ipc.queue(2)
local jq = ipc.joinable_queue(2)
for _, queue in ipairs({q, jq}) do
  queue:put(1)
  queue:put_nowait(2)
  queue:get()
  queue:get_nowait()
  use(queue:qsize(), queue:empty(), queue:full())
end
jq:task_done()
jq:task_done()
jq:join()
q:close()
jq:close()

-- Shared values and arrays.
local v = ipc.value("i", 0)
v.value = v.value + 1
v:lock()
v:unlock()
v:with_lock(function() end)
v:add(1)
v:compare_swap(2, 3)
local arr = ipc.array("i", 3)
arr[1] = arr[2]
use(#arr, arr:totable())
arr:lock()
arr:unlock()
arr:add(1, 1)
for _, x in ipairs(arr) do local _ = x end

-- Synchronisation.
local s = ipc.semaphore(1)
s:acquire()
s:release()
s:get_value()
s:with(function() end)
local bs = ipc.bounded_semaphore(1)
bs:acquire()
bs:release()
bs:get_value()
bs:with(function() end)
for _, l in ipairs({ipc.lock(), ipc.rlock()}) do
  l:acquire()
  l:release()
  l:with(function() end)
  l:locked()
end
local rw = ipc.rwlock()
rw:acquire_read()
rw:readers()
rw:release_read()
rw:acquire_write()
rw:release_write()
rw:with_read(function() end)
rw:with_write(function() end)
local e = ipc.event()
e:set()
e:is_set()
e:wait()
e:clear()
local c = ipc.condition()
c:acquire()
c:notify()
c:notify_all()
c:wait(0)
c:wait_for(function() return true end)
c:release()
c:with(function() end)
local bar = ipc.barrier(1)
bar:wait()
use(bar.n_waiting, bar.broken, bar.parties)
bar:reset()
bar:abort()

-- Sockets.
local path = dir .. "/every.sock"
local srv = ipc.unix.listen(path)
local cl = ipc.unix.connect(path)
local peer = srv:accept()
cl:send("hi")
peer:recv(2)
peer:send_handle(cl)
cl:recv_handle()
srv:path()
cl:close()
peer:close()
srv:close()
local x, y = ipc.unix.socketpair()
x:close()
y:close()
local d1 = ipc.unix.dgram(dir .. "/d1.sock")
local d2 = ipc.unix.dgram(dir .. "/d2.sock")
d2:sendto(dir .. "/d1.sock", "x")
d1:recvfrom()
d1:path()
d1:close()
d2:close()

-- Waiting on several things.
local w1, w2 = ipc.pipe()
w1:send(1)
ipc.wait({w2}, 0)

-- The methods of every type.
local function list(o)
  local mt = getmetatable(o)
  local names = {}
  for name in pairs(mt.methods) do names[#names + 1] = name end
  table.sort(names)
  print("methods " .. tostring(o):match("^<(%S+)") .. " " .. table.concat(names, " "))
end
local objects = {p, a, q, jq, v, arr, s, bs, ipc.lock(), ipc.rlock(), rw, e, c, bar, srv, x, d1}
for _, o in ipairs(objects) do list(o) end

-- Every type the module registers is among them: a new kind fails here, by name.
local made = {}
for _, o in ipairs(objects) do made[getmetatable(o).__name] = true end
for key, mt in pairs(debug.getregistry()) do
  if type(key) == "string" and key:match("^ipc%.%u") and type(mt) == "table" and mt.methods then
    assert(made[key], "every_call.lua makes no " .. key .. ": make one and call each of its methods here")
  end
end

-- The module's functions: each is a call that must leave a slice too.
for _, t in ipairs({{"ipc", ipc}, {"ipc.unix", ipc.unix}}) do
  local names = {}
  for name, f in pairs(t[2]) do
    if type(f) == "function" and debug.getinfo(f, "S").what == "C" then names[#names + 1] = t[1] .. "." .. name end
  end
  table.sort(names)
  print("functions " .. table.concat(names, " "))
end
