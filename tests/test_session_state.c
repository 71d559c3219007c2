/* test_session_state.c -- unit tests for session_state.c: every pair of
 * states against the diagrams in session_state.h. */

#include <string.h>

#include "session_state.h"
#include "unit.h"

static void test_session(void)
{
    /* the legal moves, spelled out: one step forward, or to DONE */
    static const char *const legal[] = {
        "live>drain", "live>done", "drain>eof", "drain>done", "eof>term", "eof>done",
        "term>kill", "term>done", "kill>done",
    };
    int count = 0;

    for (int a = 0; a < SESS_STATES; a++) {
        for (int b = 0; b < SESS_STATES; b++) {
            char pair[32];
            int want = 0;

            strcpy(pair, sess_state_name((sess_state)a));
            strcat(pair, ">");
            strcat(pair, sess_state_name((sess_state)b));
            for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++) {
                want |= !strcmp(pair, legal[i]);
            }
            CHECK(sess_may_go((sess_state)a, (sess_state)b) == want);
            count += want;
        }
    }
    CHECK(count == (int)(sizeof(legal) / sizeof(legal[0])));
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
    int count = 0;

    for (int a = 0; a < CONN_STATES; a++) {
        for (int b = 0; b < CONN_STATES; b++) {
            char pair[32];
            int want = 0;

            strcpy(pair, conn_state_name((conn_state)a));
            strcat(pair, ">");
            strcat(pair, conn_state_name((conn_state)b));
            for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++) {
                want |= !strcmp(pair, legal[i]);
            }
            CHECK(conn_may_go((conn_state)a, (conn_state)b) == want);
            count += want;
        }
    }
    CHECK(count == (int)(sizeof(legal) / sizeof(legal[0])));
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
