/* session_state.h -- a keeper's two state machines and their legal moves,
 * no I/O.
 *
 * The session (sess_state): serving while the script runs; once it is over
 * (no client will be served any more), the script is stopped step by step
 * until it is reaped:
 *
 *   LIVE --> DRAIN --> EOF --> TERM --> KILL --> DONE
 *     \         \       \       \                 ^
 *      `---------`-------`-------`----------------'   (the script was reaped)
 *
 *   LIVE   the script runs; clients attach, detach and return
 *   DRAIN  over: what the client sent before it left still goes to the
 *          script's stdin, for up to KEEPER_TERM_GRACE
 *   EOF    stdin closed: the script should exit
 *   TERM   SIGTERM sent to its process group
 *   KILL   SIGKILL sent
 *   DONE   over and reaped: the keeper leaves once no client is attached
 *
 * The client connection (conn_state), at most one at a time:
 *
 *   NONE --> OPEN --> CLOSING --> LINGER --> NONE
 *              |  \       ^         ^
 *              |   `-> FAILING      |    (a complete poll answer: OPEN -> LINGER)
 *              `--------------------'
 *   and every state --> NONE (the connection is dropped or evicted);
 *   NONE --> CLOSING when a close was queued while no client was attached.
 *
 *   NONE     no client: detached (WebSessionResumeTimeout runs) or not yet
 *   OPEN     attached: read and written
 *   FAILING  the client broke the protocol: nothing more is read, and what
 *            the script answers to its earlier messages still goes out for
 *            a short grace before the close
 *   CLOSING  our close frame (or event) is queued: the data before it goes
 *            out, then it; a websession.v1 client's R and A are still read
 *   LINGER   everything is written and our side shut; the client's last
 *            bytes are drained so that they cannot turn into a reset
 *
 * sess_may_go / conn_may_go: is from -> to a legal move (a move to the
 * same state is not)?  The keeper changes either state only through one
 * function (keeper_state.c), which checks this and logs every move.
 */
#ifndef WS_SESSION_STATE_H
#define WS_SESSION_STATE_H

typedef enum {
    SESS_LIVE = 0,
    SESS_DRAIN,
    SESS_EOF,
    SESS_TERM,
    SESS_KILL,
    SESS_DONE,
    SESS_STATES
} sess_state;

typedef enum {
    CONN_NONE = 0,
    CONN_OPEN,
    CONN_FAILING,
    CONN_CLOSING,
    CONN_LINGER,
    CONN_STATES
} conn_state;

int sess_may_go(sess_state from, sess_state to);
int conn_may_go(conn_state from, conn_state to);
const char *sess_state_name(sess_state s);
const char *conn_state_name(conn_state s);

#endif /* WS_SESSION_STATE_H */
