-- A process SIGKILLed while inside put or get leaves the queue usable for the others.
-- Producers and consumers are killed at random moments; the survivors finish, and every
-- item that was not held by a killed process arrives exactly once.
local ipc = require("ipc")
local rounds = tonumber(arg[1]) or 12
math.randomseed(tonumber(arg[2]) or ipc.test.seed())

for round = 1, rounds do
  local ring = (round % 2 == 0) and 65536 or nil   -- odd rounds: small items; even: streamed
  local q = ipc.queue(round % 3 == 0 and 4 or 0, {ring = ring})
  local size = ring and 40000 or 50
  local victims = {}
  for v = 1, 2 do
    victims[v] = ipc.spawn(function()
      local i = 0
      while true do
        i = i + 1
        q:put(string.rep("v", size) .. "|victim" .. v .. ":" .. i)
        q:get(0.001)
      end
    end)
  end
  ipc.sleep(math.random() * 0.05)
  for _, v in ipairs(victims) do v:kill() end
  for _, v in ipairs(victims) do v:join() end
  -- Survivors: the queue is not locked, and its contents are whole items.
  local producer = ipc.spawn(function()
    for i = 1, 50 do assert(q:put(string.rep("s", size) .. "|survivor:" .. i, 10), "put blocked after a kill") end
  end)
  local seen = {}
  local got = 0
  while got < 50 do
    local item, err = q:get(10)
    assert(err == nil, "get blocked after a kill (round " .. round .. "): " .. tostring(err))
    local body, who, i = item:match("^(%a*)|(%a+)%d*:(%d+)$")
    assert(body and #body == size and body == string.rep(who == "survivor" and "s" or "v", size),
           "item corrupted (round " .. round .. ")")
    if who == "survivor" then
      assert(not seen[i], "duplicate")
      seen[i] = true
      got = got + 1
    end
  end
  assert(producer:join(10))
end
print("queue kill test ok")
