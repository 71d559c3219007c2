/* wsload.c -- load generator for the benchmarks (bench/run).
 *
 * Single-threaded, one epoll loop, many connections.  Speaks RFC 6455 as a
 * client through the project's codec (ws_codec.c: masked client frames out,
 * ws_parser with require_mask=0 for the server's frames), or, with
 * --raw-tcp, plain newline-terminated lines (the TCP echo floor).
 *
 *   wsload MODE [options]
 *
 * Modes:
 *   rtt         -c C connections (default 1), one message in flight each,
 *               -n N round trips recorded after --warmup W per connection
 *               (or for -d seconds); every round trip is kept in ns and the
 *               percentiles are exact (sorted, nearest rank).
 *   throughput  -c C connections, -w W messages in flight each, -s S bytes,
 *               for -d T seconds after --warmup-s seconds; messages/s, MB/s
 *               and the round-trip percentiles of the measured window.
 *   connect     -c C sessions at a time for -d T seconds: connect, upgrade,
 *               one echo, close handshake, close; sessions/s.
 *   idle        open -n N sessions (-c at a time), one echo each to prove
 *               it is live, print the result line, then hold them until
 *               SIGINT/SIGTERM/SIGUSR1 or -d seconds (0: forever), then
 *               close them all.  Stops opening at the first failure.
 *
 * Options: -u URL (ws://host:port/path, wss:// when built with
 * WSLOAD_TLS, tcp://host:port for --raw-tcp), -c, -w, -s, -d, -n,
 * --warmup N, --warmup-s SEC, --binary (binary frames instead of text),
 * --raw-tcp, --stall SEC (give up when nothing progresses for that long).
 *
 * Messages are S bytes of printable ASCII (no newline) that carry the
 * connection and sequence number, so every echo is checked byte for byte.
 * In --raw-tcp mode a message is S bytes plus '\n' on the wire.
 *
 * Output: one JSON line on stdout.  Exit status: 0 success, 1 echo
 * mismatch, protocol error, unexpected close or stall, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ws_codec.h"

#ifdef WSLOAD_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

enum { M_RTT, M_THROUGHPUT, M_CONNECT, M_IDLE };
static const char *mode_names[] = { "rtt", "throughput", "connect", "idle" };

enum {
    CS_FREE = 0,
    CS_CONNECTING,      /* TCP connect in progress */
    CS_TLS,             /* TLS handshake */
    CS_UPGRADE,         /* request sent, waiting for 101 */
    CS_OPEN,
    CS_CLOSING,         /* our close frame queued, waiting for the server's */
};

/* ---- options ----------------------------------------------------------- */

static struct {
    int mode;
    char url[2048];
    char host[256];
    char port[16];
    char path[1024];
    int tls;
    int raw;
    int binary;
    int conns;
    int inflight;
    size_t size;
    double duration;
    long count;
    long warmup;
    double warmup_s;
    double stall;
} opt;

/* ---- small helpers ----------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct {
    unsigned char *d;
    size_t off, len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t n)
{
    if (b->len + n <= b->cap) {
        return;
    }
    if (b->off > 0) {
        memmove(b->d, b->d + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;

        while (cap < b->len + n) {
            cap *= 2;
        }
        b->d = realloc(b->d, cap);
        if (!b->d) {
            fprintf(stderr, "wsload: out of memory\n");
            exit(1);
        }
        b->cap = cap;
    }
}

static void buf_append(buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->d + b->len, p, n);
    b->len += n;
}

static size_t buf_pending(const buf_t *b)
{
    return b->len - b->off;
}

static void buf_consume(buf_t *b, size_t n)
{
    b->off += n;
    if (b->off == b->len) {
        b->off = b->len = 0;
    }
}

static void buf_free(buf_t *b)
{
    free(b->d);
    memset(b, 0, sizeof(*b));
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x ? x : 0x9e3779b9u;
}

/* ---- statistics --------------------------------------------------------- */

#define MAX_CODES 16

static struct {
    uint64_t *samples;
    size_t nsamples, cap;
    uint64_t msgs, bytes;           /* echoes counted in the measured window */
    uint64_t msgs_total;            /* every echo, warm-up included */
    uint64_t sessions_ok, sessions_failed;
    uint64_t mismatches, errors, dropped;
    uint64_t unclean;               /* our close answered by no close frame */
    uint64_t t_begin, t_end;        /* measured window */
    struct { unsigned code; unsigned long n; } codes[MAX_CODES];
    int ncodes;
    struct { int status; unsigned long n; } http[MAX_CODES];
    int nhttp;
    char first_error[256];
} st;

static void add_sample(uint64_t v)
{
    if (st.nsamples == st.cap) {
        st.cap = st.cap ? st.cap * 2 : 65536;
        st.samples = realloc(st.samples, st.cap * sizeof(*st.samples));
        if (!st.samples) {
            fprintf(stderr, "wsload: out of memory\n");
            exit(1);
        }
    }
    st.samples[st.nsamples++] = v;
}

static void note_error(const char *fmt, ...)
{
    va_list ap;

    st.errors++;
    if (st.first_error[0]) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(st.first_error, sizeof(st.first_error), fmt, ap);
    va_end(ap);
}

