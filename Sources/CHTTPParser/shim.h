// http-parser (libhttp-parser-dev): its struct uses bit-fields, read here through small accessors.
#ifndef PUSHGW_CHTTPPARSER_SHIM_H
#define PUSHGW_CHTTPPARSER_SHIM_H

#include <http_parser.h>

static inline unsigned chttp_errno(const http_parser *p) { return p->http_errno; }
static inline unsigned chttp_method(const http_parser *p) { return p->method; }
static inline unsigned chttp_upgrade(const http_parser *p) { return p->upgrade; }
static inline unsigned long long chttp_content_length(const http_parser *p) { return p->content_length; }
static inline void *chttp_data(const http_parser *p) { return p->data; }
static inline void chttp_set_data(http_parser *p, void *data) { p->data = data; }

#endif
