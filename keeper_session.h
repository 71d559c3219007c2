/* keeper_session.h -- one session's state inside a keeper process, shared by
 * the keeper's files (not part of the module's interface: keeper.h is).
 *
 * A keeper is single-threaded: every function here runs on the loop in
 * keeper.c and may change any field of the keeper struct; none blocks on a
 * peer.  Who owns what:
 *   keeper.c         the loop, set-up and the pool (serving one session after another)
 *   keeper_state.c   the session's end: begin_end, the EOF/TERM/KILL sequence
 *   keeper_client.c  the attached client: frames queued, read, written, heartbeats
 *   keeper_v1.c      websession.v1 sequencing: resume point, acknowledgements
 *   keeper_http.c    the HTTP fallback: down-stream events, POST records
 *   keeper_ipc.c     connections to the session's socket (HELLO, ATTACH, POST, LOGFD)
 *   keeper_script.c  the script: start, pipes, reaping, its exit status
 */

#ifndef KEEPER_SESSION_H
#define KEEPER_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "httpd.h"
#include "apr_time.h"

#include "keeper.h"
#include "httpd.h"
#include "http_log.h"
#include "apr_portable.h"
#include "apr_time.h"
#include "ipc.h"
#include "ipc_reader.h"
#include "bytebuf.h"
#include "exit_status.h"
#include "flow.h"
#include "msg_format.h"
#include "pool.h"
#include "refusals.h"
#include "sendq.h"
#include "sse.h"
#include "ws_codec.h"
#include "ws_handshake.h"
#include "wsv1.h"
#include "session_state.h"
#include "timers.h"

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
#define KEEPER_ACCEPT_BATCH 64  /* connections accepted in one turn, at most */
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
    ipc_reader rd;
} pending_conn;

/* The session's deadlines, in one timer table (timers.h): the loop sleeps
 * until the earliest and acts on each as it falls due (keeper.c, on_timer). */
typedef enum {
    T_RESUME = 0,   /* no client: the session ends unless one is back (WebSessionResumeTimeout) */
    T_END,          /* the next step of stopping the script (DRAIN, EOF, TERM) */
    T_FAIL,         /* FAILING: the protocol error's close is queued */
    T_CLOSE,        /* CLOSING: the client is dropped if our close is not out by then */
    T_LINGER,       /* LINGER: the drain ends */
    T_PING,         /* the next heartbeat to the client (WebSessionPing) */
    T_SILENT,       /* a client that has sent nothing since is taken as dead */
    T_ACK,          /* websession.v1: acknowledge what the client sent */
    T_POLL,         /* a long poll with nothing to say is answered */
    T_REFUSED,      /* refused peers not logged yet are due in the log (refusals.h) */
    T_PEND,         /* T_PEND + i: connection pend[i]'s message must be whole */
    T_COUNT = T_PEND + KEEPER_MAX_PENDING
} keeper_timer;

/* The descriptors the loop watches, each under its role: registered with
 * epoll once, changed only when what the loop wants of one changes
 * (keeper.c, watch), unregistered before it is closed (keeper_close). */
typedef enum {
    W_LIFE = 0,     /* httpd's lifeline */
    W_PARENT,       /* pidfd of httpd's parent */
    W_LISTEN,       /* the session's socket */
    W_SIG,          /* the signal pipe */
    W_CLIENT,       /* the attached client */
    W_SIN,          /* the script's stdin (while bytes wait for it) */
    W_SOUT,         /* its stdout (while there is room for what it writes) */
    W_SERR,         /* its stderr */
    W_PEND,         /* W_PEND + i: connection pend[i] */
    W_COUNT = W_PEND + KEEPER_MAX_PENDING
} keeper_watch;

_Static_assert(T_COUNT <= TIMERS_MAX, "the timer table holds every keeper deadline");

/* One session's state.  A keeper serves one session after another (pool.h):
 * what a field holds beyond the struct (descriptor, memory) is released in
 * session_free. */