static void note_close_code(unsigned code)
{
    for (int i = 0; i < st.ncodes; i++) {
        if (st.codes[i].code == code) {
            st.codes[i].n++;
            return;
        }
    }
    if (st.ncodes < MAX_CODES) {
        st.codes[st.ncodes].code = code;
        st.codes[st.ncodes++].n = 1;
    }
}

static void note_http(int status)
{
    for (int i = 0; i < st.nhttp; i++) {
        if (st.http[i].status == status) {
            st.http[i].n++;
            return;
        }
    }
    if (st.nhttp < MAX_CODES) {
        st.http[st.nhttp].status = status;
        st.http[st.nhttp++].n = 1;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples. */
static uint64_t pct(double p)
{
    size_t rank;

    if (!st.nsamples) {
        return 0;
    }
    rank = (size_t)(p / 100.0 * (double)st.nsamples + 0.999999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > st.nsamples) {
        rank = st.nsamples;
    }
    return st.samples[rank - 1];
}

/* ---- messages ----------------------------------------------------------- */

#define PATLEN 61
static unsigned char *patbuf;       /* PATLEN + size bytes of a repeating pattern */

static void pattern_init(size_t size)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    patbuf = malloc(PATLEN + size + 1);
    if (!patbuf) {
        fprintf(stderr, "wsload: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < PATLEN + size + 1; i++) {
        patbuf[i] = (unsigned char)alpha[i % PATLEN];
    }
}

/* Message seq of connection id: a 20-byte header "iiiiiiii ssssssssss "
 * (cut when size is smaller), then the pattern at an offset of its own. */
#define MSG_HDR 20

static size_t msg_header(char *h, unsigned id, uint64_t seq)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), "%08x %010" PRIu64 " ", id,
                     seq % (uint64_t)10000000000u);

    memcpy(h, tmp, MSG_HDR);
    return (size_t)n;
}

static void msg_build(unsigned char *out, unsigned id, uint64_t seq)
{
    char h[MSG_HDR];
    size_t hn = opt.size < MSG_HDR ? opt.size : MSG_HDR;

    msg_header(h, id, seq);
    memcpy(out, h, hn);
    if (opt.size > hn) {
        memcpy(out + hn, patbuf + (seq * 7 + id) % PATLEN + hn, opt.size - hn);
    }
}

static int msg_check(const unsigned char *p, size_t len, unsigned id, uint64_t seq)
{
    char h[MSG_HDR];
    size_t hn = opt.size < MSG_HDR ? opt.size : MSG_HDR;

    if (len != opt.size) {
        return 0;
    }
    msg_header(h, id, seq);
    if (memcmp(p, h, hn) != 0) {
        return 0;
    }
    return opt.size == hn
        || memcmp(p + hn, patbuf + (seq * 7 + id) % PATLEN + hn, opt.size - hn) == 0;
}

/* ---- connections -------------------------------------------------------- */

typedef struct conn {
    int fd;
    unsigned id;
    int state;
    int counted;                /* idle: session already counted */
#ifdef WSLOAD_TLS
    SSL *ssl;
#endif
    buf_t out;
    buf_t in;                   /* HTTP response, or --raw-tcp line assembly */
    ws_parser *parser;
    uint64_t next_seq, recv_seq;
    uint64_t *sent;             /* send times, ring of opt.inflight */
    unsigned inflight;
    uint64_t t_start;           /* session start (connect mode), state deadline */
    uint64_t deadline;
    uint32_t rng;
} conn;

static conn *conns;
static int nconns;              /* slots */
static int epfd;
static struct addrinfo *addr;
static volatile sig_atomic_t got_signal;

static int phase;               /* see PH_* */
enum { PH_OPENING, PH_RUN, PH_DRAIN, PH_CLOSE, PH_HOLD, PH_DONE };

static long open_count;         /* connections in CS_OPEN or later */
static long started;            /* sessions started (connect, idle) */
static long live;               /* slots with a socket */
static int stop_opening;
static uint64_t last_progress;

#ifdef WSLOAD_TLS
static SSL_CTX *ssl_ctx;
#endif

static void conn_send_msg(conn *c);
static void conn_start(conn *c);
static void conn_end(conn *c, int ok);
static void conn_flush(conn *c);

#ifdef WSLOAD_TLS
/* What an SSL_read/SSL_write result r <= 0 means, as read(2)/write(2)
 * would say it: for a read, 0 at the peer's orderly end; otherwise -1
 * with errno. */
static ssize_t ssl_result(conn *c, int r, int reading)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        if (reading) {
            return 0;
        }
        errno = EPROTO;
        return -1;
    case SSL_ERROR_SYSCALL:
        return reading && errno == 0 ? 0 : -1;
    default:
        errno = EPROTO;
        return -1;
    }
}
#endif

static ssize_t c_read(conn *c, void *b, size_t n)
{
#ifdef WSLOAD_TLS
    if (c->ssl) {
        int r = SSL_read(c->ssl, b, n > 1u << 30 ? 1 << 30 : (int)n);

        return r > 0 ? r : ssl_result(c, r, 1);
    }
#endif
    return read(c->fd, b, n);
}

