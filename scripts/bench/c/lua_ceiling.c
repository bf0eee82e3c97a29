/* The Lua side's ceiling for value_lock: an object shaped like `ipc.value` (a userdata
 * whose metatable has a C `__index` serving methods and the field `value`, a C
 * `__newindex`, and C methods `lock` and `unlock`) that does nothing else. `lua5.4`
 * running value_lock's loop on it, in one process with no lock at all, is as fast as any
 * binding of that loop can be (scripts/bench/lua_ceiling.lua). */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

static lua_Integer counter;

static int nothing(lua_State *L) {
    (void)L;
    return 0;
}

static int index_field(lua_State *L) {
    const char *key = lua_tostring(L, 2);
    if (key != NULL && strcmp(key, "value") == 0) {
        lua_pushinteger(L, counter);
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

static int newindex_field(lua_State *L) {
    counter = lua_tointeger(L, 3);
    return 0;
}

static int new_object(lua_State *L) {
    lua_newuserdatauv(L, 64, 0);
    luaL_setmetatable(L, "lua_ceiling");
    return 1;
}

int luaopen_lua_ceiling(lua_State *L) {
    luaL_newmetatable(L, "lua_ceiling");
    lua_newtable(L);
    lua_pushcfunction(L, nothing);
    lua_setfield(L, -2, "lock");
    lua_pushcfunction(L, nothing);
    lua_setfield(L, -2, "unlock");
    lua_pushcclosure(L, index_field, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, newindex_field);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, new_object);
    return 1;
}
