#ifndef IPCPLAY_CLUA_H
#define IPCPLAY_CLUA_H
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#endif
