// The decoder of values that travel (the wire format of WireFormat.swift; the encoder is
// LuaCodec.swift, and ipc_lua_encodesimple below for one value that is not a table). It is C because decoding allocates Lua values, and an allocation can
// raise a memory error (a longjmp) and run finalizers: the whole decode runs in one
// protected call, so neither ever crosses a Swift frame.
#include "ipc_lua.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>
#include <math.h>

// WireTag in WireFormat.swift: the two must agree (the codec tests and the fuzzer
// round-trip values through both).
enum {
    TAG_NIL = 0x00, TAG_FALSE = 0x01, TAG_TRUE = 0x02, TAG_INTEGER = 0x03, TAG_FLOAT = 0x04,
    TAG_STRING = 0x05, TAG_TABLE = 0x06,
    TAG_FIXINT = 0x80, FIXINT_MAX = 63, TAG_FIXSTRING = 0xC0, FIXSTRING_MAX = 31,
};

/// Deeper tables are refused (LuaCodec.maxDepth): the recursion is on the C stack.
#define MAX_DEPTH 1000

typedef struct {
    const unsigned char *bytes;
    size_t at, end;
    /// What is left of the table slots the whole message may ask lua_createtable for in
    /// advance: a nested table's bytes are its parent's too, so bounding the hints by the
    /// bytes left at each level alone would let them multiply with the depth.
    size_t preallocation;
    char *error;
    size_t errorcap;
} reader;

/// Raises the reader itself (a light userdata: no allocation) after writing why.
static void malformed(lua_State *L, reader *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, r->errorcap, fmt, ap);
    va_end(ap);
    lua_pushlightuserdata(L, r);
    lua_error(L);
}

static size_t remaining(const reader *r) { return r->end - r->at; }

static unsigned char byte(lua_State *L, reader *r) {
    if (r->at >= r->end) malformed(L, r, "message ends early");
    return r->bytes[r->at++];
}

static uint64_t varint(lua_State *L, reader *r) {
    uint64_t result = 0;
    unsigned shift = 0;
    for (;;) {
        unsigned char b = byte(L, r);
        if (shift == 63 && b > 1) malformed(L, r, "varint overflows 64 bits");
        result |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return result;
        shift += 7;
        if (shift > 63) malformed(L, r, "varint longer than 10 bytes");
    }
}

/// A count that must be backed by at least `each` bytes per element.
static size_t count(lua_State *L, reader *r, size_t each) {
    uint64_t v = varint(L, r);
    if (v > remaining(r) / each) {
        malformed(L, r, "count %llu exceeds the %zu bytes left", (unsigned long long)v, remaining(r));
    }
    return (size_t)v;
}

static const char *take(lua_State *L, reader *r, size_t n) {
    if (n > remaining(r)) malformed(L, r, "string of %zu bytes exceeds the %zu left", n, remaining(r));
    const char *p = (const char *)r->bytes + r->at;
    r->at += n;
    return p;
}

static lua_Integer zigzag(uint64_t u) { return (lua_Integer)((u >> 1) ^ (0 - (u & 1))); }

static lua_Number float64(lua_State *L, reader *r) {
    if (remaining(r) < 8) malformed(L, r, "message ends early");
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--) bits = bits << 8 | r->bytes[r->at + i];
    r->at += 8;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static int clamp(size_t n) { return n > INT_MAX ? INT_MAX : (int)n; }

static void value(lua_State *L, reader *r, int depth);

