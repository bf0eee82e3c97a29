-- Lua 5.4 idioms on ipc objects: to-be-closed variables, ipairs over arrays, tostring and
-- __name alike for every type.
local ipc = require("ipc")
local t = ipc.test

-- `<close>` closes queues, connections, sockets and servers at the end of the block.
local q_outside, a_outside, s_outside
do
  local q <close> = ipc.queue()
  local pa, pb = ipc.pipe()
  local a <close> = pa          -- (Lua allows one to-be-closed variable per local statement)
  local b <close> = pb
  local sa, sb = ipc.unix.socketpair()
  local s1 <close> = sa
  local s2 <close> = sb
  assert(q:put(1) and a:send("x") and s1:send("y"))
  q_outside, a_outside, s_outside = q, a, s1
  t.eq(b:recv(1), "x")
  t.eq(s2:recv(1, 1), "y")
end
t.eq({q_outside:put(2)}, {nil, "closed"}, "the queue is closed after its block")
t.eq(a_outside:closed(), true, "the connection is closed after its block")
t.eq({s_outside:send("z")}, {nil, "closed"}, "the socket is closed after its block")

-- A server removes its socket file when its block ends, even when the block raises.
local path = os.tmpname()
os.remove(path)
local ok = pcall(function()
  local srv <close> = ipc.unix.listen(path)
  assert(srv:path() == path)
  error("leaving the block")
end)
assert(not ok)
t.eq(io.open(path), nil, "the server's socket file is gone")

-- ipairs walks an array and stops after a[#a]; reads outside 1..#a are nil.
local arr = ipc.array("i", {10, 20, 30})
local seen = {}
for i, x in ipairs(arr) do seen[i] = x end
t.eq(seen, {10, 20, 30})
t.eq(arr[0], nil)
t.eq(arr[4], nil)
t.raises(function() arr[4] = 1 end, "^array: index 4 is outside 1%.%.3")
local empty = ipc.array("d", 0)
for _ in ipairs(empty) do error("an empty array has no elements") end

-- tostring is "<kind name details>"; __name is the type.
local objects = {
  {ipc.queue(0, {name = "jobs"}), "queue jobs", "ipc.Queue"},
  {ipc.joinable_queue(0, {name = "work"}), "joinable_queue work", "ipc.JoinableQueue"},
  {(ipc.pipe(true, {name = "wire"})), "connection wire", "ipc.Connection"},
  {ipc.value("i", 0, {name = "n"}), "value n", "ipc.Value"},
  {ipc.array("i", 2, {name = "xs"}), "array xs", "ipc.Array"},
  {ipc.semaphore(1, {name = "s"}), "semaphore s", "ipc.Semaphore"},
  {ipc.bounded_semaphore(1, {name = "bs"}), "bounded_semaphore bs", "ipc.BoundedSemaphore"},
  {ipc.lock({name = "l"}), "lock l", "ipc.Lock"},
  {ipc.rlock({name = "rl"}), "rlock rl", "ipc.RLock"},
  {ipc.event({name = "e"}), "event e", "ipc.Event"},
  {ipc.condition(nil, {name = "c"}), "condition c", "ipc.Condition"},
  {ipc.barrier(2, {name = "b"}), "barrier b", "ipc.Barrier"},
  {ipc.process{target = function() end, name = "p"}, "process p", "ipc.Process"},
  {ipc.unix.dgram(nil, {name = "d"}), "dgram d", "ipc.Dgram"},
}
for _, o in ipairs(objects) do
  local text = tostring(o[1])
  assert(text:sub(1, #o[2] + 1) == "<" .. o[2], "tostring: " .. text .. " (expected <" .. o[2] .. " ...>)")
  t.eq(getmetatable(o[1]).__name, o[3])
end
print("idioms ok")
