-- Processes: spawn, process{}, start, join, is_alive, terminate, kill, fields, current.
local ipc = require("ipc")

assert(ipc.current().name == "MainProcess")
assert(math.type(ipc.current().pid) == "integer")

-- spawn returns a started Process with arguments passed
local a, b = ipc.pipe()
local p = ipc.spawn(function(x, y, z) b:send({x, y, z, ipc.current().name, ipc.current().pid}) end, 1, "two", {3})
local got = a:recv(30)
assert(got[1] == 1 and got[2] == "two" and got[3][1] == 3)
assert(p:join(30) == true)
assert(got[4] == p.name and got[5] == p.pid, "ipc.current() in the child")
assert(p.exitcode == 0 and not p:is_alive())
assert(p.name:match("^Process%-%d+$"), p.name)

-- process{} is not started until start()
local q = ipc.process{target = function(n) os.exit(n) end, args = {7}, name = "seven"}
assert(q.pid == nil and q.exitcode == nil and q.name == "seven" and q.daemon == false)
q:start()
assert(math.type(q.pid) == "integer")
assert(q:join(30))
assert(q.exitcode == 7, "os.exit(7) gives exitcode 7, got " .. tostring(q.exitcode))
local ok, err = pcall(q.start, q)
assert(not ok and err:find("^process:start:"), err)

-- args with holes, via n
local r = ipc.process{target = function(x, y, z) b:send({x == nil, y, z}) end, args = {n = 3, nil, 2, nil}}
r:start()
local holes = a:recv(30)
assert(holes[1] == true and holes[2] == 2 and holes[3] == nil)
r:join()

-- default names count up
local n1 = ipc.process{target = function() end}
local n2 = ipc.process{target = function() end}
local i1 = tonumber(n1.name:match("%d+$"))
local i2 = tonumber(n2.name:match("%d+$"))
assert(i2 == i1 + 1, n1.name .. " then " .. n2.name)

-- name and daemon can be set before start
n1.name = "renamed"
n1.daemon = true
assert(n1.name == "renamed" and n1.daemon == true)
n1:start() n1:join(30)
ok, err = pcall(function() n1.daemon = false end)
assert(not ok and err:find("process.daemon"), err)
ok, err = pcall(function() n1.color = "red" end)
assert(not ok and err:find("cannot set field"), err)

-- exit codes: error -> 1, os.exit(true/false), signals -> -N
local e = ipc.spawn(function() error("deliberate failure, expected in this test") end)
e:join(30)
assert(e.exitcode == 1, "uncaught error gives 1, got " .. tostring(e.exitcode))
local t = ipc.spawn(function() os.exit(false) end) t:join(30) assert(t.exitcode == 1)
local f = ipc.spawn(function() os.exit(true) end) f:join(30) assert(f.exitcode == 0)

local sleeper = ipc.spawn(function() ipc.sleep(60) end)
assert(sleeper:is_alive())
assert(sleeper:join(0.2) == false, "join with a timeout returns false while running")
sleeper:terminate()
assert(sleeper:join(30))
assert(sleeper.exitcode == -15, "terminate gives -15, got " .. tostring(sleeper.exitcode))
assert(not sleeper:is_alive())

local killed = ipc.spawn(function() while true do end end)
killed:kill()
assert(killed:join(30))
assert(killed.exitcode == -9, "kill gives -9, got " .. tostring(killed.exitcode))
killed:kill() -- after reaping: harmless

-- join needs a started child of this process
ok, err = pcall(ipc.process{target = print}.join, ipc.process{target = print})
assert(not ok and err:find("^process:join:"), err)
local other = ipc.spawn(function() ipc.sleep(0.5) end)
local asker = ipc.spawn(function()
  local okj, errj = pcall(other.join, other)
  b:send(okj == false and errj:find("not a child") ~= nil)
end)
assert(a:recv(30) == true, "joining a sibling is an error")
asker:join(30) other:join(30)

-- misuse
ok, err = pcall(ipc.spawn, 42)
assert(not ok and err:find("^ipc.spawn:"), err)
ok, err = pcall(ipc.process, {target = 1})
assert(not ok and err:find("^ipc.process: target"), err)
ok, err = pcall(ipc.process, {target = print, daemon = "yes"})
assert(not ok and err:find("daemon must be a boolean"), err)
ok, err = pcall(p.join, p, 0/0)
assert(not ok and err:find("NaN"), err)
ok, err = pcall(p.join, 5)
assert(not ok and err:find("^process:join: expected a process as self"), err)

-- ipc.sleep and ipc.now
local t0 = ipc.now()
ipc.sleep(0.05)
assert(ipc.now() - t0 >= 0.04)
assert(math.type(ipc.now()) == "float")
ok, err = pcall(ipc.sleep, "x")
assert(not ok and err:find("^ipc.sleep:"), err)

-- grandchildren are named after their parent
local g = ipc.spawn(function()
  local inner = ipc.spawn(function() b:send(ipc.current().name) end)
  inner:join()
end)
local gname = a:recv(30)
assert(gname:match("^Process%-%d+:1$"), gname)
g:join(30)
print("processes ok")
