// tls-load: the TLS load client behind Scripts/bench-tls (built there with `cc -O2 … -lssl -lcrypto`).
//
//   tls-load handshakes --port P [--tls 1.3|1.2] [--resume] [--auth] [--seconds N] [--in-flight K] [--procs C] …
//     C client processes keep K connections in flight (split between them) for N seconds against 127.0.0.1:P: each
//     connects, completes the TLS handshake, optionally AUTHs, waits for its session ticket (TLS 1.3 sends it after
//     the handshake), sends close_notify, waits for the gateway's and closes; then the slot opens the next one.
//     --resume: every slot first makes one full handshake, then offers the newest ticket it got on each connection
//     (a phone reconnecting with its latest ticket); SSL_session_reused says whether the gateway took it.
//   tls-load storm --port P --connections N [--resume] [--trigger drop|reload --master-pid M] [--procs C] …
//     N devices connect and AUTH over TLS (full handshakes), are held, then all are disconnected at once: `drop`
//     closes every connection from the client side (a network blip), `reload` sends SIGHUP to the gateway's master
//     (its old workers DISCONNECT every client with reconnect: true; here they reconnect at once, ignoring after_ms).
//     Each device reconnects with its ticket (--resume) or without (full handshakes) and AUTHs again; the figure is
//     the time from the trigger until the last one is back.
//
// Every connection binds a source address 127.0.0.2 … 127.0.0.(1+S) (IP_BIND_ADDRESS_NO_PORT: the port is picked at
// connect, per destination), so no address runs out of ports. Each process runs one epoll loop; the coordinator
// (the command you run) forks them, starts them together through pipes, reads the gateway's CPU from /proc/<pid>/stat
// (--worker-pid: one process; --gateway-pid: a process and its descendants; --redis-pid) over the measured stretch,
// and merges their reports. Only loopback targets; every phase is bounded in time (--timeout) and attempts.
// Certificates are not verified except on the first connection of each process (--ca), so that the client pays
// only what any TLS client must (the handshake's own signature check), not chain building on every connection.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

// MARK: options

enum mode { MODE_HANDSHAKES, MODE_STORM };
enum trigger { TRIGGER_DROP, TRIGGER_RELOAD };

static struct {
    enum mode mode;
    const char *host;
    int port;
    int tls;  // 12 or 13
    int resume, auth;
    double seconds;
    int in_flight, procs, sources;
    int connections;
    enum trigger trigger;
    int master_pid, worker_pid, gateway_pid, redis_pid;
    double timeout;
    int attempts;
    const char *ca, *json, *label;
} opt = {
    .host = "127.0.0.1", .tls = 13, .seconds = 10, .in_flight = 64, .procs = 2, .sources = 4,
    .connections = 10000, .trigger = TRIGGER_DROP, .timeout = 60, .attempts = 10,
};

static void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("tls-load: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(2);
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static double cpu_self(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

// MARK: histograms (µs): exact below 2,048, then 256 steps per power of two (0.4 %)

#define HBUCKETS 8192
typedef struct { uint64_t count[HBUCKETS]; uint64_t total, max; } histogram;

static int hindex(uint64_t v) {
    if (v < 2048) return (int)v;
    int b = 63 - __builtin_clzll(v);
    int i = 2048 + (b - 11) * 256 + (int)((v >> (b - 8)) & 255);
    return i < HBUCKETS ? i : HBUCKETS - 1;
}

static uint64_t hvalue(int i) {
    if (i < 2048) return (uint64_t)i;
    int b = (i - 2048) / 256 + 11;
    return (uint64_t)(256 + (i - 2048) % 256) << (b - 8);
}

static void hrecord(histogram *h, uint64_t v) {
    h->count[hindex(v)]++;
    h->total++;
    if (v > h->max) h->max = v;
}

static uint64_t hpercentile(const histogram *h, double p) {
    if (h->total == 0) return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.5), seen = 0;
    if (rank < 1) rank = 1;
    for (int i = 0; i < HBUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) return hvalue(i) > h->max ? h->max : hvalue(i);
    }
    return h->max;
}

// MARK: /proc

static double cpu_of(int pid) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *p = strrchr(text, ')');
    if (!p) return 0;
    // After ") ": state is field 3; utime and stime are fields 14 and 15.
    unsigned long utime = 0, stime = 0;
    int field = 2;
    for (char *t = strtok(p + 1, " "); t; t = strtok(NULL, " ")) {
        field++;
        if (field == 14) utime = strtoul(t, NULL, 10);
        if (field == 15) { stime = strtoul(t, NULL, 10); break; }
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

// The CPU of a process tree whose members come and go (a reload's workers): the last figure seen for every pid ever
// seen, so that a worker that exits keeps counting. Sampled often while it matters.
static struct { int pid; double cpu; } seen[256];
static int seen_count;

static void sample_tree(int pid) {
    if (pid <= 0) return;
    double cpu = cpu_of(pid);
    int i = 0;
    while (i < seen_count && seen[i].pid != pid) i++;
    if (i == seen_count && seen_count < 256) seen[seen_count++].pid = pid;
    if (i < seen_count && cpu > 0) seen[i].cpu = cpu;
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *tasks = opendir(path);
    if (!tasks) return;
    for (struct dirent *task; (task = readdir(tasks));) {
        if (task->d_name[0] == '.') continue;
        char children[320];
        snprintf(children, sizeof children, "/proc/%d/task/%s/children", pid, task->d_name);
        FILE *f = fopen(children, "r");
        if (!f) continue;
        int child;
        while (fscanf(f, "%d", &child) == 1) sample_tree(child);
        fclose(f);
    }
    closedir(tasks);
}

static double tree_total(int pid) {
    sample_tree(pid);
    double total = 0;
    for (int i = 0; i < seen_count; i++) total += seen[i].cpu;
    return total;
}

static double load_average(void) {
    double load = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = 0;
        fclose(f);
    }
    return load;
}

// MARK: a client process

enum state { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_AUTH_WRITE, S_AUTH_READ, S_TICKET, S_HELD, S_SHUTDOWN, S_RETRY };

enum failure { F_CONNECT, F_TLS, F_RESET, F_CLOSED, F_TIMEOUT, F_AUTH, F_REFUSED, F_DROPPED, F_COUNT };
static const char *failure_names[F_COUNT] = {
    "connect", "tls", "reset", "closed", "timeout", "auth", "refused", "dropped"};

typedef struct device {
    int id, src, fd, state, attempts;
    SSL *ssl;
    SSL_SESSION *session;  // the newest ticket this device got
    uint64_t started, deadline, retry_at;
    uint64_t dropped_after, back_after;  // trigger → its connection dropped (DISCONNECT, close), → back; ns
    uint64_t handshake_ns, auth_ns;      // its last attempt: connect → handshake done, → AUTH_REPLY
    uint32_t events;       // what epoll watches for it
    int got_ticket, back, was_resumed;
    int rlen;
    unsigned char rbuf[2048];
} device;