static ssize_t c_write(conn *c, const void *b, size_t n)
{
#ifdef WSLOAD_TLS
    if (c->ssl) {
        int r = SSL_write(c->ssl, b, n > 1u << 30 ? 1 << 30 : (int)n);

        return r > 0 ? r : ssl_result(c, r, 0);
    }
#endif
    return write(c->fd, b, n);
}

/* Queue a client frame: header with a fresh mask, masked payload. */
static void queue_frame(conn *c, int opcode, const unsigned char *p, size_t n)
{
    unsigned char hdr[WS_MAX_HEADER], mask[4];
    uint32_t m = xorshift(&c->rng);
    size_t h;

    memcpy(mask, &m, 4);
    h = ws_frame_header(hdr, 1, opcode, n, mask);
    buf_reserve(&c->out, h + n);    /* no compaction between the appends */
    buf_append(&c->out, hdr, h);
    if (n) {
        size_t at = c->out.len;

        buf_append(&c->out, p, n);
        ws_mask(c->out.d + at, n, mask, 0);
    }
}

static void queue_close(conn *c)
{
    unsigned char pl[WS_MAX_CONTROL];
    size_t n = ws_close_payload(pl, WS_CLOSE_NORMAL, "");

    queue_frame(c, WS_OP_CLOSE, pl, n);
}

static void conn_send_msg(conn *c)
{
    uint64_t seq = c->next_seq++;

    if (opt.raw) {
        buf_reserve(&c->out, opt.size + 1);
        msg_build(c->out.d + c->out.len, c->id, seq);
        c->out.d[c->out.len + opt.size] = '\n';
        c->out.len += opt.size + 1;
    }
    else {
        unsigned char hdr[WS_MAX_HEADER], mask[4];
        uint32_t m = xorshift(&c->rng);
        size_t h;

        memcpy(mask, &m, 4);
        h = ws_frame_header(hdr, 1, opt.binary ? WS_OP_BINARY : WS_OP_TEXT,
                            opt.size, mask);
        buf_reserve(&c->out, h + opt.size);
        memcpy(c->out.d + c->out.len, hdr, h);
        msg_build(c->out.d + c->out.len + h, c->id, seq);
        ws_mask(c->out.d + c->out.len + h, opt.size, mask, 0);
        c->out.len += h + opt.size;
    }
    c->sent[seq % (uint64_t)opt.inflight] = now_ns();
    c->inflight++;
}

static void begin_close(conn *c)
{
    if (c->state == CS_CLOSING) {
        return;
    }
    if (opt.raw || c->state != CS_OPEN) {
        conn_end(c, 1);
        return;
    }
    queue_close(c);
    c->state = CS_CLOSING;
    c->deadline = now_ns() + 5000000000ull;
    conn_flush(c);
}

/* The last echo of a connection's session opening (connect, idle). */
static void session_ready(conn *c)
{
    if (opt.mode == M_CONNECT) {
        begin_close(c);
    }
    else if (opt.mode == M_IDLE && !c->counted) {
        c->counted = 1;
        st.sessions_ok++;
    }
}

/* rtt and throughput: one echo back, one more message out, until the
 * measured phase is over. */
static int keep_sending(void)
{
    return (opt.mode == M_RTT || opt.mode == M_THROUGHPUT)
        && (phase == PH_OPENING || phase == PH_RUN);
}

static void on_message(conn *c, const unsigned char *p, size_t len)
{
    uint64_t now = now_ns();
    uint64_t seq = c->recv_seq;

    if (c->inflight == 0) {
        note_error("unsolicited message of %zu bytes on connection %u", len, c->id);
        st.mismatches++;
        return;
    }
    if (!msg_check(p, len, c->id, seq)) {
        st.mismatches++;
        note_error("echo mismatch on connection %u, message %" PRIu64
                   " (%zu bytes, expected %zu)", c->id, seq, len, opt.size);
        return;
    }
    c->recv_seq++;
    c->inflight--;
    last_progress = now;
    st.msgs_total++;
    {
        uint64_t rtt = now - c->sent[seq % (uint64_t)opt.inflight];

        switch (opt.mode) {
        case M_RTT:
            if (phase == PH_RUN && seq >= (uint64_t)opt.warmup) {
                if (!st.t_begin) {
                    st.t_begin = c->sent[seq % (uint64_t)opt.inflight];
                }
                add_sample(rtt);
                st.msgs++;
                st.bytes += len;
                st.t_end = now;
            }
            break;
        case M_THROUGHPUT:
            if (phase == PH_RUN && now >= st.t_begin && now < st.t_end) {
                add_sample(rtt);
                st.msgs++;
                st.bytes += len;
            }
            break;
        case M_CONNECT:
            add_sample(now - c->t_start);
            break;
        default:
            break;
        }
    }
    if (opt.mode == M_CONNECT || opt.mode == M_IDLE) {
        session_ready(c);
        return;
    }
    if (keep_sending()) {
        conn_send_msg(c);
    }
}

/* 101 received (or the raw connection is up): the session is open. */
static void conn_opened(conn *c)
{
    c->state = CS_OPEN;
    open_count++;
    switch (opt.mode) {
    case M_RTT:
        conn_send_msg(c);
        break;
    case M_THROUGHPUT:
        for (int i = 0; i < opt.inflight; i++) {
            conn_send_msg(c);
        }
        break;
    case M_CONNECT:
    case M_IDLE:
        conn_send_msg(c);
        break;
    }
}

