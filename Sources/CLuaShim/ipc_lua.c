#include "ipc_lua.h"
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

// MARK: - Trampoline

static const char NO_MEMORY[] = "not enough memory";
static char *raise_text;
static size_t raise_len, raise_cap;

void ipc_lua_setraise(const char *message, size_t len) {
    if (len > raise_cap) {
        char *p = realloc(raise_text, len);
        if (p == NULL) {
            message = NO_MEMORY;
            len = sizeof NO_MEMORY - 1;
            if (len > raise_cap) { raise_len = 0; return; }
        } else {
            raise_text = p;
            raise_cap = len;
        }
    }
    if (len > 0) memcpy(raise_text, message, len);
    raise_len = len;
}

int ipc_lua_trampoline(lua_State *L) {
    ipc_swift_function fn = (ipc_swift_function)lua_touserdata(L, lua_upvalueindex(1));
    int n = fn(L);
    if (n < 0) {
        // The Swift frame has returned: pushing may raise (a memory error) from here.
        if (raise_len > 0) lua_pushlstring(L, raise_text, raise_len); else lua_pushstring(L, NO_MEMORY);
        return lua_error(L);
    }
    return n;
}

// MARK: - Protected calls

static char last_error[256];

const char *ipc_lua_lasterror(void) { return last_error; }

/// Runs the C function below `nargs` arguments on the stack top in protected mode.
static int protect(lua_State *L, int nargs, int nresults) { return ipc_lua_protect(L, nargs, nresults); }

int ipc_lua_protect(lua_State *L, int nargs, int nresults) {
    int status = lua_pcall(L, nargs, nresults, 0);
    if (status != LUA_OK) {
        const char *msg = status == LUA_ERRMEM ? NO_MEMORY
            : lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "an error in a protected call";
        snprintf(last_error, sizeof last_error, "%s", msg);
        lua_pop(L, 1);
    }
    return status;
}

/// Fails as a memory error would when the stack cannot take `n` more slots.
static int room(lua_State *L, int n) {
    if (lua_checkstack(L, n)) return 1;
    snprintf(last_error, sizeof last_error, "Lua stack exhausted");
    return 0;
}