static struct {
    SSL_CTX *ctx;
    int epoll, command, report;  // command: from the coordinator; report: to it
    int index;                   // this process among the clients
    device *devices;
    int count;                   // devices here
    int first_id;
    struct sockaddr_in target;
    // phase
    enum { P_WARMUP, P_SETUP, P_WAIT, P_RUN, P_DRAIN } phase;
    uint64_t t0, deadline;
    int verify_next;             // verify the certificate on the next handshake (once per process)
    // handshakes mode
    uint64_t handshakes, resumed, cycles, failures[F_COUNT];
    double cpu0, cpu1;
    int cpu_taken;
    histogram latency;           // connect → handshake done, µs
    // storm mode
    int *pending, pending_head, pending_tail;  // devices waiting to (re)connect, FIFO over count+1 slots
    int in_flight, limit, held, back, storm_attempts, storm_resumed_attempts;
    int tickets_at_go, lost_before_go, drained_again, all_back_reported;
    uint64_t last_back;
    char line[256];
    int line_len;
    const char *negotiated;
} C;

static void report(const char *format, ...) {
    char text[4096];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(text, sizeof text, format, args);
    va_end(args);
    if (n > (int)sizeof text - 1) n = sizeof text - 1;
    for (int off = 0; off < n;) {
        ssize_t w = write(C.report, text + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) exit(3);
        off += (int)w;
    }
}

static void watch(device *d, uint32_t events) {
    if (d->events == events) return;
    struct epoll_event e = {.events = events, .data.ptr = d};
    if (epoll_ctl(C.epoll, EPOLL_CTL_MOD, d->fd, &e) != 0) die("epoll_ctl: %s", strerror(errno));
    d->events = events;
}

static int new_session(SSL *ssl, SSL_SESSION *session) {
    device *d = SSL_get_app_data(ssl);
    if (!d) return 0;
    if (d->session) SSL_SESSION_free(d->session);
    d->session = session;
    d->got_ticket = 1;
    return 1;  // we keep the reference
}

// Frees the connection without a word on the wire (a close_notify, when wanted, went out before). Marked shut down
// both ways first: OpenSSL makes a session unresumable when its SSL goes without that (a phone that lost its network
// still holds its ticket).
static void release(device *d) {
    if (d->ssl) {
        SSL_set_shutdown(d->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_set_app_data(d->ssl, NULL);
        SSL_free(d->ssl);
        d->ssl = NULL;
    }
    if (d->fd >= 0) close(d->fd);
    d->fd = -1;
    d->events = 0;
    d->rlen = 0;
}

static void start(device *d);
static void storm_next(void);

static void queue_pending(device *d) {
    C.pending[C.pending_tail] = (int)(d - C.devices);
    C.pending_tail = (C.pending_tail + 1) % (C.count + 1);
}

static int in_attempt(int state) { return state >= S_CONNECTING && state <= S_TICKET; }

// The device's attempt is over (`ok`: the whole cycle went through). What comes next depends on the mode.
static void finish(device *d, int ok, int failure, uint64_t retry_after_ns) {
    int was_attempt = in_attempt(d->state) || d->state == S_SHUTDOWN;
    release(d);
    if (!ok) C.failures[failure]++;
    if (opt.mode == MODE_HANDSHAKES) {
        if (ok && C.phase == P_RUN) C.cycles++;
        d->state = S_IDLE;
        if (!ok) {
            d->state = S_RETRY;  // the next sweep starts it again: no busy loop against a gateway that refuses
            d->retry_at = now_ns();
        } else if (C.phase == P_WARMUP && !d->session) {
            start(d);  // the warm-up needs a ticket in every slot
        } else if (C.phase == P_RUN && now_ns() < C.deadline) {
            start(d);
        }
        return;
    }
    // storm: a failed or dropped device tries again (after a back-off), up to --attempts times per phase
    if (was_attempt) C.in_flight--;
    if (d->attempts >= opt.attempts) {
        d->state = S_IDLE;  // given up: reported as missing
    } else {
        d->state = S_RETRY;
        d->retry_at = now_ns() + retry_after_ns;
    }
    storm_next();
}

static void fail(device *d, int failure) {
    uint64_t backoff = (uint64_t)(d->attempts < 10 ? d->attempts : 10) * 100000000u;  // 100 ms per attempt
    finish(d, 0, failure, backoff);
}

static void start(device *d) {
    d->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->fd < 0) die("socket: %s (process %d)", strerror(errno), C.index);
    int one = 1;
    setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(d->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in source = {.sin_family = AF_INET};
    source.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)d->src);
    if (bind(d->fd, (struct sockaddr *)&source, sizeof source) != 0) die("bind: %s", strerror(errno));
    d->state = S_CONNECTING;
    d->attempts++;
    d->got_ticket = 0;
    d->started = now_ns();
    d->deadline = d->started + 10000000000u;  // 10 s for connect, handshake, AUTH and close
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = d};
    d->events = EPOLLOUT;
    if (epoll_ctl(C.epoll, EPOLL_CTL_ADD, d->fd, &e) != 0) die("epoll_ctl add: %s", strerror(errno));
    if (opt.mode == MODE_STORM) C.in_flight++;
    if (connect(d->fd, (struct sockaddr *)&C.target, sizeof C.target) != 0 && errno != EINPROGRESS) {
        fail(d, F_CONNECT);
    }
}

// A TLS call returned `result` ≤ 0: watch what it waits for, or fail. Returns 1 when it waits.
static int tls_wait(device *d, int result, int during_handshake) {
    int error = SSL_get_error(d->ssl, result);
    if (error == SSL_ERROR_WANT_READ) { watch(d, EPOLLIN); return 1; }
    if (error == SSL_ERROR_WANT_WRITE) { watch(d, EPOLLOUT); return 1; }
    int system = errno;
    unsigned long queued = ERR_peek_error();
    if (queued && C.failures[F_TLS] < 3 && C.index == 0) {
        char text[256];
        ERR_error_string_n(queued, text, sizeof text);
        fprintf(stderr, "tls-load: process %d: TLS failure: %s\n", C.index, text);
    }
    ERR_clear_error();
    if (error == SSL_ERROR_SSL) fail(d, F_TLS);
    else if (error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && (system == 0 || result == 0)))
        fail(d, during_handshake ? F_CLOSED : F_DROPPED);
    else fail(d, F_RESET);
    return 0;
}

static void frame(unsigned char *out, uint32_t op, uint32_t seq, const char *body, size_t length) {
    uint32_t total = htonl(16 + (uint32_t)length), o = htonl(op), s = htonl(seq);
    uint16_t header = htons(16), version = htons(1);
    memcpy(out, &total, 4);
    memcpy(out + 4, &header, 2);
    memcpy(out + 6, &version, 2);
    memcpy(out + 8, &o, 4);
    memcpy(out + 12, &s, 4);
    memcpy(out + 16, body, length);
}

static void shutdown_step(device *d);
static void read_step(device *d);

// A device's connection is authenticated: hold it (storm). Its reader goes on reading (a DISCONNECT, a close).
static void held(device *d) {
    d->auth_ns = now_ns() - d->started - d->handshake_ns;
    d->state = S_HELD;
    watch(d, EPOLLIN);
    C.in_flight--;
    if (C.phase == P_RUN && !d->back) {
        d->back = 1;
        C.back++;
        C.last_back = now_ns();
        d->back_after = C.last_back - C.t0;
        if (C.back == C.count) {
            report("back %llu\n", (unsigned long long)C.last_back);
            C.all_back_reported = 1;
        }
    } else if (C.phase == P_SETUP) {
        C.held++;
    }
    storm_next();
}