static void table(lua_State *L, reader *r, int depth) {
    if (depth >= MAX_DEPTH) malformed(L, r, "tables nested deeper than %d", MAX_DEPTH);
    if (!lua_checkstack(L, 4)) malformed(L, r, "Lua stack exhausted");
    // Each element takes at least one byte (a pair two), so a table's sizes are bounded
    // by the bytes left; the hints are also bounded over the whole message, so memory
    // stays linear in its length however deep the nesting.
    size_t n = count(L, r, 1);
    size_t m = count(L, r, 2);
    if (n + 2 * m > remaining(r)) malformed(L, r, "table sizes exceed the bytes left");
    size_t arrayHint = n < r->preallocation ? n : r->preallocation;
    r->preallocation -= arrayHint;
    size_t hashHint = m < r->preallocation ? m : r->preallocation;
    r->preallocation -= hashHint;
    lua_createtable(L, clamp(arrayHint), clamp(hashHint));
    int t = lua_gettop(L);
    for (size_t k = 0; k < n; k++) {
        value(L, r, depth + 1);
        if (lua_type(L, -1) == LUA_TNIL) lua_pop(L, 1); else lua_rawseti(L, t, (lua_Integer)k + 1);
    }
    for (size_t k = 0; k < m; k++) {
        value(L, r, depth + 1);
        int kt = lua_type(L, -1);
        if (kt == LUA_TNIL) malformed(L, r, "a table key is nil");
        if (kt == LUA_TNUMBER && !lua_isinteger(L, -1) && isnan(lua_tonumber(L, -1))) malformed(L, r, "a table key is NaN");
        value(L, r, depth + 1);
        if (lua_type(L, -1) == LUA_TNIL) lua_pop(L, 2); else lua_rawset(L, t);
    }
}

static void value(lua_State *L, reader *r, int depth) {
    unsigned char tag = byte(L, r);
    switch (tag) {
    case TAG_NIL: lua_pushnil(L); return;
    case TAG_FALSE: lua_pushboolean(L, 0); return;
    case TAG_TRUE: lua_pushboolean(L, 1); return;
    case TAG_INTEGER: lua_pushinteger(L, zigzag(varint(L, r))); return;
    case TAG_FLOAT: lua_pushnumber(L, float64(L, r)); return;
    case TAG_STRING: {
        size_t n = count(L, r, 1);
        lua_pushlstring(L, take(L, r, n), n);
        return;
    }
    case TAG_TABLE: table(L, r, depth); return;
    default:
        if (tag >= TAG_FIXINT && tag <= TAG_FIXINT + FIXINT_MAX) {
            lua_pushinteger(L, tag - TAG_FIXINT);
        } else if (tag >= TAG_FIXSTRING && tag <= TAG_FIXSTRING + FIXSTRING_MAX) {
            size_t n = tag - TAG_FIXSTRING;
            lua_pushlstring(L, take(L, r, n), n);
        } else {
            malformed(L, r, "unknown tag 0x%x", tag);
        }
    }
}

static int decode_protected(lua_State *L) {
    reader *r = (reader *)lua_touserdata(L, 1);
    value(L, r, 0);
    if (r->at < r->end) malformed(L, r, "%zu bytes after the value", remaining(r));
    return 1;
}

/// A message that is one value needing no memory (nil, a boolean, a number): pushed at
/// once, without a protected call. Returns 0 when the message is anything else.
static int push_scalar(lua_State *L, const unsigned char *p, size_t n) {
    if (n == 0) return 0;
    unsigned char tag = p[0];
    if (n == 1) {
        if (tag == TAG_NIL) { lua_pushnil(L); return 1; }
        if (tag == TAG_FALSE || tag == TAG_TRUE) { lua_pushboolean(L, tag == TAG_TRUE); return 1; }
        if (tag >= TAG_FIXINT && tag <= TAG_FIXINT + FIXINT_MAX) { lua_pushinteger(L, tag - TAG_FIXINT); return 1; }
        return 0;
    }
    if (tag == TAG_INTEGER && n <= 11) {
        uint64_t v = 0;
        for (size_t i = 1; i < n; i++) {
            unsigned char b = p[i];
            if (i == 10 && b > 1) return 0;
            v |= (uint64_t)(b & 0x7f) << (7 * (i - 1));
            if ((b & 0x80) == 0) {
                if (i != n - 1) return 0;
                lua_pushinteger(L, zigzag(v));
                return 1;
            }
        }
        return 0;
    }
    if (tag == TAG_FLOAT && n == 9) {
        uint64_t bits = 0;
        for (int i = 8; i >= 1; i--) bits = bits << 8 | p[i];
        double d;
        memcpy(&d, &bits, sizeof d);
        lua_pushnumber(L, d);
        return 1;
    }
    return 0;
}

