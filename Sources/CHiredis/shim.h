// hiredis's async API and its libev adapter (whose functions are static, so they must be included here).
#ifndef PUSHGW_CHIREDIS_SHIM_H
#define PUSHGW_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#endif
