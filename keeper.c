/* keeper.c -- the per-session process: script pipes, WebSocket codec,
 * bounded buffers, attach handling and the end of a session. */

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpd.h"
#include "http_log.h"
#include "apr_portable.h"
#include "apr_time.h"

#include "ipc.h"
#include "ipc_reader.h"
#include "keeper.h"
#include "bytebuf.h"
#include "exit_status.h"
#include "flow.h"
#include "msg_format.h"
#include "pool.h"
#include "sendq.h"
#include "sse.h"
#include "ws_codec.h"
#include "ws_handshake.h"
#include "wsv1.h"

APLOG_USE_MODULE(websession);

#define READ_CHUNK      65536
#define SPAWN_MAX_BODY  (1024 * 1024)
#define LINGER_SECONDS  1
#define CLOSE_SECONDS   5       /* a client that reads nothing cannot hold a close */
#define ACK_EVERY       16      /* websession.v1: acknowledge after this many messages */
#define ACK_DELAY_MS    20      /* ... or this long after the first unacknowledged one */
#define FAIL_GRACE_MS   250     /* after a client's protocol error, the script's answers
                                 * to its earlier messages still go out this long */
#define ATTACH_TIMEOUT_MS 3000  /* an IPC message must be whole within this */
#define KEEPER_MAX_PENDING 8    /* IPC connections read at once; a ninth drops the oldest */
#define POLL_WAIT_SECONDS 25    /* a long poll with nothing to say ends then */
#define HTTP_OUT_HIGH   65536   /* encode no more events while this much waits */
#define LINES_BINARY    "binary messages need WebSessionMessages framed"

/* A connection to the keeper's socket, read as its bytes come (the keeper
 * never waits on one): a worker's HELLO, then its ATTACH or POST; or the
 * spawner's LOGFD.  Each message must be whole within ATTACH_TIMEOUT_MS. */
typedef enum {
    PEND_FREE = 0,
    PEND_GREETING,              /* HELLO or LOGFD expected */
    PEND_REQUEST                /* accepted: ATTACH or POST expected */
} pend_state;

typedef struct {
    pend_state state;
    int fd;
    int passed;                 /* a descriptor that came with the message, or -1 */
    apr_time_t deadline;
    ipc_reader rd;
} pending_conn;

/* One session's state.  A keeper serves one session after another (pool.h):
 * what a field holds beyond the struct (descriptor, memory) is released in
 * session_free. */
typedef struct {
    const keeper_env *env;
    ipc_spawn cfg;
    char fp[2 * WS_PUBID_LEN + 1];
    apr_interval_time_t resume_timeout;
    int listen_fd;
    pending_conn pend[KEEPER_MAX_PENDING];

    /* script */
    pid_t script_pid;
    int sin, sout, serr;
    msg_reader *reader;
    int reaped;
    int wait_status;
    int stdout_eof;
    char errline[2048];
    size_t errlen;

    /* client */
    int cfd;
    ws_parser *parser;
    int input_done;             /* no more frames are read from this client */
    int close_queued;           /* our close frame is queued (sendq final) */
    int lingering;              /* close flushed, write side shut, draining */
    apr_time_t close_deadline;  /* drop the client if the close is not out by then */
    apr_time_t linger_until;
    apr_time_t detached_since;
    sendq out;                  /* frames to the client */
    bytebuf to_script;
    flow_cfg flow;              /* when to read and acknowledge (flow.h) */
    apr_time_t last_rx;         /* when the client last sent anything */
    apr_time_t fail_at;         /* a protocol error's close is queued then (0: none) */
    unsigned fail_code;
    const char *fail_reason;    /* static text, from the codec */
    apr_time_t next_ping;

    /* websession.v1 (cfg.protocol) */
    int v1;
    int awaiting_r;             /* the client's resume point is not known yet */
    int introduced;             /* the client was told the session id */
    uint64_t rx_count;          /* data messages received from the client */
    uint64_t rx_acked;          /* the last count we acknowledged */
    apr_time_t ack_at;          /* when to acknowledge, 0 if nothing is due */

    /* the HTTP fallback (docs/PROTOCOL.md): the attached connection is a
     * response body of events instead of a WebSocket */
    unsigned transport;         /* 0 (WebSocket), IPC_ATTACH_SSE or _POLL */
    int poll_open;              /* this poll may end after the R alone */
    int poll_news;              /* it carried a message besides R */
    int poll_answered;          /* its body is complete */
    int peer_eof;               /* the client ended the connection in order */
    int in_post;                /* handling a POST: a close it causes must
                                 * still reach a later down request */
    apr_time_t poll_until;      /* a poll with nothing to say ends then */
    bytebuf http_out;           /* events encoded, not yet written */

    /* the end */
    int over;                   /* no client will be served any more */
    int stopping;               /* httpd is going away */
    int finish_noted;           /* the script's end was reported */
    int end_phase;              /* 0 none, 1 EOF sent, 2 TERM sent, 3 KILL sent */
    apr_time_t end_deadline;
    int life_fd;                /* lifeline, -1 once it reported EOF */
    int parent_fd;              /* pidfd of httpd's parent, -1 once it fired */
} keeper;

static int sig_pipe[2] = { -1, -1 };

/* ---- small helpers ----------------------------------------------------- */

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0) {
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
}

static void on_signal(int sig)
{
    int e = errno;
    unsigned char c = (unsigned char)sig;

    if (write(sig_pipe[1], &c, 1) < 0) {
        /* the pipe is full: a wake-up is already pending */
    }
    errno = e;
}

void keeper_adopt_log(server_rec *s, int fd)
{
    apr_os_file_t old = -1;
    struct stat a, b;

    if (!s->error_log || apr_os_file_get(&old, s->error_log) != APR_SUCCESS || old < 0) {
        close(fd);
        return;
    }
    if (old != STDERR_FILENO && fstat(STDERR_FILENO, &a) == 0 && fstat(old, &b) == 0
        && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        dup2(fd, STDERR_FILENO);
    }
    if (fd != old) {
        dup2(fd, old);
        close(fd);
    }
}

/* ---- frames to the client --------------------------------------------- */

/* A message from the script; websession.v1 prefixes it with its type. */
static void queue_data(keeper *k, int binary, const unsigned char *data, size_t len)
{
    unsigned char hdr[WS_MAX_HEADER];
    size_t plen = k->v1 ? 1 : 0;
    size_t h = ws_frame_header(hdr, 1, binary ? WS_OP_BINARY : WS_OP_TEXT, len + plen, NULL);

    sendq_data(&k->out, hdr, h, (const unsigned char *)"D", plen, data, len);
}

/* A control frame (pong), or a websession.v1 control message (text). */
static void queue_ctl(keeper *k, int opcode, const void *data, size_t len)
{
    unsigned char f[WS_MAX_HEADER + WS_MAX_CONTROL];
    size_t h = ws_frame_header(f, 1, opcode, len, NULL);

    memcpy(f + h, data, len);
    sendq_ctl(&k->out, f, h + len);
}

