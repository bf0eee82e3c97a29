-- What several scenario tests share (a module beside them, not a test: its name does not
-- end in _test.lua). `local helpers = require("helpers")`.
local ipc = require("ipc")
local helpers = {}

-- The items of queue q in a generic for, up to its nil sentinel (which ends the loop).
function helpers.items(q)
  return function() return q:get() end
end

-- Spawns `count` processes that call step(v, i) for i = 1, 2, ... until they are killed
-- (v: which of them, 1 to count).
function helpers.spawn_victims(count, step)
  local victims = {}
  for v = 1, count do
    victims[v] = ipc.spawn(function()
      local i = 0
      while true do
        i = i + 1
        step(v, i)
      end
    end)
  end
  return victims
end

-- SIGKILLs every process of the list, then joins each.
function helpers.kill_all(processes)
  for _, p in ipairs(processes) do p:kill() end
  for _, p in ipairs(processes) do p:join() end
end

-- After the kills: a process that puts `count` items of `size` bytes ("sss...|survivor:i"),
-- each put within `timeout` seconds.
function helpers.spawn_survivor(q, count, size, timeout)
  return ipc.spawn(function()
    for i = 1, count do
      assert(q:put(string.rep("s", size) .. "|survivor:" .. i, timeout), "put blocked after a kill")
    end
  end)
end

-- Takes an item a victim or the survivor put, within `timeout` seconds, and checks that it
-- is whole; returns who put it ("victim" or "survivor") and its number (a string).
function helpers.take_whole(q, timeout, size, round)
  local item, err = q:get(timeout)
  assert(err == nil, "get blocked after a kill (round " .. round .. "): " .. tostring(err))
  local body, who, i = item:match("^(%a*)|(%a+)%d*:(%d+)$")
  assert(body and #body == size and body == string.rep(who == "survivor" and "s" or "v", size),
         "item corrupted (round " .. round .. ")")
  return who, i
end

return helpers