static void server_closed(conn *c, unsigned code, const char *why)
{
    int expected = c->state == CS_CLOSING;

    if (code) {
        note_close_code(code);
    }
    if (!expected) {
        if (opt.mode == M_IDLE && phase == PH_HOLD) {
            st.dropped++;
        }
        note_error("connection %u closed by the server (%s, code %u) in state %d",
                   c->id, why, code, c->state);
        conn_end(c, 0);
        return;
    }
    conn_end(c, 1);
}

static void feed_ws(conn *c, const unsigned char *p, size_t n)
{
    while (c->state == CS_OPEN || c->state == CS_CLOSING) {
        ws_event ev;
        size_t used = 0;
        ws_event_type t = ws_parser_feed(c->parser, p, n, &used, &ev);

        p += used;
        n -= used;
        switch (t) {
        case WS_EV_NEED_MORE:
            return;
        case WS_EV_MESSAGE:
            if (c->state == CS_OPEN) {
                on_message(c, ev.data, ev.len);
            }
            break;
        case WS_EV_PING:
            queue_frame(c, WS_OP_PONG, ev.data, ev.len);
            break;
        case WS_EV_PONG:
            break;
        case WS_EV_CLOSE:
            server_closed(c, ev.code, "close frame");
            return;
        case WS_EV_ERROR:
            if (c->state == CS_CLOSING) {
                /* After our close frame: a server that does not close
                 * cleanly (mod_lua echoes the close payload as a text
                 * frame) is counted, not failed. */
                st.unclean++;
                conn_end(c, 1);
                return;
            }
            note_error("protocol error from the server on connection %u: %u %s",
                       c->id, ev.code, ev.reason);
            st.mismatches++;
            conn_end(c, 0);
            return;
        }
    }
}

static void feed_raw(conn *c, const unsigned char *p, size_t n)
{
    if (buf_pending(&c->in) == 0) {
        /* Whole lines straight from the read buffer. */
        const unsigned char *nl;

        while (n && (nl = memchr(p, '\n', n)) != NULL && c->state == CS_OPEN) {
            on_message(c, p, (size_t)(nl - p));
            n -= (size_t)(nl - p) + 1;
            p = nl + 1;
        }
        if (n && c->state == CS_OPEN) {
            buf_append(&c->in, p, n);
        }
        return;
    }
    {
        size_t had = buf_pending(&c->in), scan;

        buf_append(&c->in, p, n);       /* may move the pending bytes */
        scan = c->in.off + had;
        for (;;) {
            unsigned char *s = c->in.d + c->in.off;
            unsigned char *nl = memchr(c->in.d + scan, '\n', c->in.len - scan);

            if (!nl) {
                break;
            }
            on_message(c, s, (size_t)(nl - s));
            buf_consume(&c->in, (size_t)(nl - s) + 1);
            scan = c->in.off;
            if (c->state != CS_OPEN) {
                break;
            }
        }
    }
}

static int parse_response(conn *c)
{
    unsigned char *s = c->in.d + c->in.off;
    size_t n = buf_pending(&c->in);
    unsigned char *end = memmem(s, n, "\r\n\r\n", 4);
    int status = 0;
    size_t hl;

    if (!end) {
        if (n > 16384) {
            note_error("response header too long");
            return -1;
        }
        return 0;
    }
    hl = (size_t)(end - s) + 4;
    if (sscanf((const char *)s, "HTTP/1.%*d %d", &status) != 1) {
        note_error("malformed response on connection %u", c->id);
        return -1;
    }
    note_http(status);
    if (status != 101) {
        note_error("upgrade refused: HTTP %d on connection %u", status, c->id);
        return -1;
    }
    c->parser = ws_parser_create(opt.size + 4096, 0);
    {
        unsigned char *rest = NULL;
        size_t rn = n - hl;

        if (rn) {
            rest = malloc(rn);
            memcpy(rest, s + hl, rn);
        }
        c->in.off = c->in.len = 0;
        conn_opened(c);
        if (rn) {
            feed_ws(c, rest, rn);
            free(rest);
        }
    }
    return 1;
}

static void send_request(conn *c)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[18];
    char key[25], req[4096];
    int n;

    for (int i = 0; i < 16; i += 4) {
        uint32_t r = xorshift(&c->rng);
        memcpy(raw + i, &r, 4);
    }
    raw[16] = raw[17] = 0;
    for (int i = 0, o = 0; i < 18; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        key[o++] = b64[(v >> 18) & 63];
        key[o++] = b64[(v >> 12) & 63];
        key[o++] = b64[(v >> 6) & 63];
        key[o++] = b64[v & 63];
    }
    key[22] = key[23] = '=';
    key[24] = 0;
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s:%s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "\r\n", opt.path, opt.host, opt.port, key);
    buf_append(&c->out, req, (size_t)n);
    c->state = CS_UPGRADE;
}

/* TCP connected (or TLS done): send the upgrade, or open a raw session. */
static void transport_ready(conn *c)
{
    if (opt.raw) {
        conn_opened(c);
    }
    else {
        send_request(c);
    }
}

