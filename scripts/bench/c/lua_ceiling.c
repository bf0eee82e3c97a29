/* The Lua side's ceiling for value_lock: an object shaped like `ipc.value` (a userdata
 * with a metatable of its own, whose `__index` is a table of C methods `lock` and
 * `unlock`, whose own `__index` is a C closure over the object serving the field `value`,
 * and a C `__newindex`) that does nothing else. `lua5.4` running value_lock's loop on it,
 * in one process with no lock at all, is as fast as any binding of that shape can be
 * (scripts/bench/lua_ceiling.lua). */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

static lua_Integer counter;

static int nothing(lua_State *L) {
    (void)L;
    return 0;
}

/* (method table, key), the object as upvalue 1 */
static int index_field(lua_State *L) {
    const char *key = lua_tostring(L, 2);
    if (lua_touserdata(L, lua_upvalueindex(1)) != NULL && key != NULL && strcmp(key, "value") == 0) {
        lua_pushinteger(L, counter);
        return 1;
    }
    return 0;
}

static int newindex_field(lua_State *L) {
    counter = lua_tointeger(L, 3);
    return 0;
}

static int new_object(lua_State *L) {
    lua_newuserdatauv(L, 64, 0);             /* the object */
    lua_createtable(L, 0, 2);                /* its own metatable */
    lua_createtable(L, 0, 2);                /* its method table */
    lua_pushcfunction(L, nothing);
    lua_setfield(L, -2, "lock");
    lua_pushcfunction(L, nothing);
    lua_setfield(L, -2, "unlock");
    lua_createtable(L, 0, 1);                /* the method table's metatable */
    lua_pushvalue(L, -4);
    lua_pushcclosure(L, index_field, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, newindex_field);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    return 1;
}

int luaopen_lua_ceiling(lua_State *L) {
    lua_pushcfunction(L, new_object);
    return 1;
}
