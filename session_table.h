/* session_table.h -- the server-wide table of live sessions, in shared memory.
 *
 * Contract:
 *  - The table lives in one block of memory that every process maps (httpd
 *    children, the spawner, keepers).  It depends on APR only (atomics, time)
 *    and does no I/O, so it is unit-tested on ordinary memory.
 *  - No lock: each slot's state word changes only by compare-and-swap, and
 *    its other fields are written only by the slot's owner while the state
 *    says so.  Capacity is fixed when the block is formatted.
 *  - A slot carries a generation that increases on every reuse, so a stale
 *    (slot, generation) pair never touches a newer session.
 *  - A session lives in one of the WS_TABLE_PROBE slots that follow its
 *    secret's home slot (the secret's first four bytes, which are random,
 *    modulo the capacity).  A lookup examines exactly those slots, comparing
 *    the secret and the binding in constant time in each: it costs the same
 *    whatever the capacity, whichever slot matches, and for an unknown
 *    secret, a near miss or a wrong binding (reported like an unknown secret).
 *  - Sessions are counted per client (a key the caller derives from the
 *    client's address) in a fixed array of counters after the slots; a key
 *    shares its counter with the keys equal to it modulo the array's size.
 */
#ifndef SESSION_TABLE_H
#define SESSION_TABLE_H

#include <apr.h>
#include <apr_time.h>
#include <sys/types.h>

#define WS_SECRET_LEN  24   /* 192 bits from the CSPRNG */
#define WS_BIND_LEN    20   /* SHA-1 of "vhost\0script[\0user]", computed by the caller */
#define WS_PUBID_LEN   8    /* public identifier, also random */
#define WS_TABLE_PROBE 64   /* the slots a secret may occupy (fewer in smaller tables) */

typedef enum {
    WS_SLOT_FREE = 0,
    WS_SLOT_RESERVED,   /* a worker is starting a session in it */
    WS_SLOT_LIVE,       /* a keeper runs it */
    WS_SLOT_CLOSING     /* the keeper is ending it; no new attaches */
} ws_slot_state;

typedef struct ws_table ws_table;

/* Server-wide counters in the table's header, since httpd started (they
 * survive restarts with the table): for the status page. */
typedef enum {
    WS_STAT_STARTED = 0,        /* sessions started */
    WS_STAT_RESUMES,            /* connections after a session's first */
    WS_STAT_END_CLIENT,         /* ended: the client closed it */
    WS_STAT_END_SCRIPT,         /* ended: the script exited first */
    WS_STAT_END_TIMEOUT,        /* ended: the client did not come back */
    WS_STAT_END_ERROR,          /* ended: a protocol error, bad script output */
    WS_STAT_END_STOP,           /* ended: httpd stopped */
    WS_STAT_END_ADMIN,          /* ended from the status page */
    WS_STAT_REFUSED_FULL,       /* refused: WebSessionMaxSessions */
    WS_STAT_REFUSED_CLIENT,     /* refused: WebSessionMaxSessionsPerClient */
    WS_STAT_REFUSED_RELAYS,     /* refused: WebSessionMaxRelays */
    WS_STAT_REFUSED_UNKNOWN,    /* refused: an id naming no session */
    WS_STAT_REFUSED_OTHER,      /* refused: handshake, origin, script failure, ... */
    WS_STAT_POOL,               /* a gauge: keepers waiting in the pool now */
    WS_STAT_COUNT
} ws_stat;

/* What a keeper publishes about its session for the status page.  Only
 * the session's keeper writes it; readers take it without a lock (figures
 * may be a moment old).  The strings are written before the slot is LIVE. */
typedef struct {
    char target[160];           /* "scheme://host:port script" */
    char client[48];            /* the address that started it */
    apr_uint32_t script_pid;
    apr_uint32_t transport;     /* of the last connection: 0 WebSocket, 1 sse, 2 poll */
    apr_uint64_t msgs_in, bytes_in;     /* client -> script */
    apr_uint64_t msgs_out, bytes_out;   /* script -> client */
    apr_uint64_t queued_out;    /* bytes toward the client, unsent or unacknowledged */
    apr_uint64_t queued_in;     /* bytes waiting for the script's stdin */
} ws_slot_stats;

typedef struct {
    unsigned slot;
    apr_uint32_t gen;
    ws_slot_state state;
    pid_t keeper_pid;
    unsigned char pubid[WS_PUBID_LEN];
    apr_time_t created;
    apr_time_t attached;        /* last attach, 0 if never */
    apr_time_t detached;        /* since when no client is attached, 0 if attached */
    apr_uint32_t attaches;      /* number of attaches so far */
} ws_slot_info;

/* Bytes needed for a table of `capacity` slots (and its client counters). */
apr_size_t ws_table_size(unsigned capacity);
/* Format fresh memory (all slots free). */
ws_table *ws_table_format(void *mem, unsigned capacity);
/* Use memory that ws_table_format already formatted (after fork or a
 * graceful restart); NULL if mem does not hold a table. */
