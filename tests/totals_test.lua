-- 32 processes share one queue, one semaphore and one value; the totals are exact.
local ipc = require("ipc")
local workers = tonumber(arg[1]) or 32
local per = tonumber(arg[2]) or 300

local q = ipc.queue(64)
local slots = ipc.semaphore(4)          -- at most 4 inside the "critical region" at once
local inside = ipc.value("i", 0)
local peak = ipc.value("i", 0)
local sum = ipc.value("q", 0)
local consumed = ipc.value("q", 0)

local ps = {}
for w = 1, workers do
  ps[w] = ipc.spawn(function()
    for i = 1, per do
      q:put(w * 100000 + i)
      local item = q:get()
      slots:acquire()
      local now = inside:add(1)
      local p = peak.value
      while now > p and not peak:compare_swap(p, now) do p = peak.value end
      sum:add(item)
      consumed:add(1)
      inside:add(-1)
      slots:release()
    end
  end)
end
for _, p in ipairs(ps) do assert(p:join(120), "a worker hung") assert(p.exitcode == 0) end
local expected = 0
for w = 1, workers do for i = 1, per do expected = expected + w * 100000 + i end end
assert(consumed.value == workers * per, "items: " .. consumed.value)
assert(sum.value == expected, "sum: " .. sum.value .. " ~= " .. expected)
assert(q:empty() and slots:get_value() == 4 and inside.value == 0)
assert(peak.value >= 1 and peak.value <= 4, "the semaphore let " .. peak.value .. " in")
print(string.format("%d processes: %d items, exact totals", workers, consumed.value))