// The gateway closed a held connection, or sent it DISCONNECT (a reload's old worker, draining): reconnect at once,
// whatever after_ms says. Not a failure: the storm asked for it.
static void dropped(device *d) {
    release(d);
    ERR_clear_error();
    d->state = S_IDLE;
    d->attempts = 0;
    if (C.phase == P_SETUP) {
        C.lost_before_go++;
        C.held--;
    } else if (!d->back) {
        d->dropped_after = now_ns() - C.t0;
    } else {
        d->back = 0;  // back on a worker that was draining too: it counts when it is back for good
        C.back--;
        C.drained_again++;
        if (C.all_back_reported) {
            report("lost\n");
            C.all_back_reported = 0;
        }
    }
    queue_pending(d);
    storm_next();
}

// After the handshake (and AUTH): wait for the ticket if TLS 1.3 has not sent it yet, then close or hold.
// The caller reads on while the state is S_TICKET or S_HELD.
static void after_auth(device *d) {
    if (opt.mode == MODE_STORM) { held(d); return; }
    if (!d->got_ticket) {
        d->state = S_TICKET;
        watch(d, EPOLLIN);
        return;
    }
    d->state = S_SHUTDOWN;
    shutdown_step(d);
}

static void auth_step(device *d) {
    char body[160];
    int n = snprintf(body, sizeof body, "{\"mid\":\"%s%d\",\"key\":\"k%d\",\"platform\":\"bench\"}",
                     opt.mode == MODE_STORM ? "s" : "h", d->id, d->id);
    unsigned char out[200];
    frame(out, 7, 1, body, (size_t)n);
    ERR_clear_error();
    int r = SSL_write(d->ssl, out, 16 + n);
    if (r <= 0) { tls_wait(d, r, 0); return; }
    d->state = S_AUTH_READ;
    watch(d, EPOLLIN);
    read_step(d);
}

static void handshake_done(device *d) {
    uint64_t t = now_ns();
    d->handshake_ns = t - d->started;
    d->was_resumed = SSL_session_reused(d->ssl);
    if (opt.tls == 12) {
        // TLS 1.2 sends its ticket inside the handshake; OpenSSL calls new_session() for a full handshake only, so a
        // resumed one's renewed ticket is taken here.
        SSL_SESSION *session = SSL_get1_session(d->ssl);
        if (session) {
            if (d->session) SSL_SESSION_free(d->session);
            d->session = session;
        }
        d->got_ticket = 1;
    }
    if (C.verify_next) {
        long verify = SSL_get_verify_result(d->ssl);
        if (verify != X509_V_OK) die("the gateway's certificate did not verify: %s", X509_verify_cert_error_string(verify));
        C.verify_next = 0;
    }
    if (!C.negotiated && C.index == 0) {
        static char text[160];
        int group = SSL_get_negotiated_group(d->ssl);
        const char *group_name = group ? SSL_group_to_name(d->ssl, group) : NULL;
        snprintf(text, sizeof text, "%s %s%s%s", SSL_get_version(d->ssl), SSL_get_cipher_name(d->ssl),
                 group_name ? " " : "", group_name ? group_name : "");
        C.negotiated = text;
    }
    if (opt.mode == MODE_HANDSHAKES && C.phase == P_RUN && t < C.deadline) {
        C.handshakes++;
        if (d->was_resumed) C.resumed++;
        hrecord(&C.latency, (t - d->started) / 1000);
    }
    if (opt.mode == MODE_STORM && C.phase == P_RUN) {
        C.storm_attempts++;
        if (d->was_resumed) C.storm_resumed_attempts++;
    }
    if (opt.auth || opt.mode == MODE_STORM) {
        d->state = S_AUTH_WRITE;
        auth_step(d);
    } else {
        after_auth(d);
        if (d->state == S_TICKET) read_step(d);
    }
}

static void handshake_step(device *d) {
    ERR_clear_error();
    int r = SSL_connect(d->ssl);
    if (r == 1) handshake_done(d);
    else tls_wait(d, r, 1);
}

static void connected(device *d) {
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error) { fail(d, F_CONNECT); return; }
    d->ssl = SSL_new(C.ctx);
    if (!d->ssl) die("SSL_new failed");
    SSL_set_app_data(d->ssl, d);
    SSL_set_fd(d->ssl, d->fd);
    if (C.verify_next) {
        SSL_set_verify(d->ssl, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(d->ssl), opt.host);
    }
    if (opt.resume && d->session) SSL_set_session(d->ssl, d->session);
    d->state = S_HANDSHAKE;
    handshake_step(d);
}

// A whole frame is in rbuf: act on it. Returns 1 while the reader should go on (AUTH_READ, TICKET, HELD).
static int on_frame(device *d, uint32_t op, const unsigned char *body, uint32_t length) {
    if (op == 8 && d->state == S_AUTH_READ) {  // AUTH_REPLY
        if (!memmem(body, length, "\"code\":0", 8)) { fail(d, F_AUTH); return 0; }
        after_auth(d);
        return d->state == S_TICKET || d->state == S_HELD;
    }
    if (op == 28) { fail(d, F_AUTH); return 0; }  // ERROR (fatal ones are followed by a close)
    if (op == 6) {                                 // DISCONNECT
        if (d->state == S_HELD) { dropped(d); return 0; }
        // Refused before AUTH_REPLY (Redis busy, a draining worker): try again after after_ms.
        const unsigned char *after = memmem(body, length, "\"after_ms\":", 11);
        uint64_t wait_ms = after ? strtoull((const char *)after + 11, NULL, 10) : 0;
        if (wait_ms > 5000) wait_ms = 5000;
        finish(d, 0, F_REFUSED, wait_ms * 1000000u);
        return 0;
    }
    return 1;
}

static void read_step(device *d) {
    for (;;) {
        if (d->state == S_TICKET && d->got_ticket) {
            d->state = S_SHUTDOWN;
            shutdown_step(d);
            return;
        }
        ERR_clear_error();
        int r = SSL_read(d->ssl, d->rbuf + d->rlen, (int)sizeof d->rbuf - d->rlen);
        if (r <= 0) {
            if (d->state == S_TICKET && d->got_ticket) continue;
            int error = SSL_get_error(d->ssl, r);
            if (d->state == S_HELD && error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
                dropped(d);
                return;
            }
            tls_wait(d, r, 0);
            return;
        }
        d->rlen += r;
        int offset = 0;
        while (d->rlen - offset >= 16) {
            uint32_t total, op;
            memcpy(&total, d->rbuf + offset, 4);
            memcpy(&op, d->rbuf + offset + 8, 4);
            total = ntohl(total);
            op = ntohl(op);
            if (total < 16 || total > sizeof d->rbuf) { fail(d, F_AUTH); return; }
            if (d->rlen - offset < (int)total) break;
            if (!on_frame(d, op, d->rbuf + offset + 16, total - 16)) return;
            offset += (int)total;
        }
        memmove(d->rbuf, d->rbuf + offset, (size_t)(d->rlen - offset));
        d->rlen -= offset;
        if (d->state != S_AUTH_READ && d->state != S_TICKET && d->state != S_HELD) return;
    }
}

