/* pool.h -- keepers that serve one session after another.
 *
 * Forking a keeper for every session, and its exit after it, cost more CPU
 * than the rest of a short session: the fork copies the spawner's page
 * tables and the exit tears them down again.  So a keeper outlives its
 * session and waits at the spawner for the next one.
 *
 * Contract:
 *  - A keeper whose session is over (not because httpd is stopping or the
 *    keeper got SIGTERM) connects to the spawner's socket and sends
 *    IPC_IDLE with the pool token: a random value the spawner drew at its
 *    start, which only the keepers it forked know, so that no other process
 *    of httpd's user can pose as a keeper and receive workers' requests.
 *  - The spawner parks at most POOL_MAX such connections.  A worker's
 *    connection for a new session goes to the keeper parked last (IPC_TAKE,
 *    the descriptor travels, the body is the IPC_SPAWN header the spawner
 *    read from it), which serves it exactly like a new keeper;
 *    the spawner forks a keeper only when none is parked.
 *  - A keeper refused (pool full, wrong token), parked for longer than
 *    POOL_IDLE_SECONDS, or parked at a spawner that is gone reads EOF and
 *    exits.  A parked keeper also exits when httpd's parent is gone
 *    (lifeline, pidfd) or on SIGTERM: stop and restart work as without the
 *    pool.
 *  - Logging: the spawner sends a reopened error log (IPC_LOGFD) to its
 *    parked keepers as to its busy ones.  A keeper that was between two
 *    sessions at that moment states the log it writes to (device and inode)
 *    in IPC_IDLE, and the spawner sends it the current one if they differ.
 *  - A keeper starts every session from fresh state: the pool keeps no
 *    session data, only the process.
 */
#ifndef WS_POOL_H
#define WS_POOL_H

#include <poll.h>
#include <sys/types.h>
#include "httpd.h"
#include "apr_time.h"
#include "ipc.h"
#include "keeper.h"

/* Most keepers parked at once, and how long one stays parked. */
#define POOL_MAX            32
#define POOL_IDLE_SECONDS   10

/* The spawner's side. */
typedef struct {
    int fd[POOL_MAX];               /* parked keepers' connections, oldest first */
    apr_time_t since[POOL_MAX];     /* when each was parked */
    unsigned n;
    unsigned char token[IPC_POOL_TOKEN_LEN];
} ws_pool;

/* An empty pool with a new token.  APR_SUCCESS or the error of the random
 * source (then the spawner cannot serve sessions safely). */
apr_status_t pool_init(ws_pool *p);

/* conn was accepted on the spawner's socket from a peer that runs as
 * httpd's User or root, and brought the offer idle (IPC_IDLE): park it if
 * the offer presents the token and there is room; close it otherwise.
 * conn is consumed. */
void pool_park(ws_pool *p, int conn, const ipc_idle *idle, server_rec *s);

/* Pass conn, a worker's connection whose first header (IPC_SPAWN) the
 * spawner has read, to the keeper parked last, with that header (IPC_TAKE).
 * 1 if one took it (the caller still closes its own descriptor), 0 if none
 * could. */
int pool_hand(ws_pool *p, int conn, const ipc_header *first);

/* Fill pf (room for POOL_MAX) to watch the parked connections; returns how
 * many.  After poll, pool_check drops the ones whose keeper is gone; it
 * must see the same pool that pool_watch saw. */
unsigned pool_watch(const ws_pool *p, struct pollfd *pf);
void pool_check(ws_pool *p, const struct pollfd *pf, unsigned n);

/* Retire keepers parked for POOL_IDLE_SECONDS.  Returns the milliseconds
 * until the next one is due, -1 if the pool is empty. */
int pool_expire(ws_pool *p, apr_time_t now);

/* Send the error log's descriptor to every parked keeper. */
void pool_send_log(ws_pool *p, int logfd);

/* In a process forked from the spawner: close the parked connections (each
 * keeper must see EOF when the spawner closes its end). */
void pool_forget(ws_pool *p);

/* The keeper's side: offer this process to the spawner and wait.  Returns
 * a worker's connection to serve, its first header (already read) in
 * *first; or -1 when the keeper must exit.  sig_fd is the keeper's signal
 * self-pipe (SIGTERM means exit). */
int pool_rejoin(const keeper_env *env, int sig_fd, ipc_header *first);

#endif /* WS_POOL_H */
