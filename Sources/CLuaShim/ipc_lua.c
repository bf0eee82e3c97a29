#include "ipc_lua.h"
#include <string.h>
#include <stdio.h>

// MARK: - Trampoline

static int ipc_trampoline(lua_State *L) {
    ipc_swift_function fn = (ipc_swift_function)lua_touserdata(L, lua_upvalueindex(1));
    int n = fn(L);
    if (n < 0) return lua_error(L);
    return n;
}

void ipc_lua_pushswift(lua_State *L, ipc_swift_function fn, int nup) {
    lua_pushlightuserdata(L, (void *)fn);
    if (nup > 0) lua_insert(L, -(nup + 1));
    lua_pushcclosure(L, ipc_trampoline, nup + 1);
}

// MARK: - Guarded calls (with_lock, with)

// The guard: a userdata whose user values hold `release` and the object; closing it
// (normal return, error, or removal from the stack) calls release(object).
static int guard_close(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    lua_getiuservalue(L, 1, 2);
    lua_call(L, 1, 0);
    return 0;
}

static const char *const GUARD_META = "ipc.Guard";

static int guarded_call(lua_State *L) {
    const char *name = lua_tostring(L, lua_upvalueindex(3));
    if (lua_type(L, 2) != LUA_TFUNCTION) {
        return luaL_error(L, "%s: expected a function as argument 1, got %s", name, luaL_typename(L, 2));
    }
    int top = lua_gettop(L);
    // acquire(self)
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
    // the guard, marked to be closed
    lua_newuserdatauv(L, 0, 2);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 2);
    if (luaL_newmetatable(L, GUARD_META)) {
        lua_pushcfunction(L, guard_close);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    lua_toclose(L, -1);
    int guard = lua_gettop(L);
    // fn(...)
    lua_pushvalue(L, 2);
    for (int i = 3; i <= top; i++) lua_pushvalue(L, i);
    lua_call(L, top - 2, LUA_MULTRET);
    return lua_gettop(L) - guard;
}

void ipc_lua_pushguardedcall(lua_State *L, const char *name) {
    lua_pushstring(L, name);
    lua_pushcclosure(L, guarded_call, 3);
}

// MARK: - __index with fields

static int index_with_fields(lua_State *L) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

void ipc_lua_pushindex(lua_State *L) {
    lua_pushcclosure(L, index_with_fields, 2);
}

// MARK: - Running code

static int has_position(const char *msg) {
    // "chunk:123:" somewhere before the first space: Lua's own position prefix.
    const char *colon = strchr(msg, ':');
    while (colon != NULL) {
        const char *p = colon + 1;
        if (*p >= '0' && *p <= '9') {
            while (*p >= '0' && *p <= '9') p++;
            if (*p == ':') return 1;
        }
        const char *space = strchr(msg, ' ');
        if (space != NULL && space < colon) return 0;
        colon = strchr(colon + 1, ':');
    }
    return 0;
}

int ipc_lua_msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
            msg = lua_tostring(L, -1);
        } else {
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
        }
    } else if (!has_position(msg)) {
        // Raised by a binding: name the Lua line that made the call.
        lua_Debug ar;
        for (int level = 1; lua_getstack(L, level, &ar); level++) {
            if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
                msg = lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
                break;
            }
        }
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int ipc_lua_docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, ipc_lua_msghandler);
    lua_insert(L, base);
    int status = lua_pcall(L, narg, nres, base);
    lua_remove(L, base);
    return status;
}

static int openlibs(lua_State *L) {
    luaL_openlibs(L);
    return 0;
}

static int randomseed(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, LUA_MATHLIBNAME) != LUA_TTABLE) return 0;
    lua_getfield(L, -1, "randomseed");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
    return 0;
}

int ipc_lua_randomseed(lua_State *L, lua_Integer seed) {
    lua_pushcfunction(L, randomseed);
    lua_pushinteger(L, seed);
    int status = lua_pcall(L, 1, 0, 0);
    if (status != LUA_OK) lua_pop(L, 1);
    return status;
}

int ipc_lua_openlibs(lua_State *L) {
    lua_pushcfunction(L, openlibs);
    return lua_pcall(L, 0, 0, 0);
}

int ipc_lua_callerlocation(lua_State *L, int level, char *src, size_t cap, int *line) {
    lua_Debug ar;
    for (; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            snprintf(src, cap, "%s", ar.short_src);
            *line = ar.currentline;
            return 1;
        }
    }
    return 0;
}
