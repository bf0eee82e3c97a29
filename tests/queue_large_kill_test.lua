-- Large items stream through the queue in frames that are copied in and out without the
-- queue's state lock, beyond the ring's hot zone too. Producers and consumers of such
-- items are SIGKILLed at random moments, mid-copy among them; afterwards the queue is not
-- locked, no half-written frame shows, and a survivor's items arrive whole and in order.
local ipc = require("ipc")
local rounds = tonumber(arg[1]) or 3
math.randomseed(tonumber(arg[2]) or ipc.test.seed())

for round = 1, rounds do
  local q = ipc.queue(round % 2 == 0 and 2 or 0)
  local size = (round % 3 + 1) * 3 * 1048576 + 7   -- 3 to 9 MiB: several frames each
  local victims = {}
  for v = 1, 2 do
    victims[v] = ipc.spawn(function()
      local base = string.rep("v", size)
      local i = 0
      while true do
        i = i + 1
        q:put(base .. "|victim" .. v .. ":" .. i)
        if v == 2 then q:get(0.001) end
      end
    end)
  end
  local eater = ipc.spawn(function()
    while true do assert(q:get():sub(1, 3) == "vvv") end
  end)
  ipc.sleep(0.05 + math.random() * 0.25)
  for _, v in ipairs(victims) do v:kill() end
  eater:kill()
  for _, v in ipairs(victims) do v:join() end
  eater:join()
  local producer = ipc.spawn(function()
    for i = 1, 6 do assert(q:put(string.rep("s", size) .. "|survivor:" .. i, 30), "put blocked after a kill") end
  end)
  local got = 0
  while got < 6 do
    local item, err = q:get(30)
    assert(err == nil, "get blocked after a kill (round " .. round .. "): " .. tostring(err))
    local body, who, i = item:match("^(%a*)|(%a+)%d*:(%d+)$")
    assert(body and #body == size and body == string.rep(who == "survivor" and "s" or "v", size),
           "item corrupted (round " .. round .. ")")
    if who == "survivor" then
      got = got + 1
      assert(tonumber(i) == got, "survivor's items out of order")
    end
  end
  assert(producer:join(30))
end
print("queue large kill test ok")