static void queue_v1(keeper *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void queue_v1(keeper *k, const char *fmt, ...)
{
    char msg[WS_MAX_CONTROL + 1];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    queue_ctl(k, WS_OP_TEXT, msg, n < (int)sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

/* The close frame goes after the data already queued.  While a v1
 * connection waits for the client's resume point no data can go, so a
 * close for any reason but the script's end goes at once instead. */
static void queue_close_how(keeper *k, unsigned code, const char *reason, int after_data)
{
    unsigned char pl[WS_MAX_CONTROL];
    size_t n = 0;

    if (k->close_queued) {
        return;
    }
    if (code != WS_CLOSE_NO_STATUS) {
        n = ws_close_payload(pl, code, reason);
    }
    {
        unsigned char f[WS_MAX_HEADER + WS_MAX_CONTROL];
        size_t h = ws_frame_header(f, 1, WS_OP_CLOSE, n, NULL);

        memcpy(f + h, pl, n);
        if (after_data || !k->awaiting_r) {
            sendq_final(&k->out, f, h + n);
        }
        else {
            sendq_close_now(&k->out, f, h + n);
        }
    }
    k->close_queued = 1;
    k->close_deadline = apr_time_now() + apr_time_from_sec(CLOSE_SECONDS);
}

static void queue_close(keeper *k, unsigned code, const char *reason)
{
    queue_close_how(k, code, reason, 0);
}

/* ---- the end of a session --------------------------------------------- */

static void begin_end(keeper *k, const char *why)
{
    if (k->over) {
        return;
    }
    k->over = 1;
    k->end_deadline = apr_time_now() + apr_time_from_sec(KEEPER_TERM_GRACE);
    ws_table_mark_closing(k->env->table, k->cfg.slot, k->cfg.gen);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                 "WS02001: [%s] session ending: %s", k->fp, why);
}

/* A close the client caused is queued.  On a WebSocket it goes out on the
 * connection that caused it, and the session ends now.  A POST has no down
 * side of its own: the session ends once a down request has carried the
 * close (client_drop), or at the resume timeout. */
static void end_after_close(keeper *k, const char *why)
{
    if (k->in_post) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02052: [%s] session closing once the client has the close: %s",
                     k->fp, why);
        return;
    }
    begin_end(k, why);
}

static void signal_script(keeper *k, int sig)
{
    if (k->script_pid > 0) {
        kill(-k->script_pid, sig);      /* the whole process group */
        kill(k->script_pid, sig);
        if (sig == SIGTERM) {
            /* A stopped process sees SIGTERM only once it runs again, and
             * in the keeper's session the group is not orphaned, so SIGTSTP
             * does stop it. */
            kill(-k->script_pid, SIGCONT);
            kill(k->script_pid, SIGCONT);
        }
    }
}

/* Drive EOF -> SIGTERM -> SIGKILL once the session is over. */
static void advance_end(keeper *k, apr_time_t now)
{
    apr_interval_time_t grace = apr_time_from_sec(k->stopping ? KEEPER_STOP_GRACE
                                                              : KEEPER_TERM_GRACE);

    if (!k->over || k->reaped) {
        return;
    }
    if (k->end_phase == 0) {
        /* Messages the client sent before leaving still reach the script,
         * unless it does not read them within the grace period. */
        if (bytebuf_pending(&k->to_script) && !k->stopping && k->sin >= 0
            && now < k->end_deadline) {
            return;
        }
        if (k->sin >= 0) {
            close(k->sin);
            k->sin = -1;
        }
        k->end_phase = 1;
        k->end_deadline = now + grace;
    }
    else if (now >= k->end_deadline && k->end_phase == 1) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02002: [%s] script still running after EOF, sending SIGTERM", k->fp);
        signal_script(k, SIGTERM);
        k->end_phase = 2;
        k->end_deadline = now + grace;
    }
    else if (now >= k->end_deadline && k->end_phase == 2) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, k->env->s,
                     "WS02003: [%s] script ignored SIGTERM, sending SIGKILL", k->fp);
        signal_script(k, SIGKILL);
        k->end_phase = 3;
        k->end_deadline = now + grace;
    }
}

/* ---- the client connection -------------------------------------------- */

static void client_drop(keeper *k, const char *why)
{
    /* An HTTP fallback client has no close frame to answer with: its
     * orderly end of the connection after the whole close event is the
     * closest to a receipt there is. */
    int delivered = k->transport && k->peer_eof && k->close_queued
                    && sendq_final_done(&k->out) && !bytebuf_pending(&k->http_out);

    if (k->cfd < 0) {
        return;
    }
    close(k->cfd);
    k->cfd = -1;
    k->lingering = 0;
    k->peer_eof = 0;
    bytebuf_clear(&k->http_out);
    sendq_detach(&k->out);
    if (delivered || (k->close_queued && sendq_final_done(&k->out))) {
        /* The close handshake is complete: nobody is coming back. */
        begin_end(k, "connection closed");
    }
    if (!k->over) {
        k->detached_since = apr_time_now();
        ws_table_mark_detached(k->env->table, k->cfg.slot, k->cfg.gen, k->detached_since);
        ap_log_error(APLOG_MARK, k->poll_answered ? APLOG_DEBUG : APLOG_INFO, 0, k->env->s,
                     "WS02010: [%s] client detached (%s); waiting up to %" APR_TIME_T_FMT
                     " s for it to return", k->fp, why,
                     apr_time_sec(k->resume_timeout));
    }
}

/* A client message for the script.  -1 if the session must close. */
static int deliver(keeper *k, int binary, const unsigned char *data, size_t len)
{
    char hdr[MSG_MAX_HEADER];
    size_t h;

    if (k->cfg.mode == MSG_LINES && binary) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02011: [%s] binary message refused in lines mode", k->fp);
        queue_close(k, WS_CLOSE_UNSUPPORTED, LINES_BINARY);
        end_after_close(k, "client sent a binary message in lines mode");
        return -1;
    }
    h = msg_encode_header(k->cfg.mode, binary, len, hdr);
    bytebuf_append(&k->to_script, hdr, h);
    bytebuf_append(&k->to_script, data, len);
    bytebuf_append(&k->to_script, MSG_TRAILER, 1);
    return 0;
}

static int v1_fail(keeper *k, unsigned code, const char *why)
{
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                 "WS02018: [%s] websession.v1: closing with %u: %s", k->fp, code, why);
    queue_close(k, code, why);
    end_after_close(k, why);
    return -1;
}

/* One websession.v1 message from the client. */
static int v1_message(keeper *k, const ws_event *ev)
{
    wsv1_msg m;

    switch (wsv1_parse(ev->data, ev->len, ev->binary, &m)) {
    case WSV1_DATA:
        if (k->awaiting_r) {
            return v1_fail(k, WS_CLOSE_PROTOCOL, "websession.v1: data before the resume point");
        }
        k->rx_count++;
        if (k->rx_count - k->rx_acked >= ACK_EVERY) {
            k->ack_at = 1;                  /* now */
        }
        else if (!k->ack_at) {
            k->ack_at = apr_time_now() + apr_time_from_msec(ACK_DELAY_MS);
        }
        return deliver(k, ev->binary, m.payload, m.len);
    case WSV1_RESUME:
        if (!k->awaiting_r) {
            return v1_fail(k, WS_CLOSE_PROTOCOL, "websession.v1: a second resume point");
        }
        if (m.has_window) {
            return v1_fail(k, WS_CLOSE_PROTOCOL,
                           "websession.v1: a client's R carries no window");
        }
        if (sendq_resume(&k->out, m.n) < 0) {
            return v1_fail(k, WSV1_CLOSE_RESUME,
                           "websession.v1: cannot resume from that point");
        }
        k->awaiting_r = 0;
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, k->env->s,
                     "WS02019: [%s] client has %" PRIu64 " messages; resending from there",
                     k->fp, m.n);
        return 0;
    case WSV1_ACK:
        /* A stale (lower) acknowledgement is ignored, as in a POST. */
        if (m.n > k->out.acked && sendq_ack(&k->out, m.n) < 0) {
            return v1_fail(k, WS_CLOSE_PROTOCOL,
                           "websession.v1: acknowledgement of messages never sent");
        }
        return 0;
    case WSV1_PING:
    case WSV1_ID:
        return v1_fail(k, WS_CLOSE_PROTOCOL, "websession.v1: server message from a client");
    default:
        return v1_fail(k, WS_CLOSE_PROTOCOL, m.error);
    }
}