ws_table *ws_table_attach(void *mem);
unsigned ws_table_capacity(const ws_table *t);
/* Slots not free. */
unsigned ws_table_count(const ws_table *t);

/* Take a free slot among the secret's WS_TABLE_PROBE for a new session, or
 * one RESERVED for longer than stale_after (its worker died), counting it
 * against client (0: counted nowhere).  Returns APR_SUCCESS and the slot and
 * generation; APR_EBUSY when client already has max_per_client sessions
 * (0: no limit); APR_ENOSPC when every slot the secret may use is taken: a
 * caller draws another secret and tries again, and a table that refuses
 * several random secrets is full. */
apr_status_t ws_table_reserve(ws_table *t, const unsigned char secret[WS_SECRET_LEN],
                              const unsigned char bind[WS_BIND_LEN],
                              const unsigned char pubid[WS_PUBID_LEN],
                              apr_uint32_t client, unsigned max_per_client,
                              apr_time_t now, apr_interval_time_t stale_after,
                              unsigned *slot, apr_uint32_t *gen);
/* Sessions counted against client now (and the keys sharing its counter). */
unsigned ws_table_client_count(const ws_table *t, apr_uint32_t client);

/* RESERVED -> LIVE with the keeper's pid.  APR_EINVAL if (slot, gen) is not
 * the reservation. */
apr_status_t ws_table_go_live(ws_table *t, unsigned slot, apr_uint32_t gen,
                              pid_t keeper_pid);

/* Find the LIVE session with this secret and binding.  APR_SUCCESS fills
 * info; APR_NOTFOUND for an unknown secret and for a known secret with
 * another binding alike.  Takes the same time whatever matches. */
apr_status_t ws_table_lookup(const ws_table *t, const unsigned char secret[WS_SECRET_LEN],
                             const unsigned char bind[WS_BIND_LEN],
                             ws_slot_info *info);

/* Snapshot of one slot by index (for status and cleanup); APR_NOTFOUND if free. */
apr_status_t ws_table_get(const ws_table *t, unsigned slot, ws_slot_info *info);

/* Keeper bookkeeping on (slot, gen); ignored when the pair is stale. */
void ws_table_mark_attached(ws_table *t, unsigned slot, apr_uint32_t gen, apr_time_t now);
void ws_table_mark_detached(ws_table *t, unsigned slot, apr_uint32_t gen, apr_time_t now);
void ws_table_mark_closing(ws_table *t, unsigned slot, apr_uint32_t gen);

/* Free the slot if (slot, gen) still names it; the secret is wiped. */
void ws_table_release(ws_table *t, unsigned slot, apr_uint32_t gen);
/* Free every slot whose keeper is pid (the spawner reaping a crashed keeper).
 * Returns how many were freed. */
unsigned ws_table_release_pid(ws_table *t, pid_t pid);

/* Relayed connections (TLS, HTTP/2: each holds an httpd worker thread while
 * it lasts), counted server-wide in WS_RELAY_MAX places that each name the
 * process holding it, so that the places of a worker that died (killed,
 * crashed: it never gave them back) can be taken again.
 * ws_table_relay_take takes one of the first max places for pid and returns
 * its token (> 0), taking over a place whose holder alive() says is gone
 * only when no place is free; 0 when all max are held by live processes.
 * ws_table_relay_give gives the token's place back (if pid still holds it).
 * ws_table_relays counts the places held. */
#define WS_RELAY_MAX 4096
typedef int (*ws_alive_fn)(apr_uint32_t pid);
unsigned ws_table_relay_take(ws_table *t, unsigned max, apr_uint32_t pid, ws_alive_fn alive);
void ws_table_relay_give(ws_table *t, unsigned token, apr_uint32_t pid);
unsigned ws_table_relays(const ws_table *t);

/* Counters (ws_stat): add one (note), set a gauge, read. */
void ws_table_note(ws_table *t, ws_stat what);
void ws_table_set_gauge(ws_table *t, ws_stat what, apr_uint64_t value);
apr_uint64_t ws_table_counter(const ws_table *t, ws_stat what);

/* The keeper publishes its session's figures on (slot, gen); ignored when
 * the pair is stale.  ws_table_stats copies them out (APR_NOTFOUND for a
 * free slot). */
void ws_table_publish(ws_table *t, unsigned slot, apr_uint32_t gen,
                      const ws_slot_stats *stats);
apr_status_t ws_table_stats(const ws_table *t, unsigned slot, ws_slot_stats *stats);

/* The secret of the LIVE or CLOSING session whose public id is pubid, so
 * that the status page can present it to the keeper (IPC_HELLO) to end the
 * session.  APR_SUCCESS fills slot, gen and secret; APR_NOTFOUND else. */
apr_status_t ws_table_find_pubid(const ws_table *t, const unsigned char pubid[WS_PUBID_LEN],
                                 unsigned *slot, apr_uint32_t *gen,
                                 unsigned char secret[WS_SECRET_LEN]);

/* Constant-time comparison, exported for the module's other checks. */
int ws_ct_equal(const unsigned char *a, const unsigned char *b, apr_size_t n);

#endif /* SESSION_TABLE_H */