/// A message that is one small string: pushed without a protected call (see
/// ipc_lua_pushsmall). Returns 0 when the message is anything else.
static int push_small_string(lua_State *L, const unsigned char *p, size_t n) {
    if (n == 0) return 0;
    size_t len, at;
    if (p[0] >= TAG_FIXSTRING && p[0] <= TAG_FIXSTRING + FIXSTRING_MAX) {
        len = p[0] - TAG_FIXSTRING;
        at = 1;
    } else if (p[0] == TAG_STRING && n >= 2 && p[1] < 0x80) {
        len = p[1];
        at = 2;
    } else if (p[0] == TAG_STRING && n >= 3 && p[2] < 0x80) {
        len = (size_t)(p[1] & 0x7f) | (size_t)p[2] << 7;
        at = 3;
    } else {
        return 0;
    }
    if (len > IPC_LUA_SMALL_STRING || at + len != n) return 0;
    return ipc_lua_pushsmall(L, (const char *)p + at, len) == LUA_OK;
}

static size_t put_varint(unsigned char *out, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    return n;
}

size_t ipc_lua_encodesimple(lua_State *L, int i, unsigned char *out, size_t cap) {
    if (cap < 11) return 0;
    switch (lua_type(L, i)) {
    case LUA_TNIL: out[0] = TAG_NIL; return 1;
    case LUA_TBOOLEAN: out[0] = lua_toboolean(L, i) ? TAG_TRUE : TAG_FALSE; return 1;
    case LUA_TNUMBER:
        if (lua_isinteger(L, i)) {
            lua_Integer v = lua_tointeger(L, i);
            if (v >= 0 && v <= FIXINT_MAX) { out[0] = (unsigned char)(TAG_FIXINT + v); return 1; }
            out[0] = TAG_INTEGER;
            uint64_t u = (uint64_t)v;
            return 1 + put_varint(out + 1, (u << 1) ^ (0 - (u >> 63)));
        } else {
            double d = lua_tonumber(L, i);
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            out[0] = TAG_FLOAT;
            for (int k = 1; k <= 8; k++, bits >>= 8) out[k] = (unsigned char)bits;
            return 9;
        }
    case LUA_TSTRING: {
        size_t len;
        const char *p = lua_tolstring(L, i, &len);  // a string: no conversion, no allocation
        size_t at;
        if (len <= FIXSTRING_MAX) {
            out[0] = (unsigned char)(TAG_FIXSTRING + len);
            at = 1;
        } else {
            if (len > cap - 11) return 0;
            out[0] = TAG_STRING;
            at = 1 + put_varint(out + 1, len);
        }
        if (at + len > cap) return 0;
        memcpy(out + at, p, len);
        return at + len;
    }
    default: return 0;
    }
}

int ipc_lua_decodesimple(lua_State *L, const void *bytes, size_t len) {
    return push_scalar(L, (const unsigned char *)bytes, len) || push_small_string(L, (const unsigned char *)bytes, len);
}

int ipc_lua_decode(lua_State *L, const void *bytes, size_t len, char *error, size_t errorcap) {
    if (errorcap > 0) error[0] = 0;
    if (!lua_checkstack(L, 3)) {
        snprintf(error, errorcap, "Lua stack exhausted");
        return IPC_DECODE_MALFORMED;
    }
    if (ipc_lua_decodesimple(L, bytes, len)) return IPC_DECODE_OK;
    ipc_lua_collectfor(L, len);
    reader r = {(const unsigned char *)bytes, 0, len, len, error, errorcap};
    lua_pushcfunction(L, decode_protected);
    lua_pushlightuserdata(L, &r);
    int status = lua_pcall(L, 1, 1, 0);
    if (status == LUA_OK) return IPC_DECODE_OK;
    int result = IPC_DECODE_FAILED;
    if (status == LUA_ERRMEM) {
        result = IPC_DECODE_MEMORY;
    } else if (lua_touserdata(L, -1) == &r) {
        result = IPC_DECODE_MALFORMED;
    } else {
        // Raised by something else that ran in the decode (a hook).
        snprintf(error, errorcap, "%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "an error in the decode");
    }
    lua_pop(L, 1);
    return result;
}