/* A v1 message after our close was queued: only R and A are acted on. */
static void v1_while_closing(keeper *k, const ws_event *ev)
{
    wsv1_msg m;

    switch (wsv1_parse(ev->data, ev->len, ev->binary, &m)) {
    case WSV1_RESUME:
        if (k->awaiting_r && sendq_resume(&k->out, m.n) == 0) {
            k->awaiting_r = 0;
        }
        else if (k->awaiting_r) {
            /* The data before the close cannot be served: close now. */
            unsigned char f[WS_MAX_HEADER + WS_MAX_CONTROL], pl[WS_MAX_CONTROL];
            size_t n = ws_close_payload(pl, WSV1_CLOSE_RESUME,
                                        "websession.v1: cannot resume from that point");
            size_t h = ws_frame_header(f, 1, WS_OP_CLOSE, n, NULL);

            memcpy(f + h, pl, n);
            sendq_close_now(&k->out, f, h + n);
        }
        break;
    case WSV1_ACK:
        sendq_ack(&k->out, m.n);
        break;
    default:
        break;
    }
}

static size_t client_output(keeper *k, const unsigned char **p);
static void client_wrote(keeper *k, size_t n);

/* Write what the WebSocket client's socket takes now, without waiting and
 * without acting on an error (the loop sees it next).  Pongs go out as
 * their pings are read, so a client that reads gets one for each; only for
 * one that does not do they pile up, and sendq bounds them. */
static void send_now(keeper *k)
{
    const unsigned char *p;
    size_t len;

    while (k->cfd >= 0 && !k->transport && !k->lingering
           && (len = client_output(k, &p)) > 0) {
        ssize_t n = send(k->cfd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n <= 0) {
            return;
        }
        client_wrote(k, (size_t)n);
    }
}

static void client_feed(keeper *k, const unsigned char *p, size_t n)
{
    while (!k->input_done) {
        ws_event ev;
        size_t used = 0;
        ws_event_type t = ws_parser_feed(k->parser, p, n, &used, &ev);

        p += used;
        n -= used;
        switch (t) {
        case WS_EV_NEED_MORE:
            return;
        case WS_EV_MESSAGE:
            if (k->close_queued) {
                /* We are closing: data no longer counts, but a v1 client's
                 * R and A do, since the close waits behind the data they
                 * release (the script's exit status after a resume). */
                if (k->v1) {
                    v1_while_closing(k, &ev);
                }
                break;
            }
            if ((k->v1 ? v1_message(k, &ev) : deliver(k, ev.binary, ev.data, ev.len)) < 0) {
                k->input_done = 1;
                return;
            }
            break;
        case WS_EV_PING:
            if (!k->close_queued) {
                queue_ctl(k, WS_OP_PONG, ev.data, ev.len);
                send_now(k);
            }
            break;
        case WS_EV_PONG:
            break;
        case WS_EV_CLOSE:
            if (k->v1 && ev.code == WSV1_CLOSE_DETACH && !k->close_queued) {
                /* This connection only: the session waits for a resume.
                 * No close frame back: it could land inside a data frame,
                 * and the client has given up on this connection. */
                client_drop(k, "client left this connection (4100)");
                return;
            }
            if (k->close_queued) {
                begin_end(k, "close handshake complete");
            }
            else {
                queue_close(k, ev.code, "");    /* 1005: an empty close, as received */
                begin_end(k, "client closed the session");
            }
            k->input_done = 1;
            return;
        case WS_EV_ERROR:
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                         "WS02012: [%s] client protocol error, closing with %u: %s",
                         k->fp, ev.code, ev.reason);
            /* Nothing more is read; what the script writes in answer to
             * the messages before the error goes out first (fail_due). */
            k->fail_at = apr_time_now() + apr_time_from_msec(FAIL_GRACE_MS);
            k->fail_code = ev.code;
            k->fail_reason = ev.reason;
            k->input_done = 1;
            return;
        }
    }
}

/* The HTTP fallback's resume point came in a request header: act on it as
 * if the client had sent its R on a WebSocket. */
static void http_resume(keeper *k, uint64_t received)
{
    char r[32];
    ws_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = WS_EV_MESSAGE;
    ev.data = (const unsigned char *)r;
    ev.len = (size_t)snprintf(r, sizeof(r), "R%" PRIu64, received);
    if (k->close_queued) {
        v1_while_closing(k, &ev);
    }
    else {
        v1_message(k, &ev);
    }
}

static void client_attach(keeper *k, int fd, int relay, const ipc_attach *a,
                          const unsigned char *pre, size_t n)
{
    int one = 1;

    if (k->cfd >= 0) {
        /* A poll answered and lingering is routine, not news. */
        ap_log_error(APLOG_MARK, k->poll_answered ? APLOG_DEBUG : APLOG_INFO, 0, k->env->s,
                     "WS02013: [%s] new attach evicts the previous connection", k->fp);
        close(k->cfd);
        k->cfd = -1;
        sendq_detach(&k->out);
    }
    set_nonblock(fd);
    if (!relay) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    k->cfd = fd;
    k->lingering = 0;
    k->peer_eof = 0;
    k->input_done = 0;
    k->transport = a->flags & IPC_ATTACH_HTTP;
    k->poll_open = (a->flags & IPC_ATTACH_OPEN) != 0;
    k->poll_news = 0;
    k->poll_answered = 0;
    bytebuf_clear(&k->http_out);
    if (k->transport) {
        /* The request is read; what else the client sends is not frames. */
        k->input_done = 1;
        k->poll_until = apr_time_now() + apr_time_from_sec(POLL_WAIT_SECONDS);
        sse_comment(&k->http_out, WSV1_PROTOCOL);
    }
    if (k->close_queued) {
        /* a close queued while detached: the deadline starts now */
        k->close_deadline = apr_time_now() + apr_time_from_sec(CLOSE_SECONDS);
    }
    ws_parser_destroy(k->parser);
    k->parser = ws_parser_create(k->cfg.max_message, 1);
    k->detached_since = 0;
    k->last_rx = apr_time_now();
    k->next_ping = k->last_rx + apr_time_from_msec(k->cfg.ping_ms);
    ws_table_mark_attached(k->env->table, k->cfg.slot, k->cfg.gen, k->last_rx);
    if (k->v1) {
        /* Say where we stand; send nothing else until the client has. */
        sendq_hold(&k->out);
        k->awaiting_r = 1;
        if (!k->introduced) {
            char id[WS_ID_LEN + 1];

            ws_id_encode(k->cfg.secret, id);
            queue_v1(k, "I%s", id);
            k->introduced = 1;
        }
        queue_v1(k, "R%" PRIu64 " %u", k->rx_count, (unsigned)k->cfg.buffer);
        k->rx_acked = k->rx_count;
        k->ack_at = 0;
    }
    if (k->transport) {
        http_resume(k, a->received);
    }
    else if (n) {
        client_feed(k, pre, n);
    }
}

static void send_reply(int fd, uint32_t status, const char *msg, uint64_t count)
{
    ipc_reply r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.keeper_pid = (int32_t)getpid();
    r.count = count;
    snprintf(r.message, sizeof(r.message), "%s", msg ? msg : "");
    ipc_send_msg(fd, IPC_REPLY, &r, sizeof(r), -1);
}

/* A record of a POST broke websession.v1: the session closes (1002). */
static uint32_t post_fail(keeper *k, const char *why, const char **out)
{
    v1_fail(k, WS_CLOSE_PROTOCOL, why);     /* (in_post: ends once delivered) */
    *out = why;
    return IPC_ERR_PROTOCOL;
}

/* One record of a POST.  Returns 1 to go on with the next, 0 to stop
 * taking records (the client's close), or -1 with *status.  Once the queue
 * toward the script is full (*full), data and close records are left for
 * the client to send again, but acknowledgements are still taken: they
 * free the queue toward the client, which is what lets the script go on. */