typedef struct {
    const keeper_env *env;
    ipc_spawn cfg;
    sess_state sess;            /* session_state.h: changed by sess_set only */
    conn_state conn;            /* changed by conn_set only */
    timer_table timers;         /* every deadline (keeper_timer) */
    int epfd;                   /* epoll: the descriptors watched (keeper_watch) */
    int w_fd[W_COUNT];          /* registered descriptor per role, or -1 */
    uint32_t w_ev[W_COUNT];     /* its registered events */
    char fp[2 * WS_PUBID_LEN + 1];
    apr_interval_time_t resume_timeout;
    int client_spoke;           /* the client sent a data message or an acknowledgement:
                                 * WebSessionUnusedTimeout no longer applies */
    unsigned attaches;          /* connections this session has had */
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
    int close_queued;           /* our close frame is queued (sendq final), on this
                                 * connection or for the next */
    sendq out;                  /* frames to the client */
    bytebuf to_script;
    flow_cfg flow;              /* when to read and acknowledge (flow.h) */
    apr_time_t last_rx;         /* when the client last sent anything */
    unsigned fail_code;         /* FAILING: the close to send at T_FAIL */
    const char *fail_reason;    /* static text, from the codec */

    /* websession.v1 (cfg.protocol) */
    int v1;
    int awaiting_r;             /* the client's resume point is not known yet */
    int introduced;             /* the client was told the session id */
    uint64_t rx_count;          /* data messages received from the client */
    uint64_t rx_acked;          /* the last count we acknowledged */
    int ack_held;               /* an acknowledgement fell due while the queue to
                                 * the script was full: it goes once there is room */

    /* the HTTP fallback (docs/PROTOCOL.md): the attached connection is a
     * response body of events instead of a WebSocket */
    unsigned transport;         /* 0 (WebSocket), IPC_ATTACH_SSE or _POLL */
    int poll_open;              /* this poll may end after the R alone */
    int poll_news;              /* it carried a message besides R */
    int poll_answered;          /* its body is complete */
    int poll_ended;             /* its end marker is queued: nothing follows */
    int peer_eof;               /* the client ended the connection in order */
    int in_post;                /* handling a POST: a close it causes must
                                 * still reach a later down request */
    int poll_expired;           /* T_POLL came: the poll may end after the R alone */
    bytebuf http_out;           /* events encoded, not yet written */

    ws_slot_stats pub;          /* what the status page shows (ws_table_publish) */
    int ended_by_admin;         /* the status page ended it (IPC_END) */

    /* what the session log line (WS02065) reports */
    struct {
        apr_time_t started;
        char script[256];           /* the program run */
        char client[48];            /* REMOTE_ADDR of the request that started it */
        unsigned transports;        /* 1 WebSocket, 2 sse, 4 poll: those used */
        uint64_t msgs_in, bytes_in;     /* data messages from the client */
        uint64_t msgs_out, bytes_out;   /* ... from the script */
        unsigned close_code;        /* our close (0: none was sent) */
        char close_reason[124];
        char end_why[96];           /* why it ended (begin_end) */
        int script_first;           /* the script had exited when it began to end */
    } stats;

    /* the end */
    int stopping;               /* httpd is going away */
    int finish_noted;           /* the script's end was reported */
    int life_fd;                /* lifeline, -1 once it reported EOF */
    int parent_fd;              /* pidfd of httpd's parent, -1 once it fired */
} keeper;

/* Internal to the module: no symbol of the keeper's files is exported. */
#pragma GCC visibility push(hidden)

/* keeper.c */
void set_nonblock(int fd);
/* Close *fd (if >= 0) after taking it out of the loop's epoll set; -1 in *fd. */
void keeper_close(keeper *k, int *fd);

/* keeper.c */
void session_log(keeper *k);
void session_publish(keeper *k);

/* keeper_state.c: the only functions that change k->sess and k->conn */
void sess_set(keeper *k, sess_state to, const char *why);
void conn_set(keeper *k, conn_state to, const char *why);
void begin_end(keeper *k, const char *why);
void end_after_close(keeper *k, const char *why);
void end_step(keeper *k);

/* No client will be served any more: the session is ending. */
static inline int session_over(const keeper *k)
{
    return k->sess != SESS_LIVE;
}

/* keeper_client.c */
void queue_data(keeper *k, int binary, const unsigned char *data, size_t len);
void queue_close_how(keeper *k, unsigned code, const char *reason, int after_data);
void queue_close(keeper *k, unsigned code, const char *reason);
void client_drop(keeper *k, const char *why);
void client_attach(keeper *k, int fd, int relay, const ipc_attach *a,
                   const unsigned char *pre, size_t n);
int flush_client(keeper *k);
void read_client(keeper *k);
void client_timer(keeper *k, keeper_timer t, apr_time_t now);
void ack_room(keeper *k);
void client_heard(keeper *k);

/* keeper_v1.c */
int v1_fail(keeper *k, unsigned code, const char *why);
int v1_message(keeper *k, const ws_event *ev);
void v1_while_closing(keeper *k, const ws_event *ev);

/* keeper_http.c */
void http_resume(keeper *k, uint64_t received);
void handle_post(keeper *k, int fd, const unsigned char *msg, size_t len);
void encode_events(keeper *k);
void poll_end(keeper *k);
int http_stale(const keeper *k, uint64_t received);

/* keeper_ipc.c */
void send_reply(int fd, uint32_t status, const char *msg, uint64_t count);
void pend_close_all(keeper *k);
void pend_expect(keeper *k, pending_conn *pc, pend_state state, const ipcr_rule *rules,
                 size_t nrules);
void pend_accept(keeper *k);
void pend_read(keeper *k, pending_conn *pc);
void pend_expired(keeper *k, int i);
/* Refused peers of other users (per process, logged at a bounded rate):
 * arm T_REFUSED for those not logged yet; log them when it falls due; log
 * them whatever the time, before the process exits. */
void peers_refused_arm(keeper *k);
void peers_refused_due(keeper *k, apr_time_t now);
void peers_refused_flush(server_rec *s);

/* keeper_script.c */
void signal_script(keeper *k, int sig);
int deliver(keeper *k, int binary, const unsigned char *data, size_t len);
void read_stderr(keeper *k);
int read_stdout(keeper *k, size_t most);
void reap(keeper *k);
void script_finished(keeper *k);
int start_script(keeper *k, char *const argv[], char *const envp[],
                 const char *cwd, char *msg, size_t msglen);
void flush_script(keeper *k);

#pragma GCC visibility pop

#endif /* KEEPER_SESSION_H */
