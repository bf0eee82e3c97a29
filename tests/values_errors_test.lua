-- What cannot travel is an error that names where it sits, and leaves the channel usable.
local ipc = require("ipc")
local q = ipc.queue()

local function fails(pattern, ...)
  local ok, err = pcall(q.put, q, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(err:find(pattern, 1, true), "got: " .. err)
  assert(err:sub(1, 10) == "queue:put:", "message does not start with the call's name: " .. err)
end

fails("queue:put: cannot send a function (at value)", print)
fails("cannot send a function (at value.handler)", {handler = function() end})
fails("cannot send a function (at value[2])", {1, print})
fails("cannot send a function (at value.a.b[\"two words\"])", {a = {b = {["two words"] = print}}})
fails("cannot send a coroutine (at value.co)", {co = coroutine.create(print)})
fails("cannot send a queue", {q})
fails("cannot send a userdata (at value)", io.stdout)
local t = {} t.again = t
fails("cannot send a table that contains itself (at value.again)", t)
local u = {inner = {}} u.inner.up = u
fails("contains itself (at value.inner.up)", u)
fails("as a table key", {[print] = 1})

local tooDeep = {}
local cur = tooDeep
for _ = 1, 1100 do cur[1] = {} cur = cur[1] end
fails("nested deeper than", tooDeep)

-- nothing half-sent: the queue still works and is empty
assert(q:empty())
q:put("after")
assert(q:get(1) == "after")

-- a pipe reports the same errors with its own name
local a, _ = ipc.pipe()
local ok, err = pcall(a.send, a, {f = print})
assert(not ok and err == "connection:send: cannot send a function (at value.f)", err)
print("value errors ok")
