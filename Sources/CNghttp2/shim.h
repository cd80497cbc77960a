// nghttp2: HTTP/2 framing, HPACK and flow control for the notifiers' client (PushPosix's HTTP2Client). Its API has
// no macros or variadic functions Swift needs, so the header is enough; the callbacks are top-level Swift functions.
#ifndef PUSHGW_CNGHTTP2_SHIM_H
#define PUSHGW_CNGHTTP2_SHIM_H

#include <nghttp2/nghttp2.h>

#endif