// close_notify, then read until the gateway's close_notify (or its TCP end) and close.
static void shutdown_step(device *d) {
    if (!(SSL_get_shutdown(d->ssl) & SSL_SENT_SHUTDOWN) || d->events == EPOLLOUT) {
        ERR_clear_error();
        int r = SSL_shutdown(d->ssl);
        if (r < 0) {
            int error = SSL_get_error(d->ssl, r);
            if (error == SSL_ERROR_WANT_WRITE) { watch(d, EPOLLOUT); return; }
            finish(d, 1, 0, 0);
            return;
        }
        if (r == 1) { finish(d, 1, 0, 0); return; }
    }
    watch(d, EPOLLIN);
    for (;;) {
        char scratch[512];
        ERR_clear_error();
        int r = SSL_read(d->ssl, scratch, sizeof scratch);
        if (r > 0) continue;
        int error = SSL_get_error(d->ssl, r);
        if (error == SSL_ERROR_WANT_READ) return;
        ERR_clear_error();
        finish(d, 1, 0, 0);  // close_notify, the TCP end or a reset: the cycle is done either way
        return;
    }
}

static void on_event(device *d) {
    switch (d->state) {
    case S_CONNECTING: connected(d); break;
    case S_HANDSHAKE: handshake_step(d); break;
    case S_AUTH_WRITE: auth_step(d); break;
    case S_AUTH_READ:
    case S_TICKET:
    case S_HELD: read_step(d); break;
    case S_SHUTDOWN: shutdown_step(d); break;
    default: break;
    }
}

// storm: start queued devices while under the in-flight limit.
static void storm_next(void) {
    if (C.phase != P_SETUP && C.phase != P_RUN) return;
    while (C.in_flight < C.limit && C.pending_head != C.pending_tail) {
        device *d = &C.devices[C.pending[C.pending_head]];
        C.pending_head = (C.pending_head + 1) % (C.count + 1);
        start(d);
    }
}

static void sweep(uint64_t t) {
    for (int i = 0; i < C.count; i++) {
        device *d = &C.devices[i];
        if ((in_attempt(d->state) || d->state == S_SHUTDOWN) && t > d->deadline) {
            if (d->state == S_SHUTDOWN) finish(d, 1, 0, 0);  // the close timed out: the handshake counted already
            else fail(d, F_TIMEOUT);
        } else if (d->state == S_RETRY && t >= d->retry_at) {
            d->state = S_IDLE;
            if (opt.mode == MODE_STORM) queue_pending(d);
            else if (C.phase == P_WARMUP || (C.phase == P_RUN && t < C.deadline)) start(d);
        }
    }
    storm_next();
}

static int active_attempts(void) {
    int n = 0;
    for (int i = 0; i < C.count; i++)
        if (in_attempt(C.devices[i].state) || C.devices[i].state == S_SHUTDOWN) n++;
    return n;
}

