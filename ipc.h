/* ipc.h -- messages between httpd workers, the spawner and keepers.
 *
 * Contract:
 *  - Every endpoint is a Linux abstract Unix stream socket named
 *    "<prefix>/spawner.<mac>" or "<prefix>/k<slot>.<gen>.<mac>", where
 *    prefix is "mod_websession/<pid of httpd's parent>" and mac is an
 *    HMAC-SHA1 of the rest of the name under a random 128-bit key drawn at
 *    server start (ipc_names).  Only httpd's processes hold the key (it is
 *    inherited, never logged nor sent): every user can read the names in
 *    use in /proc/net/unix, but none can tell the next one, so none can
 *    bind a name before the keeper that needs it.  No file system path: no
 *    length limit from deep ServerRoots, nothing left behind.  Abstract
 *    sockets have no file mode, so every accepting side checks the peer's
 *    uid (ipc_peer_allowed) as soon as it accepts, before it reads.
 *  - A conversation is:  worker -> spawn request (new session) or attach
 *    hello (resume);  keeper -> reply;  worker -> attach (the client socket
 *    as SCM_RIGHTS, or relay mode), followed by bytes httpd had already read.
 *    Or, for an HTTP fallback POST: hello; reply; worker -> IPC_POST (the
 *    client's records); keeper -> reply with its count.  A POST never
 *    disturbs the attached connection.
 *  - A keeper whose session ended offers itself on the spawner's socket
 *    (IPC_IDLE, see pool.h); the spawner may later pass it a worker's
 *    connection (IPC_TAKE), on which the conversation above goes on.
 *  - A resume's IPC_HELLO carries the session secret, compared by the keeper
 *    in constant time: processes of httpd's own user cannot attach to a
 *    session they do not hold the id of.
 *  - All integers are host order: both ends are the same machine and build.
 *  - ipc_write_full / ipc_read_full retry on EINTR and partial transfers and
 *    fail with errno set; reads time out per the socket's SO_RCVTIMEO.
 */
#ifndef WS_IPC_H
#define WS_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "apr_errno.h"
#include "session_table.h"

#define IPC_MAGIC       0x57535331u    /* "WSS1" */
#define IPC_NAME_MAX    96

enum {
    IPC_SPAWN = 1,      /* worker -> spawner/keeper: start a session */
    IPC_HELLO = 2,      /* worker -> keeper: may I attach? body: the secret,
                         * then ipc_hello_down for a fallback down request */
    IPC_REPLY = 3,      /* keeper -> worker */
    IPC_ATTACH = 4,     /* worker -> keeper: here is the client */
    IPC_LOGFD = 5,      /* httpd's parent -> spawner -> keepers: the error log,
                         * reopened by a restart (the descriptor travels) */
    IPC_POST = 6,       /* worker -> keeper (after HELLO): an HTTP fallback
                         * POST's records; answered with IPC_REPLY */
    IPC_IDLE = 7,       /* keeper -> spawner: ready for another session;
                         * body: ipc_idle */
    IPC_TAKE = 8,       /* spawner -> idle keeper: the descriptor that travels
                         * is a worker's connection carrying IPC_SPAWN */
    IPC_END = 9         /* worker -> keeper (after HELLO), no body: the status
                         * page ends the session; answered with IPC_REPLY */
};

enum {
    IPC_OK = 0,
    IPC_ERR_EXEC,       /* the script could not be started */
    IPC_ERR_CLOSING,    /* the session is ending */
    IPC_ERR_INTERNAL,
    IPC_ERR_PROTOCOL,   /* POST: a record broke websession.v1 (message says
                         * which); the session is closing with 1002 */
    IPC_ERR_GAP,        /* POST: its first new message is not the next one */
    IPC_ERR_STALE,      /* HELLO of a down request: its resume point is below
                         * what the client acknowledged (count); a late
                         * request, refused, the session untouched */
    IPC_ERR_MISMATCH    /* POST: the session is a plain WebSocket session, which
                         * the HTTP fallback cannot reach; nothing was taken */
};

/* Most client bytes an attach may carry (read by httpd before the handover). */
#define IPC_MAX_PREREAD   (4u * 1024 * 1024)

