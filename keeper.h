/* keeper.h -- one process per session at a time.
 *
 * Contract:
 *  - keeper_main() runs in a process the spawner has just forked, holding
 *    the worker's connection that carries an IPC_SPAWN request, whose
 *    header the spawner has read already (first).  It starts
 *    the script (own process group, stdin/stdout/stderr on pipes, the given
 *    argv, environment and directory), publishes the session LIVE in the
 *    table, replies, and takes the client from the worker.  It never returns.
 *  - It then relays messages between the client (WebSocket frames, via
 *    ws_codec) and the script (msg_format records) with bounded buffers in
 *    both directions: when one is full it stops reading the producer.
 *  - It listens on its own abstract socket for later attaches; a new attach
 *    evicts the connection that was attached before.
 *  - The session ends when the client closes it, when no client has been
 *    attached for the resume timeout, when the script exits (the client gets
 *    a close frame carrying the exit status), or when the lifeline reports
 *    that httpd's parent is gone.  Ending means: stdin closed (EOF), then
 *    SIGTERM, then SIGKILL to the script's process group, slot released.
 *  - Then, unless httpd is stopping, the process closes and frees what the
 *    session held and offers itself to the spawner for another session
 *    (pool.h), which it serves from fresh state like a new keeper; it exits
 *    when the spawner does not want it, after a failure, and when httpd is
 *    stopping.
 */
#ifndef WS_KEEPER_H
#define WS_KEEPER_H

#include <sys/types.h>
#include "httpd.h"
#include "ipc.h"
#include "session_table.h"

/* Seconds between EOF and SIGTERM, and between SIGTERM and SIGKILL. */
#define KEEPER_TERM_GRACE 2
/* The same while httpd is stopping: everything must be gone quickly. */
#define KEEPER_STOP_GRACE 1

typedef struct {
    ws_table *table;
    const ipc_names *names;     /* the sockets' names (ipc.h) */
    int lifeline_fd;            /* EOF once httpd's parent process is gone */
    int parent_fd;              /* pidfd of httpd's parent (readable once it
                                 * exits, even if killed), or -1 */
    uid_t uid;                  /* peers allowed besides root */
    server_rec *s;              /* for the error log */
    const unsigned char *pool_token;    /* IPC_POOL_TOKEN_LEN bytes (pool.h) */
} keeper_env;

void keeper_main(const keeper_env *env, int conn_fd, const ipc_header *first)
    __attribute__((noreturn));

/* Write the error log to fd from now on (a restart reopened it): fd takes
 * the place of the old log descriptor, and of stderr if that was the log.
 * fd is consumed. */
void keeper_adopt_log(server_rec *s, int fd);

#endif /* WS_KEEPER_H */