static int take_record(keeper *k, const msg_event *ev, uint64_t *seq, int *full,
                       uint32_t *status, const char **why)
{
    wsv1_msg m;

    switch (wsv1_parse(ev->data, ev->len, ev->binary, &m)) {
    case WSV1_DATA: {
        uint64_t s = (*seq)++;

        if (k->close_queued || s <= k->rx_count || *full) {
            return 1;       /* had it already, closing (dropped), or sent again later */
        }
        if (s > k->rx_count + 1) {
            *status = IPC_ERR_GAP;
            *why = "messages are missing before this one";
            return -1;
        }
        if (!flow_may_ack(&k->flow, bytebuf_pending(&k->to_script))) {
            *full = 1;                  /* full: the client sends the rest later */
            return 1;
        }
        k->rx_count++;
        if (deliver(k, ev->binary, m.payload, m.len) < 0) {
            *status = IPC_ERR_PROTOCOL;
            *why = LINES_BINARY;
            return -1;
        }
        return 1;
    }
    case WSV1_ACK:
        if (m.n > k->out.acked && sendq_ack(&k->out, m.n) < 0) {
            *status = post_fail(k, "websession.v1: acknowledgement of messages never sent",
                                why);
            return -1;
        }
        return 1;
    case WSV1_CLOSE:
        if (*full) {
            return 1;                   /* after data not taken: comes again */
        }
        /* The session ends once the close event has gone down. */
        if (!k->close_queued) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                         "WS02051: [%s] client closed the session (%" PRIu64 ")",
                         k->fp, m.n);
            queue_close(k, (unsigned)m.n, "");
        }
        return 0;
    case WSV1_BAD:
        *status = post_fail(k, m.error, why);
        return -1;
    default:
        *status = post_fail(k, "websession.v1: a POST carries D, A and C messages only", why);
        return -1;
    }
}

/* An HTTP fallback POST (after a HELLO): take its records, answer with the
 * count of client data messages. */
static void handle_post(keeper *k, int fd, const unsigned char *msg, size_t len)
{
    size_t max_record = k->cfg.max_message + 1 > 256 ? k->cfg.max_message + 1 : 256;
    uint32_t status = IPC_OK;
    const char *why = "";
    const unsigned char *p = msg + sizeof(ipc_post);
    size_t n = len - sizeof(ipc_post);      /* the reader's rules: len >= that */
    msg_reader *rd;
    ipc_post hdr;
    int full = 0;

    memcpy(&hdr, msg, sizeof(hdr));
    rd = msg_reader_create(MSG_FRAMED, max_record);
    k->in_post = 1;
    for (;;) {
        msg_event ev;
        size_t used = 0;
        msg_event_type t;
        int go;

        if (n > 0) {
            t = msg_reader_feed(rd, p, n, &used, &ev);
            p += used;
            n -= used;
            if (t == MSG_EV_NEED_MORE) {
                continue;
            }
        }
        else if ((t = msg_reader_finish(rd, &ev)) == MSG_EV_NEED_MORE) {
            break;
        }
        if (t == MSG_EV_ERROR) {
            status = post_fail(k, ev.reason, &why);
            break;
        }
        go = take_record(k, &ev, &hdr.first_seq, &full, &status, &why);
        if (go <= 0) {
            break;
        }
    }
    k->in_post = 0;
    msg_reader_destroy(rd);
    k->last_rx = apr_time_now();
    send_reply(fd, status, why, k->rx_count);
}

/* The refusal of an attach with the other protocol, on the client's
 * connection (or the relay). */
static void refuse_mismatch(keeper *k, int out, uint32_t flags)
{
    unsigned char f[WS_MAX_HEADER + WS_MAX_CONTROL], pl[WS_MAX_CONTROL];
    size_t n = ws_close_payload(pl, WSV1_CLOSE_MISMATCH,
                                "resume with the protocol the session started with");
    size_t h = ws_frame_header(f, 1, WS_OP_CLOSE, n, NULL);
    bytebuf ev = { 0 };
    sse_frame sf;

    memcpy(f + h, pl, n);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                 "WS02047: [%s] refused a resume with the other protocol", k->fp);
    if (flags & IPC_ATTACH_HTTP) {
        sse_comment(&ev, WSV1_PROTOCOL);
        sse_frame_whole(f, h + n, &sf);
        sse_encode(&ev, &sf);
    }
    else {
        bytebuf_append(&ev, f, h + n);
    }
    if (send(out, ev.data + ev.off, bytebuf_pending(&ev), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client is gone anyway */
    }
    bytebuf_free(&ev);
}

/* A whole IPC_ATTACH on fd (msg, len; passed: the descriptor that came
 * with it, or -1): take the client it carries.  Returns 1 when fd itself
 * became the client (a relay), else 0; either way passed is consumed. */
static int take_attach(keeper *k, int fd, const unsigned char *msg, size_t len, int passed)
{
    ipc_attach a;
    const unsigned char *pre = msg + sizeof(a);

    memcpy(&a, msg, sizeof(a));     /* the reader's rules: len >= sizeof(a) */
    if (len != sizeof(a) + a.preread_len) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02014: [%s] bad attach request from httpd", k->fp);
        goto fail;
    }
    if (!(a.flags & IPC_ATTACH_V1) != !k->v1) {
        /* The worker answered 101 (or 200) already: tell the client in band. */
        refuse_mismatch(k, passed >= 0 ? passed : fd, a.flags);
        goto fail;
    }
    if ((a.flags & IPC_ATTACH_HTTP) == IPC_ATTACH_HTTP
        || ((a.flags & IPC_ATTACH_HTTP) && !(a.flags & IPC_ATTACH_V1))
        || ((a.flags & IPC_ATTACH_OPEN) && !(a.flags & IPC_ATTACH_POLL))) {
        goto inconsistent;
    }
    switch (a.flags & (IPC_ATTACH_FD | IPC_ATTACH_RELAY)) {
    case IPC_ATTACH_FD:
        if (passed < 0) {
            break;
        }
        client_attach(k, passed, 0, &a, pre, a.preread_len);
        return 0;
    case IPC_ATTACH_RELAY:
        if (passed >= 0) {
            break;
        }
        ipc_set_timeouts(fd, 0);
        client_attach(k, fd, 1, &a, pre, a.preread_len);
        return 1;
    }
inconsistent:
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                 "WS02015: [%s] attach request with flags %u is inconsistent", k->fp, a.flags);
fail:
    if (passed >= 0) {
        close(passed);
    }
    return 0;
}

static void read_client(keeper *k);

/* ---- connections to the keeper's socket -------------------------------- */

static const ipcr_rule greeting_rules[] = {
    { IPC_HELLO, WS_SECRET_LEN, WS_SECRET_LEN },
    { IPC_LOGFD, 0, 0 },
};

static void pend_close(pending_conn *pc)
{
    if (pc->fd >= 0) {
        close(pc->fd);
    }
    if (pc->passed >= 0) {
        close(pc->passed);
    }
    ipcr_free(&pc->rd);
    pc->fd = pc->passed = -1;
    pc->state = PEND_FREE;
}

static void pend_close_all(keeper *k)
{
    for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
        if (k->pend[i].state != PEND_FREE) {
            pend_close(&k->pend[i]);
        }
    }
}

/* The next message of pc is expected within ATTACH_TIMEOUT_MS. */
static void pend_expect(pending_conn *pc, pend_state state, const ipcr_rule *rules,
                        size_t nrules)
{
    pc->state = state;
    pc->deadline = apr_time_now() + apr_time_from_msec(ATTACH_TIMEOUT_MS);
    ipcr_expect(&pc->rd, rules, nrules);
}

