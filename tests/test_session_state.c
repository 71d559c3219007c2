/* test_session_state.c -- unit tests for session_state.c: every pair of
 * states against the diagrams in session_state.h. */

#include <string.h>

#include "session_state.h"
#include "unit.h"

/* Every pair of n states against the list of legal moves "from>to". */
static void check_moves(int n, const char *(*name)(int), int (*may_go)(int, int),
                        const char *const *legal, size_t nlegal)
{
    size_t count = 0;

    for (int a = 0; a < n; a++) {
        for (int b = 0; b < n; b++) {
            char pair[32];
            int want = 0;

            strcpy(pair, name(a));
            strcat(pair, ">");
            strcat(pair, name(b));
            for (size_t i = 0; i < nlegal; i++) {
                want |= !strcmp(pair, legal[i]);
            }
            CHECK(may_go(a, b) == want);
            count += (size_t)want;
        }
    }
    CHECK(count == nlegal);     /* every listed move names two real states */
}

static const char *sess_name(int s) { return sess_state_name((sess_state)s); }
static int sess_go(int a, int b) { return sess_may_go((sess_state)a, (sess_state)b); }
static const char *conn_name(int s) { return conn_state_name((conn_state)s); }
static int conn_go(int a, int b) { return conn_may_go((conn_state)a, (conn_state)b); }

static void test_session(void)
{
    /* the legal moves, spelled out: one step forward, or to DONE */
    static const char *const legal[] = {
        "live>drain", "live>done", "drain>eof", "drain>done", "eof>term", "eof>done",
        "term>kill", "term>done", "kill>done",
    };

    check_moves(SESS_STATES, sess_name, sess_go, legal, sizeof(legal) / sizeof(legal[0]));
    CHECK(!sess_may_go(SESS_STATES, SESS_DONE));
    CHECK(!sess_may_go(SESS_LIVE, SESS_STATES));
    CHECK(!strcmp(sess_state_name(SESS_STATES), "?"));
}

static void test_connection(void)
{
    static const char *const legal[] = {
        "none>open", "none>closing",
        "open>none", "open>failing", "open>closing", "open>linger",
        "failing>none", "failing>closing",
        "closing>none", "closing>linger",
        "linger>none",
    };

    check_moves(CONN_STATES, conn_name, conn_go, legal, sizeof(legal) / sizeof(legal[0]));
    CHECK(!conn_may_go(CONN_STATES, CONN_NONE));
    CHECK(!conn_may_go(CONN_NONE, CONN_STATES));
    CHECK(!strcmp(conn_state_name(CONN_STATES), "?"));
}

int main(void)
{
    test_session();
    test_connection();
    return UNIT_DONE("test_session_state");
}