// A line from the coordinator, or 0 while none is complete.
static int command_line(char *out, size_t size) {
    for (;;) {
        char *newline = memchr(C.line, '\n', (size_t)C.line_len);
        if (newline) {
            size_t n = (size_t)(newline - C.line);
            if (n >= size) n = size - 1;
            memcpy(out, C.line, n);
            out[n] = 0;
            C.line_len -= (int)(newline - C.line + 1);
            memmove(C.line, newline + 1, (size_t)C.line_len);
            return 1;
        }
        ssize_t r = read(C.command, C.line + C.line_len, sizeof C.line - 1 - (size_t)C.line_len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return 0;
        if (r <= 0) exit(4);  // the coordinator went away
        C.line_len += (int)r;
    }
}

static void report_histogram(const char *name, const histogram *h) {
    char text[4000];
    int n = snprintf(text, sizeof text, "%s %llu", name, (unsigned long long)h->max);
    for (int i = 0; i < HBUCKETS; i++) {
        if (!h->count[i]) continue;
        if (n > (int)sizeof text - 40) {
            report("%s\n", text);
            n = snprintf(text, sizeof text, "%s+", name);
        }
        n += snprintf(text + n, sizeof text - (size_t)n, " %d:%llu", i, (unsigned long long)h->count[i]);
    }
    report("%s\n", text);
}

static void child_main(void) {
    signal(SIGPIPE, SIG_IGN);
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);

    C.ctx = SSL_CTX_new(TLS_client_method());
    if (!C.ctx) die("SSL_CTX_new failed");
    int version = opt.tls == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(C.ctx, version);
    SSL_CTX_set_max_proto_version(C.ctx, version);
    // Sessions reach new_session(), which keeps them per device; no client cache (OpenSSL would mark a TLS 1.3
    // session spent once its connection got a newer ticket).
    SSL_CTX_set_session_cache_mode(C.ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(C.ctx, new_session);
    SSL_CTX_set_verify(C.ctx, SSL_VERIFY_NONE, NULL);
    if (opt.ca) {
        if (SSL_CTX_load_verify_locations(C.ctx, opt.ca, NULL) != 1) die("cannot load %s", opt.ca);
        C.verify_next = 1;
    }
    C.epoll = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(C.epoll, EPOLL_CTL_ADD, C.command, &e);
    C.target.sin_family = AF_INET;
    C.target.sin_port = htons((uint16_t)opt.port);
    inet_pton(AF_INET, opt.host, &C.target.sin_addr);

    C.devices = calloc((size_t)C.count, sizeof(device));
    C.pending = calloc((size_t)C.count + 1, sizeof(int));
    for (int i = 0; i < C.count; i++) {
        device *d = &C.devices[i];
        d->id = C.first_id + i;
        d->src = d->id % opt.sources;
        d->fd = -1;
    }
    if (opt.mode == MODE_HANDSHAKES) {
        C.phase = opt.resume ? P_WARMUP : P_WAIT;
        if (opt.resume) for (int i = 0; i < C.count; i++) start(&C.devices[i]);
    } else {
        C.phase = P_SETUP;
        for (int i = 0; i < C.count; i++) queue_pending(&C.devices[i]);
        storm_next();
    }
    int ready_sent = 0, result_sent = 0;
    uint64_t last_sweep = now_ns(), phase_deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
    struct epoll_event events[256];
    for (;;) {
        uint64_t t = now_ns();
        int wait_ms = 100;
        if (C.phase == P_RUN && opt.mode == MODE_HANDSHAKES && t < C.deadline) {
            uint64_t left = (C.deadline - t) / 1000000u + 1;
            if (left < (uint64_t)wait_ms) wait_ms = (int)left;
        }
        int n = epoll_wait(C.epoll, events, 256, wait_ms);
        if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            device *d = events[i].data.ptr;
            if (!d) {
                char text[128];
                while (command_line(text, sizeof text)) {
                    unsigned long long t0 = 0, deadline = 0;
                    if (sscanf(text, "go %llu %llu", &t0, &deadline) == 2) {
                        C.t0 = t0;
                        C.deadline = deadline;
                        C.cpu0 = cpu_self();
                        C.phase = P_RUN;
                        phase_deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
                        if (opt.mode == MODE_HANDSHAKES) {
                            for (int k = 0; k < C.count; k++) start(&C.devices[k]);
                        } else {
                            for (int k = 0; k < C.count; k++) {
                                device *g = &C.devices[k];
                                if (g->session) C.tickets_at_go++;
                                g->back = 0;
                                g->dropped_after = 0;
                                g->attempts = 0;
                                if (opt.trigger == TRIGGER_DROP && g->state == S_HELD) {
                                    // The network drops: the client closes without a word, and reconnects.
                                    release(g);
                                    g->state = S_IDLE;
                                    queue_pending(g);
                                }
                            }
                            storm_next();
                        }
                    } else if (strcmp(text, "stop") == 0) {
                        if (!C.cpu_taken) C.cpu1 = cpu_self();
                        histogram *back_time = calloc(1, sizeof(histogram));
                        histogram *drop_time = calloc(1, sizeof(histogram));
                        histogram *reconnect_time = calloc(1, sizeof(histogram));
                        histogram *handshake_time = calloc(1, sizeof(histogram));
                        histogram *auth_time = calloc(1, sizeof(histogram));
                        int storm_resumed = 0;
                        for (int k = 0; k < C.count; k++) {
                            device *g = &C.devices[k];
                            if (!g->back) continue;
                            hrecord(back_time, g->back_after / 1000);
                            hrecord(drop_time, g->dropped_after / 1000);
                            hrecord(reconnect_time, (g->back_after - g->dropped_after) / 1000);
                            hrecord(handshake_time, g->handshake_ns / 1000);
                            hrecord(auth_time, g->auth_ns / 1000);
                            storm_resumed += g->was_resumed;
                        }
                        report("result handshakes=%llu resumed=%llu cycles=%llu back=%d devices=%d "
                               "storm_resumed=%d attempts=%d resumed_attempts=%d tickets=%d lost=%d "
                               "drained_again=%d cpu=%.3f",
                               (unsigned long long)C.handshakes, (unsigned long long)C.resumed,
                               (unsigned long long)C.cycles, C.back, C.count, storm_resumed, C.storm_attempts,
                               C.storm_resumed_attempts, C.tickets_at_go, C.lost_before_go, C.drained_again,
                               C.cpu1 - C.cpu0);
                        for (int f = 0; f < F_COUNT; f++)
                            report(" %s=%llu", failure_names[f], (unsigned long long)C.failures[f]);
                        report(" negotiated=%s\n", C.negotiated ? C.negotiated : "-");
                        report_histogram("hist-latency", &C.latency);
                        report_histogram("hist-back", back_time);
                        report_histogram("hist-drop", drop_time);
                        report_histogram("hist-reconnect", reconnect_time);
                        report_histogram("hist-handshake", handshake_time);
                        report_histogram("hist-auth", auth_time);
                        report("end\n");
                        exit(0);
                    }
                }
                continue;
            }
            if (d->fd >= 0) on_event(d);
        }
        t = now_ns();
        if (t - last_sweep >= 100000000u) {
            last_sweep = t;
            sweep(t);
        }
        if (opt.mode == MODE_HANDSHAKES) {
            if (C.phase == P_WARMUP) {
                int missing = 0;
                for (int k = 0; k < C.count; k++) missing += !C.devices[k].session;
                if (!missing && active_attempts() == 0) C.phase = P_WAIT;
                else if (t > phase_deadline) die("warm-up: %d of %d slots got no ticket", missing, C.count);
            }
            if (C.phase == P_WAIT && !ready_sent) {
                report("ready %d\n", C.count);
                ready_sent = 1;
            }
            if (C.phase == P_RUN && t >= C.deadline && !C.cpu_taken) {
                C.cpu1 = cpu_self();
                C.cpu_taken = 1;
                C.phase = P_DRAIN;
            }
            if (C.phase == P_DRAIN && !result_sent && (active_attempts() == 0 || t > C.deadline + 10000000000u)) {
                report("drained\n");  // `stop` reports the CPU of the measured stretch (cpu1 - cpu0)
                result_sent = 1;
            }
        } else {
            if (C.phase == P_SETUP && !ready_sent && C.held == C.count) {
                report("ready %d\n", C.held);
                ready_sent = 1;
            } else if (C.phase == P_SETUP && !ready_sent && t > phase_deadline) {
                report("ready %d\n", C.held);  // the coordinator sees the shortfall
                ready_sent = 1;
            }
        }
    }
}

// MARK: the coordinator

typedef struct {
    pid_t pid;
    int command, report;
    char buffer[65536];
    int length;
    int ready, back, drained, ended, count;
    uint64_t back_at;
    char result[2048];
} client;

static client *clients;
static histogram merged_latency, merged_back, merged_drop, merged_reconnect, merged_handshake, merged_auth;

static void merge_histogram(histogram *h, const char *text) {
    // "<max> i:c i:c …" (or, continued, "i:c …")
    const char *p = text;
    if (*p != '+') {
        unsigned long long max = strtoull(p, (char **)&p, 10);
        if (max > h->max) h->max = max;
    } else {
        p++;
    }
    for (;;) {
        while (*p == ' ') p++;
        if (!*p) break;
        int i = (int)strtol(p, (char **)&p, 10);
        if (*p != ':') break;
        unsigned long long c = strtoull(p + 1, (char **)&p, 10);
        if (i >= 0 && i < HBUCKETS) {
            h->count[i] += c;
            h->total += c;
        }
    }
}

static void on_line(client *c, char *line) {
    if (strncmp(line, "ready ", 6) == 0) {
        c->ready = 1;
        c->count = atoi(line + 6);
    } else if (strncmp(line, "back ", 5) == 0) {
        c->back = 1;
        c->back_at = strtoull(line + 5, NULL, 10);
    } else if (strcmp(line, "lost") == 0) {
        c->back = 0;
    } else if (strcmp(line, "drained") == 0) {
        c->drained = 1;
    } else if (strncmp(line, "result ", 7) == 0) {
        snprintf(c->result, sizeof c->result, "%s", line + 7);
    } else if (strncmp(line, "hist-latency", 12) == 0) {
        merge_histogram(&merged_latency, line + 12 + (line[12] == ' '));
    } else if (strncmp(line, "hist-back", 9) == 0) {
        merge_histogram(&merged_back, line + 9 + (line[9] == ' '));
    } else if (strncmp(line, "hist-drop", 9) == 0) {
        merge_histogram(&merged_drop, line + 9 + (line[9] == ' '));
    } else if (strncmp(line, "hist-handshake", 14) == 0) {
        merge_histogram(&merged_handshake, line + 14 + (line[14] == ' '));
    } else if (strncmp(line, "hist-auth", 9) == 0) {
        merge_histogram(&merged_auth, line + 9 + (line[9] == ' '));
    } else if (strncmp(line, "hist-reconnect", 14) == 0) {
        merge_histogram(&merged_reconnect, line + 14 + (line[14] == ' '));
    } else if (strcmp(line, "end") == 0) {
        c->ended = 1;
    }
}