/* A connection on our socket: from now on read as its bytes come. */
static void pend_accept(keeper *k)
{
    int fd = accept4(k->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    pending_conn *pc = NULL;

    if (fd < 0) {
        return;
    }
    if (!ipc_peer_allowed(fd, k->env->uid)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02016: [%s] refused an attach from a process of another user", k->fp);
        close(fd);
        return;
    }
    /* A free slot, else the oldest connection that has not shown the
     * session id: a worker past its HELLO (or the spawn connection, whose
     * ATTACH is due) is never pushed out by peers that say nothing. */
    for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
        pending_conn *c = &k->pend[i];

        if (c->state == PEND_FREE) {
            pc = c;
            break;
        }
        if (c->state == PEND_GREETING && (!pc || c->deadline < pc->deadline)) {
            pc = c;
        }
    }
    if (!pc) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02058: [%s] %d accepted requests under way on the session's socket:"
                     " refused another connection", k->fp, KEEPER_MAX_PENDING);
        close(fd);
        return;
    }
    if (pc->state != PEND_FREE) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02055: [%s] %d connections to the session's socket at once:"
                     " dropped the oldest that had not shown the session id",
                     k->fp, KEEPER_MAX_PENDING);
        pend_close(pc);
    }
    ipc_set_timeouts(fd, ATTACH_TIMEOUT_MS);        /* our replies */
    pc->fd = fd;
    pc->passed = -1;
    ipcr_init(&pc->rd);
    pend_expect(pc, PEND_GREETING, greeting_rules, 2);
}

/* A whole HELLO or LOGFD. */
static void pend_greeting(keeper *k, pending_conn *pc)
{
    if (pc->rd.h.kind == IPC_LOGFD) {
        /* From the spawner, our parent, after a restart.  The uid check
         * lets any process of httpd's User this far: it must not redirect
         * our log (and every script's stderr) to a file of its own. */
        if (pc->passed >= 0 && ipc_peer_is(pc->fd, getppid())) {
            keeper_adopt_log(k->env->s, pc->passed);
            pc->passed = -1;
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                         "WS02054: [%s] refused a log descriptor that did not come from the spawner",
                         k->fp);
        }
        pend_close(pc);
        return;
    }
    if (!ws_ct_equal(pc->rd.body, k->cfg.secret, WS_SECRET_LEN)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02017: [%s] refused an attach that did not present the session id",
                     k->fp);
        pend_close(pc);
        return;
    }
    if (k->cfd >= 0 && !k->over) {
        /* What the current connection has delivered comes first: a close
         * frame sent before this attach ends the session before it. */
        read_client(k);
    }
    if (k->over) {
        send_reply(pc->fd, IPC_ERR_CLOSING, "session is ending", 0);
        pend_close(pc);
        return;
    }
    send_reply(pc->fd, IPC_OK, "", 0);
    {
        const ipcr_rule request_rules[] = {
            { IPC_ATTACH, sizeof(ipc_attach), sizeof(ipc_attach) + IPC_MAX_PREREAD },
            { IPC_POST, sizeof(ipc_post),
              sizeof(ipc_post) + IPC_MAX_POST(k->cfg.buffer, k->cfg.max_message) },
        };

        if (pc->passed >= 0) {
            close(pc->passed);          /* nothing travels with a HELLO */
            pc->passed = -1;
        }
        pend_expect(pc, PEND_REQUEST, request_rules, 2);
    }
}

/* A whole ATTACH or POST, after an accepted HELLO. */
static void pend_request(keeper *k, pending_conn *pc)
{
    if (pc->rd.h.kind == IPC_POST && pc->passed < 0) {
        handle_post(k, pc->fd, pc->rd.body, pc->rd.h.len);
    }
    else if (pc->rd.h.kind == IPC_ATTACH) {
        int passed = pc->passed;

        pc->passed = -1;
        if (take_attach(k, pc->fd, pc->rd.body, pc->rd.h.len, passed)) {
            pc->fd = -1;                /* it is the client now */
        }
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02050: [%s] bad POST request from httpd", k->fp);
    }
    pend_close(pc);
}

/* Read what pc has sent; act on a whole message. */
static void pend_read(keeper *k, pending_conn *pc)
{
    unsigned char buf[READ_CHUNK];
    size_t need = ipcr_need(&pc->rd);
    ssize_t n = ipc_recv_some(pc->fd, buf, need < sizeof(buf) ? need : sizeof(buf),
                              &pc->passed);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
    }
    if (n <= 0) {
        pend_close(pc);                 /* gone before its message was whole */
        return;
    }
    switch (ipcr_feed(&pc->rd, buf, (size_t)n)) {
    case IPCR_MORE:
        return;
    case IPCR_ERROR:
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02057: [%s] bad request on the session's socket: %s",
                     k->fp, pc->rd.error);
        pend_close(pc);
        return;
    case IPCR_DONE:
        if (pc->state == PEND_GREETING) {
            pend_greeting(k, pc);
        }
        else {
            pend_request(k, pc);
        }
        return;
    }
}

/* A connection whose message is not whole by its deadline is dropped: a
 * silent or slow peer holds only its own slot, never the session. */
static void pend_expire(keeper *k, apr_time_t now)
{
    for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
        pending_conn *pc = &k->pend[i];

        if (pc->state != PEND_FREE && now >= pc->deadline) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                         "WS02056: [%s] a connection to the session's socket sent no whole"
                         " request within %d ms; dropped", k->fp, ATTACH_TIMEOUT_MS);
            pend_close(pc);
        }
    }
}

/* ---- the script ------------------------------------------------------- */

static void script_stdout(keeper *k, const unsigned char *p, size_t n, int eof)
{
    msg_event ev;

    for (;;) {
        size_t used = 0;
        msg_event_type t;

        if (n > 0) {
            t = msg_reader_feed(k->reader, p, n, &used, &ev);
            p += used;
            n -= used;
        }
        else if (eof) {
            t = msg_reader_finish(k->reader, &ev);
            eof = 0;
        }
        else {
            return;
        }
        if (t == MSG_EV_MESSAGE) {
            int binary = ev.binary;

            if (!binary && !ws_utf8_valid(ev.data, ev.len)) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                             "WS02020: [%s] script wrote a text message that is not UTF-8;"
                             " sent as binary", k->fp);
                binary = 1;
            }
            queue_data(k, binary, ev.data, ev.len);
        }
        else if (t == MSG_EV_ERROR) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, k->env->s,
                         "WS02021: [%s] bad output from the script: %s", k->fp, ev.reason);
            queue_close(k, WS_CLOSE_INTERNAL, ev.reason);
            begin_end(k, "script output could not be parsed");
            k->stdout_eof = 1;
            return;
        }
    }
}

static void log_stderr_lines(keeper *k, int flush)
{
    size_t start = 0;

    for (size_t i = 0; i < k->errlen; i++) {
        if (k->errline[i] == '\n') {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, k->env->s,
                         "WS02022: [%s] script stderr: %.*s", k->fp,
                         (int)(i - start), k->errline + start);
            start = i + 1;
        }
    }
    if (start == 0 && (flush || k->errlen == sizeof(k->errline)) && k->errlen) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, k->env->s,
                     "WS02022: [%s] script stderr: %.*s", k->fp,
                     (int)k->errlen, k->errline);
        start = k->errlen;
    }
    memmove(k->errline, k->errline + start, k->errlen - start);
    k->errlen -= start;
}

static void read_stderr(keeper *k)
{
    ssize_t n = read(k->serr, k->errline + k->errlen, sizeof(k->errline) - k->errlen);

    if (n > 0) {
        k->errlen += (size_t)n;
        log_stderr_lines(k, 0);
    }
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        log_stderr_lines(k, 1);
        close(k->serr);
        k->serr = -1;
    }
}

/* Reads at most `most` bytes (> 0).  Returns 1 after reading data, 0 at
 * EOF, -1 when nothing is there yet. */
