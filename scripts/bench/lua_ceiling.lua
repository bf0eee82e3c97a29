-- value_lock's loop in plain lua5.4 on an object that does nothing (c/lua_ceiling.c), in
-- one process: the most any binding of that loop can reach.
--   lua5.4 lua_ceiling.lua MODULE.so N
local open = assert(package.loadlib(arg[1], "luaopen_lua_ceiling"))
local v = open()()
local n = tonumber(arg[2])
local t0 = os.clock()
for _ = 1, n do v:lock() v.value = v.value + 1 v:unlock() end
local dt = os.clock() - t0
assert(v.value == n)
print(string.format("lua_ceiling %d %.6f", n, dt))
