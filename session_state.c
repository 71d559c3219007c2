/* session_state.c -- a keeper's state machines (session_state.h). */

#include "session_state.h"

int sess_may_go(sess_state from, sess_state to)
{
    if (from >= SESS_STATES || to >= SESS_STATES || from == SESS_DONE) {
        return 0;
    }
    /* forward along LIVE, DRAIN, EOF, TERM, KILL one step; DONE from any */
    return to == SESS_DONE || to == from + 1;
}

int conn_may_go(conn_state from, conn_state to)
{
    static const unsigned char legal[CONN_STATES][CONN_STATES] = {
        /*               NONE OPEN FAIL CLOS LING */
        /* NONE    */  {  0,   1,   0,   1,   0 },
        /* OPEN    */  {  1,   0,   1,   1,   1 },
        /* FAILING */  {  1,   0,   0,   1,   0 },
        /* CLOSING */  {  1,   0,   0,   0,   1 },
        /* LINGER  */  {  1,   0,   0,   0,   0 },
    };

    if (from >= CONN_STATES || to >= CONN_STATES) {
        return 0;
    }
    return legal[from][to];
}

const char *sess_state_name(sess_state s)
{
    static const char *const names[SESS_STATES] = {
        "live", "drain", "eof", "term", "kill", "done"
    };

    return s < SESS_STATES ? names[s] : "?";
}

const char *conn_state_name(conn_state s)
{
    static const char *const names[CONN_STATES] = {
        "none", "open", "failing", "closing", "linger"
    };

    return s < CONN_STATES ? names[s] : "?";
}