#ifdef WSLOAD_TLS
static int tls_step(conn *c)
{
    int r = SSL_connect(c->ssl);

    if (r == 1) {
        transport_ready(c);
        return 1;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default:
        note_error("TLS handshake failed on connection %u", c->id);
        return -1;
    }
}
#endif

static void conn_flush(conn *c)
{
    while (c->fd >= 0 && buf_pending(&c->out)) {
        ssize_t w = c_write(c, c->out.d + c->out.off, buf_pending(&c->out));

        if (w > 0) {
            buf_consume(&c->out, (size_t)w);
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        if (c->state == CS_CLOSING) {
            conn_end(c, 1);
        }
        else {
            note_error("write on connection %u: %s", c->id, strerror(errno));
            conn_end(c, 0);
        }
        return;
    }
}

static unsigned char rbuf[1 << 18];

static void conn_io(conn *c, uint32_t events)
{
    if (c->fd < 0) {
        return;                 /* ended earlier in this batch of events */
    }
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);

        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            note_error("connect: %s", strerror(err));
            conn_end(c, 0);
            return;
        }
#ifdef WSLOAD_TLS
        if (opt.tls) {
            c->ssl = SSL_new(ssl_ctx);
            SSL_set_fd(c->ssl, c->fd);
            SSL_set_tlsext_host_name(c->ssl, opt.host);
            c->state = CS_TLS;
        }
        else
#endif
        {
            transport_ready(c);
        }
    }
#ifdef WSLOAD_TLS
    if (c->state == CS_TLS) {
        int r = tls_step(c);

        if (r < 0) {
            conn_end(c, 0);
            return;
        }
        if (r == 0) {
            return;
        }
    }
#endif
    conn_flush(c);
    while (c->fd >= 0) {
        ssize_t n = c_read(c, rbuf, sizeof(rbuf));

        if (n > 0) {
            if (c->state == CS_UPGRADE) {
                buf_append(&c->in, rbuf, (size_t)n);
                if (parse_response(c) < 0) {
                    conn_end(c, 0);
                    return;
                }
            }
            else if (opt.raw) {
                feed_raw(c, rbuf, (size_t)n);
            }
            else {
                feed_ws(c, rbuf, (size_t)n);
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        if (n == 0) {
            server_closed(c, 0, "EOF");
        }
        else if (c->state == CS_CLOSING) {
            conn_end(c, 1);
        }
        else {
            server_closed(c, 0, strerror(errno));
        }
        return;
    }
    conn_flush(c);
}

/* Release a slot. */
static void conn_end(conn *c, int ok)
{
    if (c->fd < 0) {
        return;
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
#ifdef WSLOAD_TLS
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
#endif
    close(c->fd);
    c->fd = -1;
    live--;
    if (c->state >= CS_OPEN) {
        open_count--;
    }
    if (opt.mode == M_CONNECT && phase == PH_RUN) {
        uint64_t now = now_ns();

        if (ok && c->inflight == 0 && c->recv_seq > 0) {
            if (now >= st.t_begin && now < st.t_end) {
                st.sessions_ok++;
            }
            last_progress = now;
        }
        else {
            st.sessions_failed++;
        }
    }
    if (opt.mode == M_IDLE && !c->counted) {
        c->counted = 1;
        st.sessions_failed++;
        stop_opening = 1;
    }
    c->state = CS_FREE;
    buf_free(&c->out);
    buf_free(&c->in);
    ws_parser_destroy(c->parser);
    c->parser = NULL;
    /* connect mode: the main loop starts the next session in this slot
     * once the current batch of events is handled. */
}

static void conn_start(conn *c)
{
    int fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct epoll_event ev;

    c->next_seq = c->recv_seq = 0;
    c->inflight = 0;
    c->counted = 0;
    c->t_start = now_ns();
    c->deadline = c->t_start + (uint64_t)(opt.stall * 1e9);
    c->state = CS_CONNECTING;
    started++;
    if (fd < 0) {
        note_error("socket: %s", strerror(errno));
        c->fd = -1;
        c->state = CS_FREE;
        if (opt.mode == M_IDLE) {
            st.sessions_failed++;
            stop_opening = 1;
        }
        else {
            st.sessions_failed++;
        }
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    live++;
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    if (connect(fd, addr->ai_addr, addr->ai_addrlen) < 0 && errno != EINPROGRESS) {
        note_error("connect: %s", strerror(errno));
        conn_end(c, 0);
    }
}

/* ---- URL and options ------------------------------------------------------ */

static int parse_url(const char *u)
{
    const char *p, *hs, *he, *ps;
    size_t hl;

    if (!strncmp(u, "ws://", 5)) {
        p = u + 5;
        strcpy(opt.port, "80");
    }
    else if (!strncmp(u, "wss://", 6)) {
        p = u + 6;
        opt.tls = 1;
        strcpy(opt.port, "443");
    }
    else if (!strncmp(u, "tcp://", 6)) {
        p = u + 6;
        opt.raw = 1;
        strcpy(opt.port, "7");
    }
    else {
        return -1;
    }
    hs = p;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(p, ']');
        if (!he) {
            return -1;
        }
        p = he + 1;
    }
    else {
        while (*p && *p != ':' && *p != '/') {
            p++;
        }
        he = p;
    }
    hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(opt.host)) {
        return -1;
    }
    memcpy(opt.host, hs, hl);
    opt.host[hl] = 0;
    if (*p == ':') {
        ps = ++p;
        while (*p && *p != '/') {
            p++;
        }
        if (p == ps || (size_t)(p - ps) >= sizeof(opt.port)) {
            return -1;
        }
        memcpy(opt.port, ps, (size_t)(p - ps));
        opt.port[p - ps] = 0;
    }
    snprintf(opt.path, sizeof(opt.path), "%s", *p ? p : "/");
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: wsload rtt|throughput|connect|idle -u ws://host:port/path [options]\n"
            "  -c N        connections (rtt 1, throughput 64, connect 8, idle: opened at a time, 64)\n"
            "  -w N        messages in flight per connection (throughput; default 16)\n"
            "  -s BYTES    message size (default 64)\n"
            "  -d SEC      duration (throughput 10, connect 5, idle hold 0 = until a signal)\n"
            "  -n N        round trips (rtt; default 10000) or sessions (idle; default 1000)\n"
            "  --warmup N  round trips per connection not recorded (rtt; default 100)\n"
            "  --warmup-s S seconds of load before measuring (throughput; default 1)\n"
            "  --binary    binary frames instead of text\n"
            "  --raw-tcp   no WebSocket: newline-terminated lines (URL tcp://host:port or ws://)\n"
            "  --stall S   fail when nothing progresses for S seconds (default 20)\n"
#ifdef WSLOAD_TLS
            "  wss:// URLs use TLS (certificate not verified)\n"
#else
            "  (built without TLS: wss:// is not supported)\n"
#endif
        );
    exit(2);
}