static int p_pushlstring(lua_State *L) {
    lua_pushlstring(L, (const char *)lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

int ipc_lua_p_pushlstring(lua_State *L, const char *s, size_t len) {
    if (!room(L, 3)) return LUA_ERRMEM;
    lua_pushcfunction(L, p_pushlstring);
    lua_pushlightuserdata(L, (void *)s);
    lua_pushinteger(L, (lua_Integer)len);
    return protect(L, 2, 1);
}

static int p_createtable(lua_State *L) {
    lua_createtable(L, (int)lua_tointeger(L, 1), (int)lua_tointeger(L, 2));
    return 1;
}

int ipc_lua_p_createtable(lua_State *L, int narr, int nrec) {
    if (!room(L, 3)) return LUA_ERRMEM;
    lua_pushcfunction(L, p_createtable);
    lua_pushinteger(L, narr);
    lua_pushinteger(L, nrec);
    return protect(L, 2, 1);
}

// (value, table, key, keylen): table[key] = value
static int p_setfield(lua_State *L) {
    lua_pushlstring(L, (const char *)lua_touserdata(L, 3), (size_t)lua_tointeger(L, 4));
    lua_pushvalue(L, 1);
    lua_rawset(L, 2);
    return 0;
}

int ipc_lua_p_setfield(lua_State *L, int t, const char *key, size_t keylen) {
    t = lua_absindex(L, t);
    if (!room(L, 5)) { lua_pop(L, 1); return LUA_ERRMEM; }
    lua_pushcfunction(L, p_setfield);
    lua_insert(L, -2);
    lua_pushvalue(L, t);
    lua_pushlightuserdata(L, (void *)key);
    lua_pushinteger(L, (lua_Integer)keylen);
    return protect(L, 4, 0);
}

// (table, key, keylen): table[key]
static int p_getfield(lua_State *L) {
    lua_pushlstring(L, (const char *)lua_touserdata(L, 2), (size_t)lua_tointeger(L, 3));
    lua_rawget(L, 1);
    return 1;
}

int ipc_lua_p_getfield(lua_State *L, int t, const char *key, size_t keylen, int *type) {
    t = lua_absindex(L, t);
    *type = LUA_TNIL;
    if (!room(L, 4)) return LUA_ERRMEM;
    lua_pushcfunction(L, p_getfield);
    lua_pushvalue(L, t);
    lua_pushlightuserdata(L, (void *)key);
    lua_pushinteger(L, (lua_Integer)keylen);
    int status = protect(L, 3, 1);
    if (status == LUA_OK) *type = lua_type(L, -1);
    return status;
}

// (value, table, n): table[n] = value
static int p_rawseti(lua_State *L) {
    lua_pushvalue(L, 1);
    lua_rawseti(L, 2, lua_tointeger(L, 3));
    return 0;
}

int ipc_lua_p_rawseti(lua_State *L, int t, lua_Integer n) {
    t = lua_absindex(L, t);
    if (!room(L, 4)) { lua_pop(L, 1); return LUA_ERRMEM; }
    lua_pushcfunction(L, p_rawseti);
    lua_insert(L, -2);
    lua_pushvalue(L, t);
    lua_pushinteger(L, n);
    return protect(L, 3, 0);
}

static int p_newuserdata(lua_State *L) {
    lua_newuserdatauv(L, (size_t)lua_tointeger(L, 1), 1);
    return 1;
}

int ipc_lua_p_newuserdata(lua_State *L, size_t size, void **block) {
    *block = NULL;
    if (!room(L, 2)) return LUA_ERRMEM;
    lua_pushcfunction(L, p_newuserdata);
    lua_pushinteger(L, (lua_Integer)size);
    int status = protect(L, 1, 1);
    if (status == LUA_OK) *block = lua_touserdata(L, -1);
    return status;
}

/// Runs `f` in protected mode on one argument, the C string `s` (a light userdata), for
/// one result.
static int protect_on_string(lua_State *L, lua_CFunction f, const char *s) {
    if (!room(L, 2)) return LUA_ERRMEM;
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, (void *)s);
    return protect(L, 1, 1);
}

static int p_getmetatable(lua_State *L) {
    // A script can reach the registry (debug.getregistry) and put anything there; what
    // lua_setmetatable is given must be a table (Lua's API does not check).
    const char *name = lua_touserdata(L, 1);
    if (lua_getfield(L, LUA_REGISTRYINDEX, name) != LUA_TTABLE) return luaL_error(L, "the metatable of %s was replaced", name);
    return 1;
}

int ipc_lua_p_getmetatable(lua_State *L, const char *tname) { return protect_on_string(L, p_getmetatable, tname); }

static int p_newmetatable(lua_State *L) {
    luaL_newmetatable(L, (const char *)lua_touserdata(L, 1));
    return 1;
}

int ipc_lua_p_newmetatable(lua_State *L, const char *tname) { return protect_on_string(L, p_newmetatable, tname); }

static int p_newthread(lua_State *L) {
    lua_newthread(L);
    return 1;
}

int ipc_lua_p_newthread(lua_State *L, lua_State **thread) {
    *thread = NULL;
    if (!room(L, 1)) return LUA_ERRMEM;
    lua_pushcfunction(L, p_newthread);
    int status = protect(L, 0, 1);
    if (status == LUA_OK) *thread = lua_tothread(L, -1);
    return status;
}

// (upvalues..., fn): the closure
static int p_pushswift(lua_State *L) {
    int nup = lua_gettop(L) - 1;
    lua_pushcclosure(L, ipc_lua_trampoline, nup + 1);
    return 1;
}

int ipc_lua_pushswift(lua_State *L, ipc_swift_function fn, int nup) {
    if (!room(L, 2)) { lua_pop(L, nup); return LUA_ERRMEM; }
    lua_pushcfunction(L, p_pushswift);
    lua_insert(L, -(nup + 1));
    lua_pushlightuserdata(L, (void *)fn);
    if (nup > 0) lua_insert(L, -(nup + 1));
    return protect(L, nup + 1, 1);
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

// (acquire, release, name): the guarded call
static int p_guardedcall(lua_State *L) {
    lua_pushstring(L, (const char *)lua_touserdata(L, 3));
    lua_replace(L, 3);
    lua_pushcclosure(L, guarded_call, 3);
    return 1;
}

int ipc_lua_pushguardedcall(lua_State *L, const char *name) {
    if (!room(L, 2)) { lua_pop(L, 2); return LUA_ERRMEM; }
    lua_pushcfunction(L, p_guardedcall);
    lua_insert(L, -3);
    lua_pushlightuserdata(L, (void *)name);
    return protect(L, 3, 1);
}

// MARK: - __index with fields

int ipc_lua_index_with_fields(lua_State *L) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

// (methods, f): the __index function
static int p_index(lua_State *L) {
    lua_pushcclosure(L, ipc_lua_index_with_fields, 2);
    return 1;
}

int ipc_lua_pushindex(lua_State *L) {
    if (!room(L, 1)) { lua_pop(L, 2); return LUA_ERRMEM; }
    lua_pushcfunction(L, p_index);
    lua_insert(L, -3);
    return protect(L, 2, 1);
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

// The debug library stays, but three of its functions could reach past Lua into the
// bindings: a C function's upvalues (what ipcplay's C closures read without checks), an
// ipc object's metatable (Lua's io library, given one, calls a word of its block) and
// its user values (a process's target and arguments, read as the table they were).
static int call_original(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int guarded_setupvalue(lua_State *L) {
    if (lua_iscfunction(L, 1)) return luaL_error(L, "debug.setupvalue: a C function's upvalues are its own");
    return call_original(L);
}

static int guarded_setmetatable(lua_State *L) {
    if (ipc_lua_objecttag(L, 1) != NULL) return luaL_error(L, "debug.setmetatable: an ipc object keeps its metatable");
    return call_original(L);
}

static int guarded_setuservalue(lua_State *L) {
    if (ipc_lua_objecttag(L, 1) != NULL) return luaL_error(L, "debug.setuservalue: an ipc object keeps its user values");
    return call_original(L);
}

static void guard(lua_State *L, const char *name, lua_CFunction f) {
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, -2, name);
}

static int openlibs(lua_State *L) {
    luaL_openlibs(L);
    ipc_lua_guardbuffers(L);
    if (lua_getglobal(L, LUA_DBLIBNAME) == LUA_TTABLE) {
        guard(L, "setupvalue", guarded_setupvalue);
        guard(L, "setmetatable", guarded_setmetatable);
        guard(L, "setuservalue", guarded_setuservalue);
    }
    lua_pop(L, 1);
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

int ipc_lua_calllocation(lua_State *L, int level, char *src, size_t cap, int *line,
                         char *caller_src, size_t caller_cap, int *caller_line) {
    lua_Debug ar;
    *caller_line = 0;
    for (; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            snprintf(src, cap, "%s", ar.short_src);
            *line = ar.currentline;
            if (ar.what[0] == 'm') return 1;  // the chunk itself: nothing calls it from a line
            // The first Lua frame out: the line that called this function. A C frame
            // in between (pcall, a metamethod) is passed; the bottom of a coroutine
            // (a process's target) has none.
            for (level++; lua_getstack(L, level, &ar); level++) {
                if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
                    snprintf(caller_src, caller_cap, "%s", ar.short_src);
                    *caller_line = ar.currentline;
                    break;
                }
            }
            return 1;
        }
    }
    return 0;
}