static int read_stdout(keeper *k, size_t most)
{
    unsigned char buf[READ_CHUNK];
    ssize_t n;
    int again;

    if (most == 0) {
        return -1;              /* no room: read nothing, and it is not EOF */
    }
    n = read(k->sout, buf, most < sizeof(buf) ? most : sizeof(buf));
    again = n < 0 && (errno == EAGAIN || errno == EINTR);

    if (n > 0 && !k->over) {
        script_stdout(k, buf, (size_t)n, 0);
    }
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        script_stdout(k, NULL, 0, 1);
        k->stdout_eof = 1;
    }
    if (k->stdout_eof && k->sout >= 0) {
        close(k->sout);
        k->sout = -1;
    }
    return n > 0 ? 1 : again ? -1 : 0;
}

static void reap(keeper *k)
{
    int st;

    while (k->script_pid > 0 && !k->reaped) {
        pid_t p = waitpid(k->script_pid, &st, WNOHANG);

        if (p == k->script_pid) {
            k->reaped = 1;
            k->wait_status = st;
            /* Everything it wrote is in the pipe now; a descendant that
             * still holds the pipe open does not keep the session going. */
            while (k->sout >= 0) {
                if (read_stdout(k, READ_CHUNK) < 0) {
                    script_stdout(k, NULL, 0, 1);
                    close(k->sout);
                    k->sout = -1;
                }
            }
        }
        else if (p < 0 && errno == EINTR) {
            continue;
        }
        break;
    }
}

/* The script exited and its output is read: tell the client how it ended. */
static void script_finished(keeper *k)
{
    char reason[100];
    unsigned code = ws_exit_close(k->wait_status, reason, sizeof(reason));

    ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                 "WS02023: [%s] %s", k->fp, reason);
    if (!k->close_queued && !k->over) {
        queue_close_how(k, code, reason, 1);     /* after everything it wrote */
    }
}

/* Start the script: its own process group (setpgid(0, 0): the group's id is
 * the script's pid, so signal_script reaches everything it started), in the
 * keeper's session, signals at their defaults, stdin/stdout/stderr on pipes.
 * Not its own session: each session is a scheduler autogroup of its own, and
 * with both cores busy every newly started script then ran ahead of those
 * already running (docs/ARCHITECTURE.md).  posix_spawn (vfork semantics)
 * copies no page tables, returns only once the child has its group, and
 * reports an exec failure synchronously.  Returns 0, or -1 with msg filled.
 * KEEPER_SCRIPT_SETSID is for bench/run only (make SCRIPT_SETSID=1): the old
 * way, each script in a session of its own, to measure against. */
#ifdef KEEPER_SCRIPT_SETSID
#define SCRIPT_SPAWN_GROUP POSIX_SPAWN_SETSID
#else
#define SCRIPT_SPAWN_GROUP POSIX_SPAWN_SETPGROUP
#endif
static int start_script(keeper *k, char *const argv[], char *const envp[],
                        const char *cwd, char *msg, size_t msglen)
{
    int in[2], out[2], err[2];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    pid_t pid;
    int rc;

    if (pipe2(in, O_CLOEXEC) < 0) {
        snprintf(msg, msglen, "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        snprintf(msg, msglen, "pipe: %s", strerror(errno));
        return -1;              /* the keeper exits: its descriptors go with it */
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    if (cwd[0]) {
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    }
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);      /* a new group, led by the script */
    posix_spawnattr_setflags(&at, SCRIPT_SPAWN_GROUP | POSIX_SPAWN_SETSIGMASK
                                  | POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(&pid, argv[0], &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        snprintf(msg, msglen, "cannot execute %s: %s", argv[0], strerror(rc));
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return -1;
    }
    k->script_pid = pid;
    k->sin = in[1];
    k->sout = out[0];
    k->serr = err[0];
    set_nonblock(k->sin);
    set_nonblock(k->sout);
    set_nonblock(k->serr);
    return 0;
}

/* ---- set-up ------------------------------------------------------------ */

/* Split the IPC_SPAWN strings into cwd, argv and envp (pointers into body). */
static int parse_spawn(const ipc_spawn *sp, char *strings, char **cwd,
                       char ***argv, char ***envp)
{
    size_t want = 1 + (size_t)sp->nargv + sp->nenv, found = 0;
    char **list;
    char *p = strings, *end = strings + sp->strings_len;

    if (sp->nargv < 1 || sp->nargv > 4096 || sp->nenv > 65536
        || sp->strings_len == 0 || end[-1] != '\0') {
        return -1;
    }
    list = calloc(want + 2, sizeof(char *));
    if (!list) {
        return -1;
    }
    while (p < end && found < want) {
        list[found++] = p;
        p += strlen(p) + 1;
    }
    if (found != want || p != end) {
        free(list);
        return -1;
    }
    /* list: cwd, argv..., NULL, env..., NULL */
    memmove(list + 1 + sp->nargv + 1, list + 1 + sp->nargv, sp->nenv * sizeof(char *));
    list[1 + sp->nargv] = NULL;
    list[want + 1] = NULL;
    *cwd = list[0];
    *argv = list + 1;
    *envp = list + 1 + sp->nargv + 1;
    return 0;
}

/* What a session leaves in the system: the rest of its script's process
 * group, and its slot. */
static void session_leave(keeper *k)
{
    if (k->script_pid > 0) {
        kill(-k->script_pid, SIGKILL);      /* leftovers of the script's group */
    }
    ws_table_release(k->env->table, k->cfg.slot, k->cfg.gen);
}

static __attribute__((noreturn)) void keeper_exit(keeper *k, int code)
{
    session_leave(k);
    _exit(code);
}

/* What a session holds in this process: descriptors and memory. */
static void session_free(keeper *k)
{
    int *fds[] = { &k->listen_fd, &k->cfd, &k->sin, &k->sout, &k->serr };

    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    }
    pend_close_all(k);
    msg_reader_destroy(k->reader);
    k->reader = NULL;
    ws_parser_destroy(k->parser);
    k->parser = NULL;
    sendq_free(&k->out);
    bytebuf_free(&k->to_script);
    bytebuf_free(&k->http_out);
}

/* ---- the loop ---------------------------------------------------------- */

/* The end of what this connection carries: shut our side, drain theirs
 * briefly (so that the client's unread bytes cannot turn into a reset that
 * destroys what we wrote). */
static void end_output(keeper *k)
{
    shutdown(k->cfd, SHUT_WR);
    k->lingering = 1;
    k->linger_until = apr_time_now() + apr_time_from_sec(LINGER_SECONDS);
}

/* HTTP fallback: turn queued frames into events (whole frames only: the
 * queue gives a frame boundary whenever nothing is half written). */
static void encode_events(keeper *k)
{
    const unsigned char *p;
    size_t len;

    while (bytebuf_pending(&k->http_out) < HTTP_OUT_HIGH
           && (len = sendq_peek(&k->out, &p)) > 0) {
        sse_frame f;
        size_t whole = sse_frame_whole(p, len, &f);

        if (!whole) {
            break;
        }
        if (f.opcode != WS_OP_TEXT || !f.len || f.payload[0] != 'R') {
            k->poll_news = 1;
        }
        sse_encode(&k->http_out, &f);
        sendq_wrote(&k->out, whole);
    }
}

/* Bytes to write next on the client connection. */
static size_t client_output(keeper *k, const unsigned char **p)
{
    if (!k->transport) {
        return sendq_peek(&k->out, p);
    }
    if (!bytebuf_pending(&k->http_out)) {
        encode_events(k);
    }
    *p = k->http_out.data + k->http_out.off;
    return bytebuf_pending(&k->http_out);
}

static void client_wrote(keeper *k, size_t n)
{
    if (k->transport) {
        bytebuf_consume(&k->http_out, n);
    }
    else {
        sendq_wrote(&k->out, n);
    }
}

static int flush_client(keeper *k, apr_time_t now)
{
    const unsigned char *p;
    size_t len;

    while (k->cfd >= 0 && !k->lingering && (len = client_output(k, &p)) > 0) {
        ssize_t n = send(k->cfd, p, len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return 0;
            }
            client_drop(k, strerror(errno));
            return -1;
        }
        client_wrote(k, (size_t)n);
    }
    if (k->cfd < 0 || k->lingering) {
        return 0;
    }
    if (k->close_queued && sendq_final_done(&k->out)) {
        end_output(k);          /* our close frame (or event) is out */
    }
    else if (k->transport == IPC_ATTACH_POLL && !sendq_has_output(&k->out)
             && (k->poll_news || k->poll_open || now >= k->poll_until)) {
        k->poll_answered = 1;   /* a complete answer: the client polls again */
        end_output(k);
    }
    return 0;
}