// Reads what the clients wrote, for at most `ms` milliseconds.
static void pump(int ms) {
    struct pollfd fds[256];
    for (int i = 0; i < opt.procs; i++) fds[i] = (struct pollfd){.fd = clients[i].report, .events = POLLIN};
    int n = poll(fds, (nfds_t)opt.procs, ms);
    if (n <= 0) return;
    for (int i = 0; i < opt.procs; i++) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        client *c = &clients[i];
        ssize_t r = read(c->report, c->buffer + c->length, sizeof c->buffer - 1 - (size_t)c->length);
        if (r <= 0) {
            if (!c->ended) die("client process %d ended early (see above)", i);
            continue;
        }
        c->length += (int)r;
        char *start = c->buffer, *newline;
        while ((newline = memchr(start, '\n', (size_t)(c->buffer + c->length - start)))) {
            *newline = 0;
            on_line(c, start);
            start = newline + 1;
        }
        c->length -= (int)(start - c->buffer);
        memmove(c->buffer, start, (size_t)c->length);
    }
}

static void send_all(const char *text) {
    for (int i = 0; i < opt.procs; i++)
        if (write(clients[i].command, text, strlen(text)) != (ssize_t)strlen(text)) die("cannot steer a client");
}

static int all(int offset) {
    for (int i = 0; i < opt.procs; i++)
        if (!*(int *)((char *)&clients[i] + offset)) return 0;
    return 1;
}

