-- No leaks: thousands of spawn/join cycles, and of create/close cycles of every
-- primitive, leave the host's descriptors, mappings and child processes where they were.
--   IPCPLAY_LEAK_CYCLES=100000 ipcplay test --timeout 3600 tests/leaks_test.lua   (longer)
local ipc = require("ipc")
local cycles = tonumber(os.getenv("IPCPLAY_LEAK_CYCLES") or "") or 10000
local pid = ipc.current().pid
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

-- Through a file, not io.popen: the ends of popen's pipe open and close in this very
-- process while the command runs, and the command would count them (or not).
local listing = os.tmpname()
local function count_lines(cmd)
  os.execute(cmd .. " > " .. listing)
  local n = 0
  for _ in io.lines(listing) do n = n + 1 end
  return n
end

local function status(field)
  for line in io.lines("/proc/" .. pid .. "/status") do
    local v = line:match("^" .. field .. ":%s+(%d+)")
    if v then return tonumber(v) end
  end
end

local function snapshot()
  collectgarbage()
  collectgarbage()
  return {
    fds = count_lines("ls /proc/" .. pid .. "/fd"),
    maps = count_lines("cat /proc/" .. pid .. "/maps"),
    vm_kb = status("VmSize"),
    children = count_lines("cat /proc/" .. pid .. "/task/" .. pid .. "/children | tr ' ' '\\n' | grep .") ,
  }
end

local function descriptors()
  local f = io.popen("ls -l /proc/" .. pid .. "/fd")
  local list = f:read("a")
  f:close()
  return list
end

local function same(before, after, what)
  assert(after.fds == before.fds,
    string.format("%s: descriptors %d -> %d:\n%s", what, before.fds, after.fds, descriptors()))
  assert(after.children == before.children,
    string.format("%s: children %d -> %d", what, before.children, after.children))
  -- Allocators map arenas lazily (AddressSanitizer's more so): a few new mappings are
  -- noise; a leak would show one per cycle, thousands.
  assert(after.maps <= before.maps + 16, string.format("%s: mappings %d -> %d", what, before.maps, after.maps))
  assert(after.vm_kb <= before.vm_kb + 64 * 1024,
    string.format("%s: virtual memory %d kB -> %d kB", what, before.vm_kb, after.vm_kb))
end

-- Warm up: the supervisor, the scratch buffers, the libraries.
ipc.spawn(function() end):join()
local q0 = ipc.queue() q0:put(1) q0:get()

local before = snapshot()
local t0 = ipc.now()
for _ = 1, cycles do
  local p = ipc.spawn(function() end)
  assert(p:join(10))
end
same(before, snapshot(), cycles .. " spawn/join cycles")
local spawn_time = ipc.now() - t0

local makers = {
  queue = function() local q = ipc.queue() q:put(1) q:get() q:close() end,
  joinable_queue = function() local q = ipc.joinable_queue(2) q:put(1) q:get() q:task_done() end,
  pipe = function(i) local a, b = ipc.pipe(i % 2 == 0) b:send(i) a:recv() a:close() b:close() end,
  value = function(i) local v = ipc.value("q", i) v:add(1) end,
  array = function() local a = ipc.array("d", 16) a[1] = 1.5 end,
  semaphore = function() local s = ipc.semaphore(1) s:acquire() s:release() end,
  bounded_semaphore = function() local s = ipc.bounded_semaphore(1) s:acquire() s:release() end,
  lock = function() local l = ipc.lock() l:acquire() l:release() end,
  rlock = function() local l = ipc.rlock() l:acquire() l:release() end,
  event = function() local e = ipc.event() e:set() end,
  condition = function() local c = ipc.condition() c:acquire() c:notify() c:release() end,
  barrier = function() local b = ipc.barrier(1) b:wait() end,
  socketpair = function() local a, b = ipc.unix.socketpair() a:send("x") b:recv(1) a:close() b:close() end,
  server = function() local s = ipc.unix.listen(dir .. "/leak.sock") s:close() end,
  dgram = function() local d = ipc.unix.dgram(dir .. "/leak-dgram.sock") d:close() end,
}
local kinds = {}
for name in pairs(makers) do kinds[#kinds + 1] = name end
table.sort(kinds)
t0 = ipc.now()
for _, name in ipairs(kinds) do
  local b = snapshot()
  for i = 1, cycles do makers[name](i) end
  same(b, snapshot(), cycles .. " " .. name .. " create/close cycles")
end
os.execute("rm -rf " .. dir)
os.remove(listing)
print(string.format("leaks: %d spawn/join cycles (%.1f s) and %d create/close cycles of %d primitives (%.1f s): "
  .. "descriptors, mappings and children flat",
  cycles, spawn_time, cycles, #kinds, ipc.now() - t0))