static void flush_script(keeper *k)
{
    bytebuf *b = &k->to_script;

    while (k->sin >= 0 && bytebuf_pending(b)) {
        ssize_t n = write(k->sin, b->data + b->off, bytebuf_pending(b));

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            /* The script closed its stdin: what is pending cannot arrive. */
            ap_log_error(APLOG_MARK, APLOG_INFO, errno, k->env->s,
                         "WS02024: [%s] script no longer reads stdin; %lu bytes undelivered",
                         k->fp, (unsigned long)bytebuf_pending(b));
            close(k->sin);
            k->sin = -1;
            bytebuf_clear(b);
            return;
        }
        bytebuf_consume(b, (size_t)n);
    }
}

static void read_client(keeper *k)
{
    unsigned char buf[READ_CHUNK];
    ssize_t n = recv(k->cfd, buf, sizeof(buf), 0);

    if (n > 0) {
        k->last_rx = apr_time_now();
        if (!k->input_done) {
            client_feed(k, buf, (size_t)n);
        }
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    k->peer_eof = n == 0;
    client_drop(k, n == 0 ? "connection closed by peer" : strerror(errno));
}

static void handle_signals(keeper *k)
{
    unsigned char sigs[64];
    ssize_t n;

    while ((n = read(sig_pipe[0], sigs, sizeof(sigs))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (sigs[i] == SIGTERM && !k->stopping) {
                k->stopping = 1;
                queue_close(k, WS_CLOSE_GOING_AWAY, "server shutting down");
                begin_end(k, "keeper received SIGTERM");
            }
        }
    }
    reap(k);
}

/* When a connection that brought nothing since last_rx is taken as dead:
 * twice WebSessionPing and a second (PROTOCOL.md, Heartbeats). */
static apr_time_t silent_deadline(const keeper *k)
{
    return k->last_rx + 2 * apr_time_from_msec(k->cfg.ping_ms) + apr_time_from_sec(1);
}

/* Acknowledgements and heartbeats on the attached connection.  Returns -1
 * when the connection was given up as dead. */
static int heartbeat(keeper *k, apr_time_t now)
{
    apr_interval_time_t ping = apr_time_from_msec(k->cfg.ping_ms);

    if (k->cfd < 0 || k->close_queued) {
        return 0;
    }
    if (k->ack_at && now >= k->ack_at
        && flow_may_ack(&k->flow, bytebuf_pending(&k->to_script))) {
        queue_v1(k, "A%" PRIu64, k->rx_count);
        k->rx_acked = k->rx_count;
        k->ack_at = 0;
    }
    if (!ping) {
        return 0;
    }
    if (now >= silent_deadline(k)) {
        client_drop(k, "no heartbeat from the client (WebSessionPing)");
        return -1;
    }
    if (now >= k->next_ping) {
        if (k->v1) {
            queue_v1(k, "P");
        }
        else {
            queue_ctl(k, WS_OP_PING, "", 0);
        }
        k->next_ping = now + ping;
    }
    return 0;
}

/* Returns when the session is over: the script reaped and no client left
 * to serve. */
static void run(keeper *k)
{
    for (;;) {
        struct pollfd pf[8 + KEEPER_MAX_PENDING];
        int npf = 0, ix_life, ix_parent, ix_listen, ix_sig, ix_client = -1, ix_in = -1,
            ix_out = -1, ix_err = -1, timeout = -1, ix_pend[KEEPER_MAX_PENDING];
        apr_time_t now, deadline = 0;

        now = apr_time_now();
        flush_script(k);
        flush_client(k, now);

        /* The script is gone and its output read: queue the close frame
         * that carries its exit status (sent now, or on the next attach). */
        if (k->reaped && k->sout < 0 && !k->finish_noted) {
            k->finish_noted = 1;
            script_finished(k);
            continue;
        }
        if (k->over && k->reaped && (k->cfd < 0 || k->stopping)) {
            return;
        }
        if (!k->over && k->cfd < 0 && k->detached_since
            && now - k->detached_since >= k->resume_timeout) {
            begin_end(k, "client did not return within WebSessionResumeTimeout");
        }
        advance_end(k, now);
        if (k->lingering && now >= k->linger_until) {
            client_drop(k, "close handshake done");
            continue;
        }
        if (k->cfd >= 0 && k->close_queued && !k->lingering && now >= k->close_deadline) {
            client_drop(k, "client did not read the close frame");
            continue;
        }
        if (heartbeat(k, now) < 0) {
            continue;
        }
        pend_expire(k, now);
        if (k->fail_at && now >= k->fail_at) {
            k->fail_at = 0;
            queue_close(k, k->fail_code, k->fail_reason);
            begin_end(k, "client protocol error");
            continue;
        }

        pf[npf].fd = k->life_fd;
        pf[npf].events = POLLIN;
        ix_life = npf++;
        pf[npf].fd = k->parent_fd;
        pf[npf].events = POLLIN;
        ix_parent = npf++;
        pf[npf].fd = k->listen_fd;
        pf[npf].events = POLLIN;
        ix_listen = npf++;
        pf[npf].fd = sig_pipe[0];
        pf[npf].events = POLLIN;
        ix_sig = npf++;
        if (k->cfd >= 0) {
            pf[npf].fd = k->cfd;
            pf[npf].events = 0;
            if (flow_read_client(&k->flow, bytebuf_pending(&k->to_script))
                || k->input_done || k->close_queued) {
                pf[npf].events |= POLLIN;
            }
            if (sendq_has_output(&k->out) || bytebuf_pending(&k->http_out)) {
                pf[npf].events |= POLLOUT;
            }
            ix_client = npf++;
        }
        if (k->sin >= 0 && bytebuf_pending(&k->to_script)) {
            pf[npf].fd = k->sin;
            pf[npf].events = POLLOUT;
            ix_in = npf++;
        }
        if (k->sout >= 0
            && (flow_stdout_room(&k->flow, sendq_pending_bytes(&k->out)) > 0 || k->over)) {
            pf[npf].fd = k->sout;
            pf[npf].events = POLLIN;
            ix_out = npf++;
        }
        if (k->serr >= 0) {
            pf[npf].fd = k->serr;
            pf[npf].events = POLLIN;
            ix_err = npf++;
        }
        for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
            ix_pend[i] = -1;
            if (k->pend[i].state != PEND_FREE) {
                pf[npf].fd = k->pend[i].fd;
                pf[npf].events = POLLIN;
                ix_pend[i] = npf++;
                if (!deadline || k->pend[i].deadline < deadline) {
                    deadline = k->pend[i].deadline;
                }
            }
        }

        if (!k->over && k->cfd < 0 && k->detached_since) {
            deadline = k->detached_since + k->resume_timeout;
        }
        if (k->over && !k->reaped && k->end_phase) {
            deadline = deadline ? (deadline < k->end_deadline ? deadline : k->end_deadline)
                                : k->end_deadline;
        }
        if (k->lingering && (!deadline || k->linger_until < deadline)) {
            deadline = k->linger_until;
        }
        if (k->cfd >= 0 && k->close_queued && !k->lingering
            && (!deadline || k->close_deadline < deadline)) {
            deadline = k->close_deadline;
        }
        if (k->cfd >= 0 && !k->close_queued && k->cfg.ping_ms) {
            apr_time_t t = k->next_ping < silent_deadline(k) ? k->next_ping
                                                              : silent_deadline(k);

            if (!deadline || t < deadline) {
                deadline = t;
            }
        }
        if (k->cfd >= 0 && k->ack_at && flow_may_ack(&k->flow, bytebuf_pending(&k->to_script))
            && (!deadline || k->ack_at < deadline)) {
            deadline = k->ack_at;
        }
        if (k->cfd >= 0 && k->transport == IPC_ATTACH_POLL && !k->lingering
            && (!deadline || k->poll_until < deadline)) {
            deadline = k->poll_until;
        }
        if (k->fail_at && (!deadline || k->fail_at < deadline)) {
            deadline = k->fail_at;
        }
        if (k->over && !k->reaped && k->end_phase == 0) {
            timeout = 50;           /* waiting for stdin to drain */
        }
        if (deadline) {
            apr_interval_time_t d = deadline > now ? deadline - now : 0;
            int ms = (int)(d / 1000) + 1;
            timeout = timeout < 0 || ms < timeout ? ms : timeout;
        }

        if (poll(pf, (nfds_t)npf, timeout) < 0) {
            if (errno != EINTR) {
                ap_log_error(APLOG_MARK, APLOG_ERR, errno, k->env->s,
                             "WS02030: [%s] poll failed", k->fp);
                keeper_exit(k, 1);
            }
            continue;
        }
        if (pf[ix_sig].revents) {
            handle_signals(k);
        }
        if (pf[ix_life].revents || pf[ix_parent].revents) {
            close(k->life_fd);
            k->life_fd = -1;
            if (k->parent_fd >= 0) {
                close(k->parent_fd);
                k->parent_fd = -1;
            }
            if (!k->stopping) {
                k->stopping = 1;
                queue_close(k, WS_CLOSE_GOING_AWAY, "server shutting down");
                begin_end(k, "httpd is stopping");
            }
        }
        for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
            if (ix_pend[i] >= 0 && k->pend[i].state != PEND_FREE
                && pf[ix_pend[i]].fd == k->pend[i].fd && pf[ix_pend[i]].revents) {
                pend_read(k, &k->pend[i]);
            }
        }
        if (pf[ix_listen].revents & POLLIN) {
            pend_accept(k);
        }
        if (ix_client >= 0 && k->cfd >= 0 && pf[ix_client].fd == k->cfd
            && (pf[ix_client].revents & (POLLIN | POLLHUP | POLLERR))) {
            read_client(k);
        }
        if (ix_out >= 0 && k->sout >= 0 && pf[ix_out].revents) {
            read_stdout(k, k->over ? READ_CHUNK
                                   : flow_stdout_room(&k->flow, sendq_pending_bytes(&k->out)));
        }
        if (ix_err >= 0 && k->serr >= 0 && pf[ix_err].revents) {
            read_stderr(k);
        }
        (void)ix_in;
    }
}