#define IPC_ATTACH_FD     1u   /* the client socket travels with the header */
#define IPC_ATTACH_RELAY  2u   /* this Unix connection carries the byte stream */
#define IPC_ATTACH_V1     4u   /* the client speaks websession.v1 */
#define IPC_ATTACH_SSE    8u   /* HTTP fallback: the response body is an
                                * event stream (headers already sent) */
#define IPC_ATTACH_POLL  16u   /* ... a long poll: the body ends once it has
                                * carried something */
#define IPC_ATTACH_OPEN  32u   /* ... a poll that ends after the R alone */
#define IPC_ATTACH_HTTP  (IPC_ATTACH_SSE | IPC_ATTACH_POLL)

/* Most bytes of records an IPC_POST may carry: twice the window (what a
 * client may have unacknowledged, and again as much after a lost answer),
 * one message more, and room for the records' headers. */
#define IPC_MAX_POST(window, max_message) \
    (2 * (size_t)(window) + (size_t)(max_message) + 65536)

#define IPC_PROTOCOL_PLAIN 0u  /* plain WebSocket: messages as they are */
#define IPC_PROTOCOL_V1    1u  /* websession.v1 */

typedef struct {
    uint32_t magic;
    uint32_t kind;
    uint32_t len;       /* bytes that follow this header */
} ipc_header;

/* Resource limits of the script (httpd's RLimitCPU, RLimitMEM, RLimitNPROC
 * for the request's directory, as mod_cgid applies them): ipc_spawn.rlimit
 * index; the bit 1 << index in rlimit_set says the limit is configured. */
enum {
    IPC_RLIMIT_CPU = 0,         /* RLIMIT_CPU, seconds */
    IPC_RLIMIT_MEM,             /* RLIMIT_AS, bytes */
    IPC_RLIMIT_NPROC,           /* RLIMIT_NPROC, processes of the user */
    IPC_RLIMIT_COUNT
};

#define IPC_ROUTE_SIZE 33   /* WS_ROUTE_MAX (ws_handshake.h) and its NUL */

/* IPC_SPAWN body: this struct, then `strings_len` bytes of NUL-terminated
 * strings: cwd, nargv arguments, nenv "NAME=value" entries. */
typedef struct {
    uint32_t slot;
    uint32_t gen;
    uint32_t mode;               /* MSG_LINES or MSG_FRAMED */
    uint32_t max_message;
    uint32_t buffer;             /* WebSessionBuffer: the window each way (flow.h) */
    uint32_t resume_timeout_ms;
    uint32_t unused_timeout_ms;  /* ... for a client that left before sending anything */
    uint32_t ping_ms;            /* heartbeat interval, 0 for none */
    uint32_t protocol;           /* IPC_PROTOCOL_*, fixed for the session */
    uint32_t nargv;
    uint32_t nenv;
    uint32_t strings_len;
    uint32_t rlimit_set;         /* 1 << IPC_RLIMIT_*: the limits configured */
    uint64_t rlimit[IPC_RLIMIT_COUNT][2];   /* soft, hard (RLIM_INFINITY: none) */
    unsigned char pubid[WS_PUBID_LEN];
    unsigned char secret[WS_SECRET_LEN];    /* a HELLO must present it */
    char route[IPC_ROUTE_SIZE];  /* WebSessionRoute for the id's I message, "" for none */
} ipc_spawn;

typedef struct {
    uint32_t status;             /* IPC_OK or IPC_ERR_* */
    int32_t keeper_pid;
    char message[120];           /* NUL-terminated detail for the log */
    uint64_t count;              /* after IPC_POST: client data messages
                                  * received in all; IPC_ERR_STALE: server
                                  * data messages the client acknowledged */
} ipc_reply;

#define IPC_POOL_TOKEN_LEN 16

typedef struct {
    unsigned char token[IPC_POOL_TOKEN_LEN];   /* known to the spawner's keepers only */
    uint64_t log_dev;            /* the keeper's error log (st_dev, st_ino), */
    uint64_t log_ino;            /* 0 and 0 if it logs to no file */
} ipc_idle;