static void on_sig(int sig)
{
    (void)sig;
    got_signal = 1;
}

/* ---- output ------------------------------------------------------------- */

static void print_json(void)
{
    double secs;

    qsort(st.samples, st.nsamples, sizeof(*st.samples), cmp_u64);
    printf("{\"tool\":\"wsload\",\"mode\":\"%s\",\"url\":\"%s\",\"raw_tcp\":%s,"
           "\"tls\":%s,\"binary\":%s,\"connections\":%d,\"inflight\":%d,"
           "\"size\":%zu",
           mode_names[opt.mode], opt.url, opt.raw ? "true" : "false",
           opt.tls ? "true" : "false", opt.binary ? "true" : "false",
           opt.conns, opt.inflight, opt.size);
    secs = st.t_end > st.t_begin ? (double)(st.t_end - st.t_begin) / 1e9 : 0;
    switch (opt.mode) {
    case M_RTT:
    case M_THROUGHPUT:
        printf(",\"seconds\":%.3f,\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64
               ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f",
               secs, st.msgs, st.bytes, secs > 0 ? (double)st.msgs / secs : 0,
               secs > 0 ? (double)st.bytes / secs / 1e6 : 0);
        break;
    case M_CONNECT:
        printf(",\"seconds\":%.3f,\"sessions\":%" PRIu64 ",\"sessions_failed\":%" PRIu64
               ",\"sessions_per_s\":%.1f",
               secs, st.sessions_ok, st.sessions_failed,
               secs > 0 ? (double)st.sessions_ok / secs : 0);
        break;
    case M_IDLE:
        printf(",\"requested\":%ld,\"opened\":%" PRIu64 ",\"failed\":%" PRIu64
               ",\"open_seconds\":%.3f",
               opt.count, st.sessions_ok, st.sessions_failed, secs);
        break;
    }
    if (st.nsamples) {
        uint64_t sum = 0;

        for (size_t i = 0; i < st.nsamples; i++) {
            sum += st.samples[i];
        }
        printf(",\"%s\":{\"samples\":%zu,\"min\":%" PRIu64 ",\"mean\":%.0f,\"p50\":%" PRIu64
               ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
               ",\"max\":%" PRIu64 "}",
               opt.mode == M_CONNECT ? "session_ns" : "rtt_ns",
               st.nsamples, st.samples[0], (double)sum / (double)st.nsamples,
               pct(50), pct(90), pct(99), pct(99.9), st.samples[st.nsamples - 1]);
    }
    printf(",\"echoes_total\":%" PRIu64 ",\"mismatches\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"unclean_closes\":%" PRIu64,
           st.msgs_total, st.mismatches, st.errors, st.unclean);
    if (opt.mode == M_IDLE) {
        printf(",\"dropped\":%" PRIu64, st.dropped);
    }
    printf(",\"close_codes\":{");
    for (int i = 0; i < st.ncodes; i++) {
        printf("%s\"%u\":%lu", i ? "," : "", st.codes[i].code, st.codes[i].n);
    }
    printf("},\"http_status\":{");
    for (int i = 0; i < st.nhttp; i++) {
        printf("%s\"%d\":%lu", i ? "," : "", st.http[i].status, st.http[i].n);
    }
    printf("}");
    if (st.first_error[0]) {
        printf(",\"first_error\":\"");
        for (const char *p = st.first_error; *p; p++) {
            if (*p == '"' || *p == '\\') {
                putchar('\\');
            }
            putchar((unsigned char)*p >= 0x20 ? *p : '?');
        }
        printf("\"");
    }
    printf("}\n");
    fflush(stdout);
}

/* ---- main loop ------------------------------------------------------------ */

