-- Items larger than the ring stream through it, with several producers and consumers.
local ipc = require("ipc")
local helpers = require("helpers")
local q = ipc.queue(0, {ring = 65536})          -- 64 KiB ring: frames of 16 KiB
local results = ipc.queue()

local function item(p, i)
  local size = ({100, 20000, 70000, 300000, 5})[(i % 5) + 1]
  return string.rep(string.char(65 + p), size) .. "#" .. p .. ":" .. i
end

local producers = {}
for p = 1, 3 do
  producers[p] = ipc.spawn(function() for i = 1, 40 do assert(q:put(item(p, i))) end end)
end
local consumers = {}
for c = 1, 2 do
  consumers[c] = ipc.spawn(function()
    local got = {}
    for v in helpers.items(q) do
      local p, i = v:match("#(%d+):(%d+)$")
      assert(v == item(tonumber(p), tonumber(i)), "item corrupted")
      got[#got + 1] = p .. ":" .. i
    end
    results:put(got)
  end)
end
for _, p in ipairs(producers) do p:join() end
q:put(nil) q:put(nil)
local seen, count = {}, 0
for _ = 1, 2 do
  for _, key in ipairs(results:get(60)) do
    assert(not seen[key], "duplicate " .. key)
    seen[key] = true
    count = count + 1
  end
end
assert(count == 120, "expected 120 items, got " .. count)
for _, c in ipairs(consumers) do c:join() end

-- a streamed put times out cleanly when nobody takes the item, and the queue stays usable
local lonely = ipc.queue(0, {ring = 65536})
local ok, err = lonely:put(string.rep("z", 200000), 0.3)
assert(ok == nil and err == "timeout", tostring(err))
lonely:put("small")
local first = lonely:get(5)
assert(first == "small", "the aborted item must not be delivered: got " .. tostring(first and #first))
print("streaming ok")