typedef struct {
    uint32_t flags;              /* IPC_ATTACH_FD or _RELAY, maybe | _V1,
                                  * | one of _SSE, _POLL (| _OPEN) */
    uint32_t preread_len;        /* client bytes that follow */
    uint64_t received;           /* HTTP fallback: the client's resume point
                                  * (WebSession-Received) */
} ipc_attach;

/* The rest of an IPC_HELLO body after the secret, for an HTTP fallback down
 * request: its resume point, known before the worker answers 200, so that
 * the keeper can refuse a stale request while a status can still say so. */
typedef struct {
    uint64_t received;           /* WebSession-Received */
} ipc_hello_down;

/* IPC_POST body: this struct, then the records (framed format). */
typedef struct {
    uint64_t first_seq;          /* number of the first D record */
} ipc_post;

/* What the names of one server's sockets are made of. */
#define IPC_NAME_KEY_LEN 16
typedef struct {
    char prefix[40];                        /* "mod_websession/<pid>" */
    unsigned char key[IPC_NAME_KEY_LEN];    /* random; never logged nor sent */
} ipc_names;

/* A prefix for pid and a fresh key: APR_SUCCESS, or the random source's
 * error (then no name would be safe to use). */
apr_status_t ipc_names_init(ipc_names *n, long pid);

/* Abstract socket name "<prefix>/spawner.<mac>" or
 * "<prefix>/k<slot>.<gen>.<mac>" (ipc.c tells how mac is made). */
void ipc_spawner_name(char out[IPC_NAME_MAX], const ipc_names *n);
void ipc_keeper_name(char out[IPC_NAME_MAX], const ipc_names *n,
                     unsigned slot, uint32_t gen);

/* Listening socket (close-on-exec); -1 with errno on failure. */
int ipc_listen(const char *name, int backlog);
/* Connected socket (close-on-exec) with send/receive timeouts; -1 on failure. */
int ipc_connect(const char *name, int timeout_ms);
void ipc_set_timeouts(int fd, int timeout_ms);

/* 1 if the peer of a connected Unix socket runs as uid or as root. */
int ipc_peer_allowed(int fd, uid_t uid);
/* The peer's uid and pid (-1 and -1 if the kernel does not say). */
void ipc_peer_ids(int fd, long *uid, long *pid);
/* 1 if a process holds the abstract name bound (EADDRINUSE), 0 if it is
 * free (this probe bound it and let it go at once), -1 if it cannot tell. */
int ipc_name_in_use(const char *name);

/* 1 if the peer of a connected Unix socket is the process pid. */
int ipc_peer_is(int fd, pid_t pid);

/* Write len bytes; if pass_fd >= 0 it travels (SCM_RIGHTS) with the first
 * byte.  0 on success, -1 with errno. */
int ipc_write_full(int fd, const void *buf, size_t len, int pass_fd);
/* Read exactly len bytes; if got_fd is not NULL a descriptor that arrives
 * is stored there (else -1).  0 on success, -1 with errno (ECONNRESET on EOF). */
int ipc_read_full(int fd, void *buf, size_t len, int *got_fd);
/* What is there now, without waiting: at most len bytes, 0 at EOF, -1 with
 * errno (EAGAIN: nothing yet).  A descriptor that comes along goes to
 * *got_fd if that is -1 (the caller sets it), else it is closed. */
ssize_t ipc_recv_some(int fd, void *buf, size_t len, int *got_fd);

/* Send a header plus body in one write. */
int ipc_send_msg(int fd, uint32_t kind, const void *body, size_t len, int pass_fd);
/* Read a header, check its magic and kind, and return its body length. */
int ipc_recv_header(int fd, uint32_t kind, uint32_t *len, int *got_fd);
/* The same for any kind, which is returned in *kind. */
int ipc_recv_header_any(int fd, uint32_t *kind, uint32_t *len, int *got_fd);
/* A whole IPC_REPLY (its message NUL-terminated); 0, or -1. */
int ipc_recv_reply(int fd, ipc_reply *rep);

#endif /* WS_IPC_H */