static void close_all(void)
{
    for (int i = 0; i < nconns; i++) {
        if (conns[i].fd >= 0) {
            begin_close(&conns[i]);
        }
    }
}

static long inflight_total(void)
{
    long n = 0;

    for (int i = 0; i < nconns; i++) {
        if (conns[i].fd >= 0) {
            n += conns[i].inflight;
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "raw-tcp", no_argument, NULL, 'R' },
        { "binary", no_argument, NULL, 'B' },
        { "warmup", required_argument, NULL, 'W' },
        { "warmup-s", required_argument, NULL, 'S' },
        { "stall", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct epoll_event evs[512];
    struct addrinfo hints;
    struct rlimit rl;
    struct sigaction sa;
    int ch, rc, want_dur = 0, want_n = 0, want_c = 0;
    uint64_t hold_until = 0, phase_deadline = 0, t0, last_sweep = 0;

    if (argc < 2) {
        usage();
    }
    for (opt.mode = 0; opt.mode < 4; opt.mode++) {
        if (!strcmp(argv[1], mode_names[opt.mode])) {
            break;
        }
    }
    if (opt.mode == 4) {
        usage();
    }
    opt.inflight = 16;
    opt.size = 64;
    opt.warmup = 100;
    opt.warmup_s = 1.0;
    opt.stall = 20;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "u:c:w:s:d:n:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'u':
            snprintf(opt.url, sizeof(opt.url), "%s", optarg);
            break;
        case 'c':
            opt.conns = atoi(optarg);
            want_c = 1;
            break;
        case 'w':
            opt.inflight = atoi(optarg);
            break;
        case 's':
            opt.size = (size_t)strtoull(optarg, NULL, 10);
            break;
        case 'd':
            opt.duration = atof(optarg);
            want_dur = 1;
            break;
        case 'n':
            opt.count = atol(optarg);
            want_n = 1;
            break;
        case 'R':
            opt.raw = 1;
            break;
        case 'B':
            opt.binary = 1;
            break;
        case 'W':
            opt.warmup = atol(optarg);
            break;
        case 'S':
            opt.warmup_s = atof(optarg);
            break;
        case 'T':
            opt.stall = atof(optarg);
            break;
        default:
            usage();
        }
    }
    if (!opt.url[0] || parse_url(opt.url) < 0) {
        fprintf(stderr, "wsload: -u ws://host:port/path is required\n");
        usage();
    }
#ifndef WSLOAD_TLS
    if (opt.tls) {
        fprintf(stderr, "wsload: built without TLS support\n");
        return 2;
    }
#else
    if (opt.tls && opt.raw) {
        fprintf(stderr, "wsload: --raw-tcp with TLS is not supported\n");
        return 2;
    }
#endif
    switch (opt.mode) {
    case M_RTT:
        if (!want_c) opt.conns = 1;
        if (!want_n) opt.count = 10000;
        opt.inflight = 1;
        break;
    case M_THROUGHPUT:
        if (!want_c) opt.conns = 64;
        if (!want_dur) opt.duration = 10;
        break;
    case M_CONNECT:
        if (!want_c) opt.conns = 8;
        if (!want_dur) opt.duration = 5;
        opt.inflight = 1;
        break;
    case M_IDLE:
        if (!want_c) opt.conns = 64;
        if (!want_n) opt.count = 1000;
        opt.inflight = 1;
        break;
    }
    if (opt.conns < 1 || opt.inflight < 1 || opt.size < 1 || opt.count < 0
        || opt.duration < 0 || (opt.raw && opt.binary)) {
        usage();
    }

    /* Room for every socket. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sig;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(opt.host, opt.port, &hints, &addr)) != 0) {
        fprintf(stderr, "wsload: %s:%s: %s\n", opt.host, opt.port, gai_strerror(rc));
        return 2;
    }
#ifdef WSLOAD_TLS
    if (opt.tls) {
        ssl_ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                                  | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
#endif
    pattern_init(opt.size);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    nconns = opt.mode == M_IDLE ? (int)opt.count : opt.conns;
    conns = calloc((size_t)(nconns ? nconns : 1), sizeof(*conns));
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].id = (unsigned)i;
        conns[i].rng = 0x2545f491u ^ ((uint32_t)i * 2654435761u) ^ (uint32_t)getpid();
        if (!conns[i].rng) {
            conns[i].rng = 1;
        }
        conns[i].sent = calloc((size_t)opt.inflight, sizeof(uint64_t));
    }

    t0 = now_ns();
    last_progress = t0;
    phase = PH_OPENING;
    if (opt.mode == M_CONNECT) {
        phase = PH_RUN;
        st.t_begin = t0;
        st.t_end = t0 + (uint64_t)(opt.duration * 1e9);
    }
    if (opt.mode != M_IDLE) {
        for (int i = 0; i < nconns; i++) {
            conn_start(&conns[i]);
        }
    }
    {
        int next_idle = 0;

        for (;;) {
            int n;
            uint64_t now;

            if (opt.mode == M_IDLE && phase == PH_OPENING) {
                /* Keep opt.conns handshakes going at a time. */
                while (!stop_opening && next_idle < nconns
                       && live - (long)st.sessions_ok < opt.conns) {
                    conn_start(&conns[next_idle++]);
                }
            }
            n = epoll_wait(epfd, evs, 512, 10);
            for (int i = 0; i < n; i++) {
                conn_io(evs[i].data.ptr, evs[i].events);
            }
            now = now_ns();
            if (opt.mode == M_CONNECT && phase == PH_RUN && now < st.t_end) {
                for (int i = 0; i < nconns; i++) {
                    if (conns[i].fd < 0) {
                        conn_start(&conns[i]);
                    }
                }
            }

            switch (opt.mode) {
            case M_RTT:
                if (phase == PH_OPENING && open_count == nconns) {
                    phase = PH_RUN;
                    if (want_dur && !want_n) {
                        opt.count = 0;
                        phase_deadline = now + (uint64_t)(opt.duration * 1e9);
                    }
                }
                if (phase == PH_RUN
                    && ((opt.count && st.nsamples >= (size_t)opt.count)
                        || (phase_deadline && now >= phase_deadline))) {
                    phase = PH_DRAIN;
                    phase_deadline = now + 5000000000ull;
                }
                break;
            case M_THROUGHPUT:
                if (phase == PH_OPENING && open_count == nconns) {
                    phase = PH_RUN;
                    st.t_begin = now + (uint64_t)(opt.warmup_s * 1e9);
                    st.t_end = st.t_begin + (uint64_t)(opt.duration * 1e9);
                }
                if (phase == PH_RUN && now >= st.t_end) {
                    phase = PH_DRAIN;
                    phase_deadline = now + 10000000000ull;
                }
                break;
            case M_CONNECT:
                if (phase == PH_RUN && now >= st.t_end) {
                    /* No new sessions; those under way run to their close
                     * (cutting them off would leave them to the server's
                     * resume timeout and load the next measurement). */
                    phase = PH_CLOSE;
                    phase_deadline = now + 5000000000ull;
                }
                break;
            case M_IDLE:
                if (phase == PH_OPENING && live == (long)st.sessions_ok
                    && (stop_opening || next_idle >= nconns)) {
                    st.t_begin = t0;
                    st.t_end = now;
                    print_json();
                    phase = PH_HOLD;
                    hold_until = opt.duration > 0 ? now + (uint64_t)(opt.duration * 1e9) : 0;
                }
                if (phase == PH_HOLD && (got_signal || (hold_until && now >= hold_until))) {
                    phase = PH_CLOSE;
                    phase_deadline = now + 10000000000ull;
                    close_all();
                }
                break;
            }
            if (phase == PH_DRAIN && (inflight_total() == 0 || now >= phase_deadline)) {
                if (inflight_total()) {
                    note_error("%ld echoes missing after the run", inflight_total());
                }
                phase = PH_CLOSE;
                phase_deadline = now + 5000000000ull;
                close_all();
            }
            if (now - last_sweep >= 100000000u) {
                /* Close handshakes the server does not finish. */
                last_sweep = now;
                for (int i = 0; i < nconns; i++) {
                    if (conns[i].fd >= 0 && conns[i].state == CS_CLOSING
                        && now >= conns[i].deadline) {
                        st.unclean++;
                        conn_end(&conns[i], 1);
                    }
                }
            }
            if (phase == PH_CLOSE && (live == 0 || now >= phase_deadline)) {
                break;
            }
            if (got_signal && phase != PH_HOLD && phase != PH_CLOSE) {
                note_error("interrupted");
                phase = PH_CLOSE;
                phase_deadline = now + 2000000000ull;
                close_all();
            }
            /* Stalls: the run must end even when a server stops answering. */
            if (phase != PH_HOLD && phase != PH_CLOSE
                && now - last_progress > (uint64_t)(opt.stall * 1e9)) {
                note_error("stalled: nothing for %.0f s (%ld connections open, %ld live)",
                           opt.stall, open_count, live);
                if (opt.mode == M_IDLE && phase == PH_OPENING) {
                    /* Report what was reached. */
                    for (int i = 0; i < nconns; i++) {
                        if (conns[i].fd >= 0 && !conns[i].counted) {
                            conn_end(&conns[i], 0);
                        }
                    }
                    stop_opening = 1;
                    last_progress = now;
                    continue;
                }
                phase = PH_CLOSE;
                phase_deadline = now + 2000000000ull;
                close_all();
            }
            if ((opt.mode == M_RTT || opt.mode == M_THROUGHPUT)
                && (phase == PH_OPENING || phase == PH_RUN) && st.errors) {
                /* A connection of the fixed set failed: the figures would
                 * not mean what they say. */
                phase = PH_CLOSE;
                phase_deadline = now + 2000000000ull;
                close_all();
            }
            if (opt.mode == M_IDLE) {
                /* Progress in the idle mode is a session opened. */
                static uint64_t seen;
                if (st.sessions_ok != seen) {
                    seen = st.sessions_ok;
                    last_progress = now;
                }
            }
        }
    }
    if (opt.mode != M_IDLE) {
        print_json();
    }
    else {
        fprintf(stderr, "wsload idle: %" PRIu64 " sessions held, %" PRIu64
                " dropped by the server while held\n", st.sessions_ok, st.dropped);
    }
    if (st.mismatches) {
        return 1;
    }
    if (opt.mode == M_IDLE) {
        return st.dropped ? 1 : 0;
    }
    return st.errors ? 1 : 0;
}
