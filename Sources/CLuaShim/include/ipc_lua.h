// The C side of the Lua bindings.
//
// Lua raises errors with longjmp, and a longjmp across Swift frames is undefined
// behaviour. So every Lua-visible function is the small C trampoline below: it calls a
// Swift function, which only uses Lua API calls that cannot raise and returns either a
// result count or IPC_LUA_RAISE with the error value pushed; the trampoline then calls
// lua_error from C, after the Swift frame has returned.
//
// Lua's headers define much of the API as function-like macros, which Swift cannot
// import; they are re-exported here as static inline functions.
#ifndef IPCPLAY_IPC_LUA_H
#define IPCPLAY_IPC_LUA_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/// Returned by a Swift binding to ask its trampoline to raise the value on top of the stack.
#define IPC_LUA_RAISE (-1)

/// A Lua-visible function written in Swift: returns a result count or IPC_LUA_RAISE.
typedef int (*ipc_swift_function)(lua_State *L);

// MARK: - Function-like macros of lua.h and lauxlib.h

static inline int ipc_lua_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline int ipc_lua_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline void ipc_lua_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void ipc_lua_newtable(lua_State *L) { lua_newtable(L); }
static inline void ipc_lua_insert(lua_State *L, int idx) { lua_insert(L, idx); }
static inline void ipc_lua_remove(lua_State *L, int idx) { lua_remove(L, idx); }
static inline void ipc_lua_replace(lua_State *L, int idx) { lua_replace(L, idx); }
static inline int ipc_lua_isnoneornil(lua_State *L, int idx) { return lua_isnoneornil(L, idx); }
static inline const char *ipc_lua_tostring(lua_State *L, int idx) { return lua_tostring(L, idx); }
static inline void *ipc_lua_newuserdata(lua_State *L, size_t size) { return lua_newuserdatauv(L, size, 1); }
static inline int ipc_lua_getuservalue(lua_State *L, int idx) { return lua_getiuservalue(L, idx, 1); }
static inline int ipc_lua_setuservalue(lua_State *L, int idx) { return lua_setiuservalue(L, idx, 1); }
static inline void ipc_lua_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
static inline const char *ipc_lua_typename_at(lua_State *L, int idx) { return luaL_typename(L, idx); }
static inline lua_Integer ipc_lua_maxinteger(void) { return LUA_MAXINTEGER; }
static inline lua_Integer ipc_lua_mininteger(void) { return LUA_MININTEGER; }
/// Pushes the metatable registered under `tname` (luaL_getmetatable); no metamethods run.
static inline int ipc_lua_getregisteredmetatable(lua_State *L, const char *tname) {
    return lua_getfield(L, LUA_REGISTRYINDEX, tname);
}

// MARK: - Swift functions as Lua functions

/// Pushes a Lua C closure that runs `fn` through the raising trampoline. `nup` values on
/// top of the stack become upvalues 2..nup+1 (upvalue 1 holds `fn`).
void ipc_lua_pushswift(lua_State *L, ipc_swift_function fn, int nup);

/// Pushes a function `f(self, fn, ...)` that calls `acquire(self)`, then `fn(...)`, and
/// always calls `release(self)` afterwards, also when `fn` raises (a to-be-closed slot,
/// so the error keeps its own traceback). `acquire` and `release` are on the stack top
/// (acquire below release) and are popped.
void ipc_lua_pushguardedcall(lua_State *L, const char *name);

/// Pushes an `__index` function for a type with fields: it returns the method named by
/// the key from the method table (without leaving C), or else calls the field function
/// `f(object, key)`. The method table and `f` are on the stack top (table below f) and
/// are popped.
void ipc_lua_pushindex(lua_State *L);

// MARK: - Running Lua code

/// lua.c's message handler: turns the error into a string and appends a traceback. A
/// message raised by a binding (which carries no position) gets the position of the Lua
/// code that made the call.
int ipc_lua_msghandler(lua_State *L);

/// lua.c's docall: calls the function below `narg` arguments in protected mode with the
/// message handler. Never raises; returns the lua_pcall status.
int ipc_lua_docall(lua_State *L, int narg, int nres);

/// lua_pcall without a message handler (the macro form of lua_pcallk).
static inline int ipc_lua_pcall(lua_State *L, int narg, int nres, int msgh) {
    return lua_pcall(L, narg, nres, msgh);
}

/// Loads a file as a chunk (luaL_loadfilex never raises; the error is pushed).
static inline int ipc_lua_loadfile(lua_State *L, const char *path) {
    return luaL_loadfilex(L, path, NULL);
}

/// Loads a string as a chunk named `name`.
static inline int ipc_lua_loadbuffer(lua_State *L, const char *s, size_t len, const char *name) {
    return luaL_loadbufferx(L, s, len, name, NULL);
}

/// A full garbage collection (lua_gc is variadic). Finalizers run protected: never raises
/// (but for memory errors).
static inline void ipc_lua_fullgc(lua_State *L) { lua_gc(L, LUA_GCCOLLECT); }

/// The bytes the state has allocated (LUA_GCCOUNT and LUA_GCCOUNTB). Never raises.
static inline size_t ipc_lua_memory_bytes(lua_State *L) {
    return (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
}

/// `math.randomseed(seed)` (the standard library's, whatever the script did to the global
/// `math`), in protected mode; returns a lua_pcall status.
int ipc_lua_randomseed(lua_State *L, lua_Integer seed);

/// Opens the standard libraries in protected mode; returns a lua_pcall status.
int ipc_lua_openlibs(lua_State *L);

/// The first Lua frame's source and line, walking up from `level`; returns 0 if none.
int ipc_lua_callerlocation(lua_State *L, int level, char *src, size_t cap, int *line);

#endif
