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
#include "sendq.h"
#include "sse.h"
#include "ws_codec.h"
#include "ws_handshake.h"
#include "wsv1.h"

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
    int poll_ended;             /* its end marker is queued: nothing follows */
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

/* Internal to the module: no symbol of the keeper's files is exported. */
#pragma GCC visibility push(hidden)

/* keeper.c */
void set_nonblock(int fd);

/* keeper_state.c */
void begin_end(keeper *k, const char *why);
void end_after_close(keeper *k, const char *why);
void advance_end(keeper *k, apr_time_t now);

/* keeper_client.c */
void queue_data(keeper *k, int binary, const unsigned char *data, size_t len);
void queue_close_how(keeper *k, unsigned code, const char *reason, int after_data);
void queue_close(keeper *k, unsigned code, const char *reason);
void client_drop(keeper *k, const char *why);
void client_attach(keeper *k, int fd, int relay, const ipc_attach *a,
                          const unsigned char *pre, size_t n);
int flush_client(keeper *k, apr_time_t now);
void read_client(keeper *k);
apr_time_t silent_deadline(const keeper *k);
int heartbeat(keeper *k, apr_time_t now);

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
void pend_expect(pending_conn *pc, pend_state state, const ipcr_rule *rules,
                        size_t nrules);
void pend_accept(keeper *k);
void pend_read(keeper *k, pending_conn *pc);
void pend_expire(keeper *k, apr_time_t now);

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
