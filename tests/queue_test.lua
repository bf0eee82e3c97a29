-- Queues: every call of the contract, its timeouts and its errors.
local ipc = require("ipc")
local helpers = require("helpers")

local q = ipc.queue()
assert(q:empty() and not q:full() and q:qsize() == 0)
assert(q:put(1) == true)
assert(q:put("two") == true)
assert(q:qsize() == 2 and not q:empty())
assert(q:get() == 1 and q:get() == "two")

-- get with a timeout on an empty queue
local t0 = ipc.now()
local v, err = q:get(0.2)
assert(v == nil and err == "timeout", tostring(err))
assert(ipc.now() - t0 >= 0.19, "returned before the timeout")
v, err = q:get(0)
assert(v == nil and err == "timeout")
v, err = q:get(false)
assert(v == nil and err == "timeout")
v, err = q:get_nowait()
assert(v == nil and err == "empty", tostring(err))

-- bounded queue
local b = ipc.queue(2)
assert(b:put("a") and b:put("b"))
assert(b:full() and b:qsize() == 2)
t0 = ipc.now()
local ok, perr = b:put("c", 0.2)
assert(ok == nil and perr == "timeout", tostring(perr))
assert(ipc.now() - t0 >= 0.19)
ok, perr = b:put_nowait("c")
assert(ok == nil and perr == "full", tostring(perr))
assert(b:get() == "a")
assert(b:put_nowait("c") == true)
assert(b:get_nowait() == "b" and b:get_nowait() == "c")

-- a put blocked on a full queue is released by a get in another process
local full = ipc.queue(1)
full:put("first")
local getter = ipc.spawn(function() ipc.sleep(0.2) assert(full:get() == "first") end)
assert(full:put("second", 30) == true)
getter:join()
assert(full:get() == "second")

-- nil items, and the nil sentinel pattern
local s = ipc.queue()
local c = ipc.spawn(function()
  local n = 0
  for item in helpers.items(s) do n = n + item end
  s:put(n)
end)
for i = 1, 100 do s:put(i) end
s:put(nil)
c:join()
assert(s:get(30) == 5050)

-- close: no more puts or gets from this process; others are unaffected
local cq = ipc.queue()
cq:put("before")
local other = ipc.spawn(function() ipc.sleep(0.2) cq:put("from other") end)
cq:close()
local cv, cerr = cq:put("x")
assert(cv == nil and cerr == "closed", tostring(cerr))
cv, cerr = cq:get()
assert(cv == nil and cerr == "closed", tostring(cerr))
other:join()
assert(cq:qsize() == 2)

-- many producers and consumers: every item arrives exactly once
local work = ipc.queue(16)
local results = ipc.queue()
local producers, consumers = {}, {}
for p = 1, 4 do
  producers[p] = ipc.spawn(function() for i = 1, 500 do work:put(p * 1000 + i) end end)
end
for k = 1, 3 do
  consumers[k] = ipc.spawn(function()
    local seen = {}
    for item in helpers.items(work) do seen[#seen + 1] = item end
    results:put(seen)
  end)
end
for _, p in ipairs(producers) do p:join() end
for _ = 1, 3 do work:put(nil) end
local all = {}
for _ = 1, 3 do
  for _, item in ipairs(results:get(60)) do
    assert(not all[item], "item " .. item .. " delivered twice")
    all[item] = true
  end
end
for p = 1, 4 do for i = 1, 500 do assert(all[p * 1000 + i], "item lost") end end
for _, c2 in ipairs(consumers) do c2:join() end

-- a producer may end before its items are read (unlike Python, joining it is fine)
local early = ipc.queue(1000)
local pr = ipc.spawn(function() for i = 1, 1000 do early:put(string.rep("x", 100) .. i) end end)
assert(pr:join(30), "a producer that filled a queue can be joined")
assert(early:qsize() == 1000)
for i = 1, 1000 do assert(early:get() == string.rep("x", 100) .. i) end

-- misuse
local mok, merr = pcall(ipc.queue, -1)
assert(not mok and merr:find("^ipc.queue: maxsize"), merr)
mok, merr = pcall(ipc.queue, "big")
assert(not mok and merr:find("^ipc.queue:"), merr)
mok, merr = pcall(q.get, q, 0/0)
assert(not mok and merr:find("^queue:get: timeout"), merr)
mok, merr = pcall(q.put, q, 1, "soon")
assert(not mok and merr:find("^queue:put: timeout"), merr)
mok, merr = pcall(q.get)
assert(not mok and merr:find("^queue:get: expected a queue as self"), merr)
mok = pcall(q.task_done, q)
assert(not mok, "a plain queue has no task_done")
print("queues ok")