static unsigned long long field(const char *result, const char *name) {
    char key[40];
    snprintf(key, sizeof key, " %s=", name);
    char spaced[2100];
    snprintf(spaced, sizeof spaced, " %s", result);
    const char *p = strstr(spaced, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static double field_double(const char *result, const char *name) {
    char key[40];
    snprintf(key, sizeof key, " %s=", name);
    char spaced[2100];
    snprintf(spaced, sizeof spaced, " %s", result);
    const char *p = strstr(spaced, key);
    return p ? strtod(p + strlen(key), NULL) : 0;
}

static unsigned long long sum(const char *name) {
    unsigned long long total = 0;
    for (int i = 0; i < opt.procs; i++) total += field(clients[i].result, name);
    return total;
}

static double sum_double(const char *name) {
    double total = 0;
    for (int i = 0; i < opt.procs; i++) total += field_double(clients[i].result, name);
    return total;
}

static void failures_text(char *out, size_t size) {
    int n = 0;
    out[0] = 0;
    for (int f = 0; f < F_COUNT; f++) {
        unsigned long long v = sum(failure_names[f]);
        if (v) n += snprintf(out + n, size - (size_t)n, "%s%s %llu", n ? ", " : "", failure_names[f], v);
    }
    if (!n) snprintf(out, size, "none");
}

static void usage(void) {
    fputs("usage: tls-load handshakes|storm --port P [options]  (see the top of Scripts/tls-load.c)\n"
          "  --host 127.0.0.1  --tls 1.3|1.2  --resume  --auth  --seconds N  --in-flight K  --procs C  --sources S\n"
          "  --connections N  --trigger drop|reload  --master-pid M  --worker-pid W  --gateway-pid G  --redis-pid R\n"
          "  --timeout S  --attempts A  --ca FILE  --json FILE  --label TEXT\n", stderr);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    if (strcmp(argv[1], "handshakes") == 0) opt.mode = MODE_HANDSHAKES;
    else if (strcmp(argv[1], "storm") == 0) opt.mode = MODE_STORM;
    else usage();
    static struct option options[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"tls", 1, 0, 'v'}, {"resume", 0, 0, 'r'},
        {"no-resume", 0, 0, 'R'}, {"auth", 0, 0, 'a'}, {"seconds", 1, 0, 's'}, {"in-flight", 1, 0, 'k'},
        {"procs", 1, 0, 'c'}, {"sources", 1, 0, 'S'}, {"connections", 1, 0, 'n'}, {"trigger", 1, 0, 't'},
        {"master-pid", 1, 0, 'M'}, {"worker-pid", 1, 0, 'W'}, {"gateway-pid", 1, 0, 'G'}, {"redis-pid", 1, 0, 'D'},
        {"timeout", 1, 0, 'T'}, {"attempts", 1, 0, 'A'}, {"ca", 1, 0, 'C'}, {"json", 1, 0, 'j'},
        {"label", 1, 0, 'l'}, {0, 0, 0, 0}};
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (o) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'v': opt.tls = strcmp(optarg, "1.2") == 0 ? 12 : strcmp(optarg, "1.3") == 0 ? 13 : 0; break;
        case 'r': opt.resume = 1; break;
        case 'R': opt.resume = 0; break;
        case 'a': opt.auth = 1; break;
        case 's': opt.seconds = atof(optarg); break;
        case 'k': opt.in_flight = atoi(optarg); break;
        case 'c': opt.procs = atoi(optarg); break;
        case 'S': opt.sources = atoi(optarg); break;
        case 'n': opt.connections = atoi(optarg); break;
        case 't':
            if (strcmp(optarg, "drop") == 0) opt.trigger = TRIGGER_DROP;
            else if (strcmp(optarg, "reload") == 0) opt.trigger = TRIGGER_RELOAD;
            else die("--trigger is drop or reload");
            break;
        case 'M': opt.master_pid = atoi(optarg); break;
        case 'W': opt.worker_pid = atoi(optarg); break;
        case 'G': opt.gateway_pid = atoi(optarg); break;
        case 'D': opt.redis_pid = atoi(optarg); break;
        case 'T': opt.timeout = atof(optarg); break;
        case 'A': opt.attempts = atoi(optarg); break;
        case 'C': opt.ca = optarg; break;
        case 'j': opt.json = optarg; break;
        case 'l': opt.label = optarg; break;
        default: usage();
        }
    }
    struct in_addr address;
    if (inet_pton(AF_INET, opt.host, &address) != 1 || (ntohl(address.s_addr) >> 24) != 127)
        die("--host must be an IPv4 loopback address (127.x.x.x)");
    if (opt.port <= 0 || opt.port > 65535) die("--port is required");
    if (!opt.tls) die("--tls is 1.2 or 1.3");
    if (opt.procs < 1 || opt.procs > 64) die("--procs is 1…64");
    if (opt.sources < 1 || opt.sources > 250) die("--sources is 1…250");
    if (opt.seconds <= 0 || opt.seconds > 600) die("--seconds is in (0, 600]");
    if (opt.timeout <= 0 || opt.timeout > 600) die("--timeout is in (0, 600]");
    if (opt.attempts < 1 || opt.attempts > 100) die("--attempts is 1…100");
    if (opt.mode == MODE_HANDSHAKES && (opt.in_flight < opt.procs || opt.in_flight > 10000))
        die("--in-flight is --procs…10000");
    if (opt.mode == MODE_STORM) {
        if (opt.connections < opt.procs || opt.connections > 1000000) die("--connections is --procs…1000000");
        if (opt.connections / opt.procs > 18000) die("more than 18,000 connections per process: raise --procs");
        if (opt.in_flight < opt.procs) die("--in-flight must be at least --procs");
        if (opt.trigger == TRIGGER_RELOAD && opt.master_pid <= 0) die("--trigger reload needs --master-pid");
    }
    signal(SIGPIPE, SIG_IGN);

    double load = load_average();
    clients = calloc((size_t)opt.procs, sizeof(client));
    int total = opt.mode == MODE_HANDSHAKES ? opt.in_flight : opt.connections;
    for (int i = 0; i < opt.procs; i++) {
        int down[2], up[2];
        if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0) die("pipe: %s", strerror(errno));
        int first = (int)((long)total * i / opt.procs), last = (int)((long)total * (i + 1) / opt.procs);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid == 0) {
            for (int k = 0; k < i; k++) { close(clients[k].command); close(clients[k].report); }
            close(down[1]);
            close(up[0]);
            C.command = down[0];
            C.report = up[1];
            fcntl(C.command, F_SETFL, O_NONBLOCK);
            C.index = i;
            C.first_id = first;
            C.count = last - first;
            C.limit = opt.mode == MODE_STORM
                          ? (int)((long)opt.in_flight * (i + 1) / opt.procs - (long)opt.in_flight * i / opt.procs)
                          : C.count;
            child_main();
            exit(0);
        }
        close(down[0]);
        close(up[1]);
        clients[i] = (client){.pid = pid, .command = down[1], .report = up[0]};
    }

    // Every client is set up (connected and held, for a storm; one ticket per slot, for resumed handshakes).
    uint64_t setup_start = now_ns(), limit = setup_start + (uint64_t)(opt.timeout * 1e9) + 5000000000u;
    while (!all(offsetof(client, ready)) && now_ns() < limit) pump(100);
    if (!all(offsetof(client, ready))) die("the clients were not ready within --timeout");
    double setup = (double)(now_ns() - setup_start) / 1e9;
    int ready = 0;
    for (int i = 0; i < opt.procs; i++) ready += clients[i].count;
    if (opt.mode == MODE_STORM)
        fprintf(stderr, "tls-load: %d of %d devices connected and authenticated over TLS in %.2f s\n", ready,
                opt.connections, setup);
    if (opt.mode == MODE_STORM && ready < opt.connections) fprintf(stderr, "tls-load: warning: not all held\n");
    usleep(opt.mode == MODE_STORM ? 1000000 : 200000);  // let the gateway settle (the AUTHs' Redis writes)

    double worker0 = opt.worker_pid ? cpu_of(opt.worker_pid) : 0;
    double gateway0 = tree_total(opt.gateway_pid), redis0 = opt.redis_pid ? cpu_of(opt.redis_pid) : 0;
    uint64_t t0 = now_ns(), deadline = opt.mode == MODE_HANDSHAKES ? t0 + (uint64_t)(opt.seconds * 1e9) : 0;
    char go[96];
    snprintf(go, sizeof go, "go %llu %llu\n", (unsigned long long)t0, (unsigned long long)deadline);
    if (opt.mode == MODE_STORM && opt.trigger == TRIGGER_RELOAD) {
        send_all(go);
        if (kill(opt.master_pid, SIGHUP) != 0) die("SIGHUP to %d: %s", opt.master_pid, strerror(errno));
    } else {
        send_all(go);
    }
    double elapsed = 0, worker1 = 0, gateway1 = 0, redis1 = 0;
    if (opt.mode == MODE_HANDSHAKES) {
        while (now_ns() < deadline) {
            uint64_t left = (deadline - now_ns()) / 1000000u;
            pump(left > 50 ? 50 : (int)left + 1);
        }
        worker1 = opt.worker_pid ? cpu_of(opt.worker_pid) : 0;
        gateway1 = tree_total(opt.gateway_pid);
        redis1 = opt.redis_pid ? cpu_of(opt.redis_pid) : 0;
        elapsed = (double)(now_ns() - t0) / 1e9;
        uint64_t until = now_ns() + 15000000000u;
        while (!all(offsetof(client, drained)) && now_ns() < until) pump(100);
    } else {
        // Until every device is back, and still is 1.5 s later (a reconnect that reached a draining worker is sent
        // away again); the CPU figures are read each time all are back, so the last reading is the final one.
        uint64_t until = t0 + (uint64_t)(opt.timeout * 1e9), settled = 0, last_sample = 0;
        int was_all = 0;
        while (now_ns() < until) {
            pump(20);
            int now_all = all(offsetof(client, back));
            if (now_ns() - last_sample > 100000000u) {
                tree_total(opt.gateway_pid);
                last_sample = now_ns();
            }
            if (now_all && !was_all) {
                worker1 = opt.worker_pid ? cpu_of(opt.worker_pid) : 0;
                gateway1 = tree_total(opt.gateway_pid);
                redis1 = opt.redis_pid ? cpu_of(opt.redis_pid) : 0;
                elapsed = (double)(now_ns() - t0) / 1e9;
                settled = now_ns() + 1500000000u;
            }
            was_all = now_all;
            if (now_all && now_ns() >= settled) break;
        }
        if (!was_all) {
            worker1 = opt.worker_pid ? cpu_of(opt.worker_pid) : 0;
            gateway1 = tree_total(opt.gateway_pid);
            redis1 = opt.redis_pid ? cpu_of(opt.redis_pid) : 0;
            elapsed = (double)(now_ns() - t0) / 1e9;
        }
    }
    send_all("stop\n");
    uint64_t until = now_ns() + 10000000000u;
    while (!all(offsetof(client, ended)) && now_ns() < until) pump(100);
    for (int i = 0; i < opt.procs; i++) waitpid(clients[i].pid, NULL, 0);
    if (!all(offsetof(client, ended))) die("a client did not report");

    char failures[256];
    failures_text(failures, sizeof failures);
    double client_cpu = sum_double("cpu");
    const char *negotiated = strstr(clients[0].result, "negotiated=");
    negotiated = negotiated ? negotiated + 11 : "-";
    double worker = worker1 - worker0, gateway = gateway1 - gateway0, redis = redis1 - redis0;
    FILE *json = opt.json ? fopen(opt.json, "a") : NULL;
    if (opt.mode == MODE_HANDSHAKES) {
        unsigned long long handshakes = sum("handshakes"), resumed = sum("resumed"), cycles = sum("cycles");
        double rate = (double)handshakes / elapsed;
        printf("\n%s handshakes, TLS %s, %s%s, %d in flight over %d client processes, %.1f s; load average %.2f\n",
               opt.resume ? "resumed" : "full", opt.tls == 12 ? "1.2" : "1.3", negotiated,
               opt.auth ? ", with AUTH" : "", opt.in_flight, opt.procs, opt.seconds, load);
        printf("\n| measure | value |\n|---|---|\n");
        printf("| handshakes | %llu in %.2f s: **%.0f/s** (%llu whole cycles) |\n", handshakes, elapsed, rate, cycles);
        printf("| resumed (SSL_session_reused) | %llu of %llu (%.1f %%) |\n", resumed, handshakes,
               handshakes ? 100.0 * (double)resumed / (double)handshakes : 0);
        printf("| failures | %s |\n", failures);
        printf("| connect → handshake done | p50 %.2f · p99 %.2f · max %.2f ms |\n",
               hpercentile(&merged_latency, 50) / 1e3, hpercentile(&merged_latency, 99) / 1e3, merged_latency.max / 1e3);
        if (opt.worker_pid)
            printf("| gateway worker CPU | %.2f cores; **%.0f µs per handshake** |\n", worker / elapsed,
                   handshakes ? worker * 1e6 / (double)handshakes : 0);
        if (opt.gateway_pid) printf("| gateway, master + workers | %.2f cores |\n", gateway / elapsed);
        if (opt.redis_pid)
            printf("| redis-server CPU | %.2f cores; %.0f µs per handshake |\n", redis / elapsed,
                   handshakes ? redis * 1e6 / (double)handshakes : 0);
        printf("| client CPU (%d processes) | %.2f cores; %.0f µs per handshake |\n", opt.procs, client_cpu / elapsed,
               handshakes ? client_cpu * 1e6 / (double)handshakes : 0);
        if (json) {
            fprintf(json,
                    "{\"mode\":\"handshakes\",\"label\":\"%s\",\"tls\":\"%s\",\"resume\":%s,\"auth\":%s,"
                    "\"in_flight\":%d,\"procs\":%d,\"seconds\":%.3f,\"handshakes\":%llu,\"rate\":%.1f,"
                    "\"resumed\":%llu,\"failures\":\"%s\",\"worker_cpu\":%.3f,\"worker_us_per_handshake\":%.1f,"
                    "\"gateway_cpu\":%.3f,\"redis_cpu\":%.3f,\"client_cpu\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                    "\"load\":%.2f,\"negotiated\":\"%s\"}\n",
                    opt.label ? opt.label : "", opt.tls == 12 ? "1.2" : "1.3", opt.resume ? "true" : "false",
                    opt.auth ? "true" : "false", opt.in_flight, opt.procs, elapsed, handshakes, rate, resumed, failures,
                    worker, handshakes ? worker * 1e6 / (double)handshakes : 0, gateway, redis, client_cpu,
                    hpercentile(&merged_latency, 50) / 1e3, hpercentile(&merged_latency, 99) / 1e3, load, negotiated);
        }
    } else {
        unsigned long long back = sum("back"), resumed = sum("storm_resumed"), attempts = sum("attempts");
        unsigned long long tickets = sum("tickets");
        uint64_t last = 0;
        for (int i = 0; i < opt.procs; i++)
            if (clients[i].back_at > last) last = clients[i].back_at;
        double took = back == (unsigned long long)opt.connections ? (double)(last - t0) / 1e9 : -1;
        printf("\nstorm: %d TLS %s devices, %s, reconnecting %s, %d in flight over %d client processes; "
               "load average %.2f\n",
               opt.connections, opt.tls == 12 ? "1.2" : "1.3", negotiated,
               opt.resume ? "with their tickets" : "without tickets (full handshakes)", opt.in_flight, opt.procs, load);
        printf("\n| measure | value |\n|---|---|\n");
        printf("| connected and authenticated first (full handshakes) | %d in %.2f s |\n", ready, setup);
        printf("| devices holding a ticket at the trigger | %llu |\n", tickets);
        printf("| trigger | %s |\n", opt.trigger == TRIGGER_DROP ? "every client closes its connection at once"
                                                                : "SIGHUP to the master (reload: old worker drains)");
        if (took >= 0) printf("| all back and authenticated | **%.2f s** after the trigger |\n", took);
        else printf("| all back and authenticated | **no**: %llu of %d within %.0f s |\n", back, opt.connections,
                    opt.timeout);
        printf("| trigger → back, per device | p50 %.0f · p99 %.0f · max %.0f ms |\n",
               hpercentile(&merged_back, 50) / 1e3, hpercentile(&merged_back, 99) / 1e3, merged_back.max / 1e3);
        if (opt.trigger == TRIGGER_RELOAD)
            printf("| trigger → DISCONNECT or close (the drain) | p50 %.0f · p99 %.0f · max %.0f ms |\n",
                   hpercentile(&merged_drop, 50) / 1e3, hpercentile(&merged_drop, 99) / 1e3, merged_drop.max / 1e3);
        printf("| drop → back (reconnect, TLS, AUTH), per device | p50 %.0f · p99 %.0f · max %.0f ms |\n",
               hpercentile(&merged_reconnect, 50) / 1e3, hpercentile(&merged_reconnect, 99) / 1e3,
               merged_reconnect.max / 1e3);
        printf("| of which connect → handshake done (last attempt) | p50 %.0f · p99 %.0f · max %.0f ms |\n",
               hpercentile(&merged_handshake, 50) / 1e3, hpercentile(&merged_handshake, 99) / 1e3,
               merged_handshake.max / 1e3);
        printf("| of which AUTH → AUTH_REPLY | p50 %.0f · p99 %.0f · max %.0f ms |\n", hpercentile(&merged_auth, 50) / 1e3,
               hpercentile(&merged_auth, 99) / 1e3, merged_auth.max / 1e3);
        printf("| resumed (SSL_session_reused, last connection) | %llu of %llu (%.1f %%) |\n", resumed, back,
               back ? 100.0 * (double)resumed / (double)back : 0);
        printf("| handshakes in the storm (attempts) | %llu, %llu resumed |\n", attempts, sum("resumed_attempts"));
        printf("| failures and retries | %s |\n", failures);
        printf("| reconnects sent away again (reached a draining worker) | %llu |\n", sum("drained_again"));
        printf("| gateway CPU over the storm (master + workers) | %.2f s (%.2f cores; %.0f µs per device) |\n",
               gateway, gateway / elapsed, back ? gateway * 1e6 / (double)back : 0);
        if (opt.redis_pid) printf("| redis-server CPU | %.2f s (%.2f cores) |\n", redis, redis / elapsed);
        printf("| client CPU (%d processes) | %.2f s (%.2f cores) |\n", opt.procs, client_cpu, client_cpu / elapsed);
        if (json) {
            fprintf(json,
                    "{\"mode\":\"storm\",\"label\":\"%s\",\"tls\":\"%s\",\"resume\":%s,\"trigger\":\"%s\","
                    "\"connections\":%d,\"procs\":%d,\"in_flight\":%d,\"setup_s\":%.3f,\"back\":%llu,\"took_s\":%.3f,"
                    "\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"reconnect_p50_ms\":%.1f,\"reconnect_p99_ms\":%.1f,"
                    "\"drop_max_ms\":%.1f,\"resumed\":%llu,\"attempts\":%llu,\"failures\":\"%s\","
                    "\"gateway_cpu\":%.3f,\"redis_cpu\":%.3f,\"client_cpu\":%.3f,\"load\":%.2f,\"negotiated\":\"%s\"}\n",
                    opt.label ? opt.label : "", opt.tls == 12 ? "1.2" : "1.3", opt.resume ? "true" : "false",
                    opt.trigger == TRIGGER_DROP ? "drop" : "reload", opt.connections, opt.procs, opt.in_flight, setup,
                    back, took, hpercentile(&merged_back, 50) / 1e3, hpercentile(&merged_back, 99) / 1e3,
                    hpercentile(&merged_reconnect, 50) / 1e3, hpercentile(&merged_reconnect, 99) / 1e3,
                    merged_drop.max / 1e3, resumed,
                    attempts, failures, gateway, redis, client_cpu, load, negotiated);
        }
    }
    if (json) fclose(json);
    return 0;
}
