/* spawner.h -- the daemon that gives each new session a keeper.
 *
 * Contract:
 *  - ws_shared is created once in httpd's parent (post_config) in the
 *    process pool, so it outlives graceful restarts: the session table in
 *    anonymous shared memory, the spawner's listening socket, the lifeline
 *    pipe, and the spawner's pid.
 *  - spawner_start() forks the daemon unless one from an earlier generation
 *    still runs, and registers it so httpd forks a new one if it dies.
 *  - The daemon drops privileges to User/Group, leaves httpd's process group
 *    and listeners, and passes every connection that asks for a session to
 *    a keeper waiting for one (pool.h), or forks a keeper (keeper_main) for
 *    it when none waits.  It refuses a peer of another user (not User, not
 *    root) as it accepts it: nothing of it is read, nothing is forked for
 *    it, and refusals are logged at a bounded rate (refusals.h).  It reads
 *    the other peers' first message as its bytes come, so a silent or slow
 *    one never holds up its loop.
 *  - It reaps keepers and frees the table slots of any that died
 *    uncleanly; and since a keeper forked by a spawner that died since is
 *    nobody's child it can reap, it also sweeps the table every few seconds
 *    for slots whose keeper is not its child and no longer holds the
 *    session's socket, and frees them.
 *  - Everything it forked stops once the lifeline's write end, held only by
 *    httpd's parent, is closed: that is how `apachectl stop` ends sessions
 *    while a graceful restart leaves them running.
 */
#ifndef WS_SPAWNER_H
#define WS_SPAWNER_H

#include "httpd.h"
#include "apr_shm.h"
#include "apr_thread_proc.h"
#include "ipc.h"
#include "session_table.h"

typedef struct {
    apr_shm_t *shm;
    ws_table *table;
    ipc_names names;            /* the sockets' names: prefix and key (ipc.h) */
    int listen_fd;              /* the spawner's socket */
    int lifeline[2];            /* [0] read end for daemons, [1] kept by the parent */
    apr_proc_t proc;            /* the running spawner */
    unsigned capacity;
    unsigned char client_key[16]; /* keys the hash of client addresses (per-client limit) */
    unsigned max_relays;        /* WebSessionMaxRelays, resolved at each (re)start */
} ws_shared;

apr_status_t spawner_start(ws_shared *sh, server_rec *s, apr_pool_t *pconf);

#endif /* WS_SPAWNER_H */
