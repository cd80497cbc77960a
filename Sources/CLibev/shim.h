// libev's watcher initialisers are macros, which Swift cannot call: wrap each once here.
#ifndef PUSHGW_CLIBEV_SHIM_H
#define PUSHGW_CLIBEV_SHIM_H

#include <ev.h>

typedef void (*clibev_io_cb)(struct ev_loop *loop, ev_io *w, int revents);
typedef void (*clibev_timer_cb)(struct ev_loop *loop, ev_timer *w, int revents);
typedef void (*clibev_prepare_cb)(struct ev_loop *loop, ev_prepare *w, int revents);
typedef void (*clibev_signal_cb)(struct ev_loop *loop, ev_signal *w, int revents);
typedef void (*clibev_idle_cb)(struct ev_loop *loop, ev_idle *w, int revents);
typedef void (*clibev_async_cb)(struct ev_loop *loop, ev_async *w, int revents);

static inline void clibev_io_init(ev_io *w, clibev_io_cb cb, int fd, int events) { ev_io_init(w, cb, fd, events); }
static inline void clibev_io_set(ev_io *w, int fd, int events) { ev_io_set(w, fd, events); }
static inline void clibev_timer_init(ev_timer *w, clibev_timer_cb cb, double after, double repeat) {
    ev_timer_init(w, cb, after, repeat);
}
static inline void clibev_prepare_init(ev_prepare *w, clibev_prepare_cb cb) { ev_prepare_init(w, cb); }
static inline void clibev_idle_init(ev_idle *w, clibev_idle_cb cb) { ev_idle_init(w, cb); }
static inline void clibev_signal_init(ev_signal *w, clibev_signal_cb cb, int signum) { ev_signal_init(w, cb, signum); }
static inline int clibev_is_active(const ev_watcher *w) { return ev_is_active(w); }

#endif
