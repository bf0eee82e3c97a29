-- Large items stream through the queue in frames that are copied in and out without the
-- queue's state lock, beyond the ring's hot zone too. Producers and consumers of such
-- items are SIGKILLed at random moments, mid-copy among them; afterwards the queue is not
-- locked, no half-written frame shows, and a survivor's items arrive whole and in order.
local ipc = require("ipc")
local helpers = require("helpers")
local rounds = tonumber(arg[1]) or 3
math.randomseed(tonumber(arg[2]) or ipc.test.seed())

for round = 1, rounds do
  local q = ipc.queue(round % 2 == 0 and 2 or 0)
  local size = (round % 3 + 1) * 3 * 1048576 + 7   -- 3 to 9 MiB: several frames each
  local base = string.rep("v", size)
  local victims = helpers.spawn_victims(2, function(v, i)
    q:put(base .. "|victim" .. v .. ":" .. i)
    if v == 2 then q:get(0.001) end
  end)
  local eater = ipc.spawn(function()
    while true do assert(q:get():sub(1, 3) == "vvv") end
  end)
  ipc.sleep(0.05 + math.random() * 0.25)
  victims[#victims + 1] = eater
  helpers.kill_all(victims)
  local producer = helpers.spawn_survivor(q, 6, size, 30)
  local got = 0
  while got < 6 do
    local who, i = helpers.take_whole(q, 30, size, round)
    if who == "survivor" then
      got = got + 1
      assert(tonumber(i) == got, "survivor's items out of order")
    end
  end
  assert(producer:join(30))
end
print("queue large kill test ok")
