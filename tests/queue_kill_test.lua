-- A process SIGKILLed while inside put or get leaves the queue usable for the others.
-- Producers and consumers are killed at random moments; the survivors finish, and every
-- item that was not held by a killed process arrives exactly once.
local ipc = require("ipc")
local helpers = require("helpers")
local rounds = tonumber(arg[1]) or 12
math.randomseed(tonumber(arg[2]) or ipc.test.seed())

for round = 1, rounds do
  local ring = (round % 2 == 0) and 65536 or nil   -- odd rounds: small items; even: streamed
  local q = ipc.queue(round % 3 == 0 and 4 or 0, {ring = ring})
  local size = ring and 40000 or 50
  local victims = helpers.spawn_victims(2, function(v, i)
    q:put(string.rep("v", size) .. "|victim" .. v .. ":" .. i)
    q:get(0.001)
  end)
  ipc.sleep(math.random() * 0.05)
  helpers.kill_all(victims)
  -- Survivors: the queue is not locked, and its contents are whole items.
  local producer = helpers.spawn_survivor(q, 50, size, 10)
  local seen = {}
  local got = 0
  while got < 50 do
    local who, i = helpers.take_whole(q, 10, size, round)
    if who == "survivor" then
      assert(not seen[i], "duplicate")
      seen[i] = true
      got = got + 1
    end
  end
  assert(producer:join(10))
end
print("queue kill test ok")
