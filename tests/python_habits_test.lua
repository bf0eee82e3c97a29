-- No silent divergence: a call given more arguments than it takes, or an options table
-- with a key it does not know, is an error that names the call and what it takes; for a
-- Python habit, the error says how to write it here.
local ipc = require("ipc")
local t = ipc.test

local q = ipc.queue()
-- Python's get(block, timeout) would block here for ever (true is "wait for ever").
t.raises(function() q:get(true, 0.05) end,
  "^[^\n]*queue:get: takes %(timeout%), got 2 arguments; Python's get%(block, "
  .. "timeout%) is get%(timeout%) or get_nowait%(%)")
t.raises(function() q:put(1, true, 0.05) end,
  "queue:put: takes %(item, timeout%), got 3 arguments; Python's put%(item, block, timeout%)")
t.raises(function() q:qsize(1) end, "queue:qsize: takes no arguments, got 1 argument")
t.eq(q:qsize(), 0, "nothing was put by the calls that raised")
-- Trailing nils are not arguments.
q:put(1, nil, nil)
t.eq(q:get(nil, nil), 1)

local l = ipc.lock()
t.raises(function() l:acquire(0, 1) end,
  "lock:acquire: takes %(timeout%), got 2 arguments; Python's acquire%(block, timeout%) is acquire%(timeout%)")
t.eq(l:locked(), false)
t.raises(function() ipc.rlock():acquire(false, 1) end, "rlock:acquire: takes %(timeout%)")
t.raises(function() ipc.semaphore():acquire(true, 1) end, "semaphore:acquire: takes %(timeout%)")
t.raises(function() ipc.condition():acquire(true, 1) end, "condition:acquire: takes %(timeout%)")
t.raises(function() ipc.value("i", 0):lock(true, 1) end,
  "value:lock: takes %(timeout%), got 2 arguments; Python's acquire%(block, timeout%) is lock%(timeout%)")
t.raises(function() ipc.event():wait(1, 2) end, "event:wait: takes %(timeout%), got 2 arguments")
t.raises(function() ipc.event():set(true) end, "event:set: takes no arguments, got 1 argument")
t.raises(function() ipc.barrier(1):wait(1, 2) end, "barrier:wait: takes %(timeout%)")
local a, b = ipc.pipe()
t.raises(function() a:send(1, 2) end, "connection:send: takes %(value%), got 2 arguments")
t.raises(function() b:recv(1, 2) end, "connection:recv: takes %(timeout%)")
t.raises(function() a:send_bytes("x", 0, 1, 2) end, "connection:send_bytes: takes %(s, offset, size%), got 4 arguments")
t.eq(b:poll(), false)
local p = ipc.spawn(function() end)
t.raises(function() p:join(5, 1) end, "process:join: takes %(timeout%)")
p:join()
t.raises(function() ipc.sleep(0, 1) end, "ipc.sleep: takes %(seconds%), got 2 arguments")
t.raises(function() ipc.now(1) end, "ipc.now: takes no arguments")
t.raises(function() ipc.wait({q}, 0, 1) end, "ipc.wait: takes %(list, timeout%)")
t.raises(function() ipc.barrier(2, nil, 5) end,
  "ipc.barrier: takes %(parties, options%), got 3 arguments; Python's Barrier%(parties, action, "
  .. "timeout%) is ipc.barrier%(parties, {action = f, timeout = t}%)")
local c = ipc.condition()
c:acquire()
t.raises(function() c:wait_for(function() return true end, 1, 2) end,
  "condition:wait_for: takes %(predicate, timeout%)")
t.eq(c:wait_for(function() return true end, 1, nil), true)
c:release()

-- Unknown keys in options tables.
t.raises(function() ipc.value("i", 0, {lock = false}) end,
  "ipc.value: unknown option lock %(it takes name%); Python's lock=False is how values work here")
t.raises(function() ipc.array("i", 3, {lock = false}) end, "ipc.array: unknown option lock")
t.raises(function() ipc.queue(0, {maxsize = 3}) end,
  "ipc.queue: unknown option maxsize %(it takes name, ring%); maxsize is argument 1: ipc.queue%(maxsize, options%)")
t.raises(function() ipc.joinable_queue(0, {rings = 4096}) end, "ipc.joinable_queue: unknown option rings")
t.raises(function() ipc.barrier(2, {parties = 3}) end,
  "ipc.barrier: unknown option parties %(it takes name, action, timeout%)")
t.raises(function() ipc.process{target = print, kwargs = {}} end,
  "ipc.process: unknown option kwargs %(it takes name, target, args, daemon%); Lua has no keyword arguments")
t.raises(function() ipc.lock({timeout = 1}) end, "ipc.lock: unknown option timeout %(it takes name%)")
t.raises(function() ipc.rlock({ctx = 1}) end,
  "ipc.rlock: unknown option ctx %(it takes name%); there is one start method here")
t.raises(function() ipc.semaphore(1, {block = true}) end, "ipc.semaphore: unknown option block")
t.raises(function() ipc.event({nam = "e"}) end, "ipc.event: unknown option nam %(it takes name%)")
t.raises(function() ipc.condition({nam = "c"}) end, "ipc.condition: unknown option nam")
t.raises(function() ipc.condition(ipc.lock(), {nam = "c"}) end, "ipc.condition: unknown option nam")
t.raises(function() ipc.pipe(true, {duplex = false}) end,
  "ipc.pipe: unknown option duplex %(it takes name%); duplex is argument 1")
t.raises(function() ipc.event({[1] = "e"}) end, "ipc.event: options must have string keys, got %[1%]")
t.raises(function() ipc.unix.dgram(nil, {modes = 384}) end,
  "ipc.unix.dgram: unknown option modes %(it takes name, mode%)")
-- The keys they take still work.
t.eq(ipc.event({name = "ev"}).name, nil)  -- (an event has no fields)
t.eq(tostring(ipc.event({name = "ev"})), "<event ev clear>")
t.eq(ipc.barrier(2, {name = "b", timeout = 1, action = function() end}).name, "b")
t.eq(ipc.queue(0, {name = "q", ring = 8192}) ~= nil, true)
print("python habits ok")