/* Serve the session that conn_fd asks for, from fresh state.  Returns once
 * it is over and everything it held is released, if this process may serve
 * another; exits after a failure and when httpd is stopping. */
static void serve_session(const keeper_env *env, int conn_fd)
{
    keeper kk, *k = &kk;
    uint32_t len;
    char *body = NULL, *cwd, **argv, **envp;
    char name[IPC_NAME_MAX], msg[120];

    memset(k, 0, sizeof(*k));
    k->env = env;
    k->cfd = k->sin = k->sout = k->serr = k->listen_fd = -1;
    k->life_fd = env->lifeline_fd;
    k->parent_fd = env->parent_fd;

    ipc_set_timeouts(conn_fd, ATTACH_TIMEOUT_MS);
    if (!ipc_peer_allowed(conn_fd, env->uid)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, env->s,
                     "WS02053: keeper refused a spawn request from a process of another user");
        _exit(1);
    }
    if (ipc_recv_header(conn_fd, IPC_SPAWN, &len, NULL) < 0
        || len < sizeof(ipc_spawn) || len > SPAWN_MAX_BODY
        || !(body = malloc(len))
        || ipc_read_full(conn_fd, body, len, NULL) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, env->s,
                     "WS02040: keeper got no valid spawn request");
        _exit(1);
    }
    memcpy(&k->cfg, body, sizeof(ipc_spawn));
    ws_pubid_hex(k->cfg.pubid, k->fp);
    if (len != sizeof(ipc_spawn) + k->cfg.strings_len
        || parse_spawn(&k->cfg, body + sizeof(ipc_spawn), &cwd, &argv, &envp) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, env->s,
                     "WS02041: [%s] malformed spawn request", k->fp);
        send_reply(conn_fd, IPC_ERR_INTERNAL, "malformed spawn request", 0);
        keeper_exit(k, 1);
    }
    k->resume_timeout = apr_time_from_msec(k->cfg.resume_timeout_ms);
    k->v1 = k->cfg.protocol == IPC_PROTOCOL_V1;
    k->flow.window = k->cfg.buffer;
    k->flow.max_message = k->cfg.max_message;
    k->flow.v1 = k->v1;
    sendq_init(&k->out, k->v1);
    k->reader = msg_reader_create((int)k->cfg.mode, k->cfg.max_message);
    k->parser = ws_parser_create(k->cfg.max_message, 1);

    ipc_keeper_name(name, env->prefix, k->cfg.slot, k->cfg.gen);
    k->listen_fd = ipc_listen(name, 16);
    if (k->listen_fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, env->s,
                     "WS02042: [%s] cannot listen for attaches", k->fp);
        send_reply(conn_fd, IPC_ERR_INTERNAL, "keeper cannot listen", 0);
        keeper_exit(k, 1);
    }
    if (start_script(k, argv, envp, cwd, msg, sizeof(msg)) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, env->s,
                     "WS02043: [%s] %s", k->fp, msg);
        send_reply(conn_fd, IPC_ERR_EXEC, msg, 0);
        keeper_exit(k, 1);
    }
    if (ws_table_go_live(env->table, k->cfg.slot, k->cfg.gen, getpid()) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, env->s,
                     "WS02044: [%s] the session's slot was taken over", k->fp);
        send_reply(conn_fd, IPC_ERR_INTERNAL, "session slot lost", 0);
        k->over = 1;
        signal_script(k, SIGKILL);
        _exit(1);
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, env->s,
                 "WS02045: [%s] session started: %s (pid %ld)", k->fp, argv[0],
                 (long)k->script_pid);
    free(argv - 1);
    free(body);

    send_reply(conn_fd, IPC_OK, "", 0);
    {
        /* The worker's ATTACH follows on this connection, read in the loop;
         * until a client is attached the session counts as detached. */
        const ipcr_rule attach_rule[] = {
            { IPC_ATTACH, sizeof(ipc_attach), sizeof(ipc_attach) + IPC_MAX_PREREAD },
        };

        k->pend[0].fd = conn_fd;
        k->pend[0].passed = -1;
        ipcr_init(&k->pend[0].rd);
        pend_expect(&k->pend[0], PEND_REQUEST, attach_rule, 1);
        k->detached_since = apr_time_now();
    }
    run(k);
    if (k->stopping) {
        keeper_exit(k, 0);
    }
    session_leave(k);
    session_free(k);
}

void keeper_main(const keeper_env *env, int conn_fd)
{
    struct sigaction sa;

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        _exit(1);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGWINCH, SIG_IGN);

    /* Blocks of 128 KiB and more (large messages, full buffers) are mapped
     * and unmapped on their own, whatever sizes an earlier session used, so
     * that a session leaves no large heap behind for the next. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    for (;;) {
        serve_session(env, conn_fd);
        conn_fd = pool_rejoin(env, sig_pipe[0]);
        if (conn_fd < 0) {
            _exit(0);
        }
    }
}
