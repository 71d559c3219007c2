/* test_timers.c -- unit tests for timers.c: the contract in timers.h. */

#include <limits.h>

#include "timers.h"
#include "unit.h"

static void test_empty(void)
{
    timer_table t;

    timers_init(&t);
    CHECK(timers_next(&t) == 0);
    CHECK(timers_take(&t, 1000000) == -1);
    CHECK(timers_wait_ms(&t, 5) == -1);
}

static void test_order(void)
{
    timer_table t;

    timers_init(&t);
    timers_set(&t, 3, 5000);
    timers_set(&t, 1, 2000);
    timers_set(&t, 7, 2000);
    CHECK(timers_next(&t) == 2000);
    CHECK(timers_get(&t, 3) == 5000);
    CHECK(timers_take(&t, 1999) == -1);         /* nothing due yet */
    CHECK(timers_take(&t, 2000) == 1);          /* equal times: lowest id first */
    CHECK(timers_take(&t, 2000) == 7);
    CHECK(timers_take(&t, 2000) == -1);
    CHECK(timers_get(&t, 1) == 0);              /* taken: disarmed */
    CHECK(timers_take(&t, 9000) == 3);
    CHECK(timers_take(&t, 9000) == -1);
}

static void test_set_clear(void)
{
    timer_table t;

    timers_init(&t);
    timers_set(&t, 0, 100);
    timers_set(&t, 0, 900);                     /* replaces */
    CHECK(timers_next(&t) == 900);
    timers_clear(&t, 0);
    CHECK(timers_next(&t) == 0);
    timers_set(&t, 2, 0);                       /* "at once" is still armed */
    CHECK(timers_get(&t, 2) > 0);
    CHECK(timers_take(&t, 1) == 2);
    timers_set(&t, -1, 5);                      /* out of range: ignored */
    timers_set(&t, TIMERS_MAX, 5);
    CHECK(timers_next(&t) == 0);
    timers_set(&t, TIMERS_MAX - 1, 5);
    CHECK(timers_take(&t, 5) == TIMERS_MAX - 1);
}

static void test_wait(void)
{
    timer_table t;

    timers_init(&t);
    timers_set(&t, 4, 10000);
    CHECK(timers_wait_ms(&t, 10000) == 0);
    CHECK(timers_wait_ms(&t, 20000) == 0);
    CHECK(timers_wait_ms(&t, 9999) == 1);       /* rounded up: never early */
    CHECK(timers_wait_ms(&t, 9000) == 1);
    CHECK(timers_wait_ms(&t, 8999) == 2);
    CHECK(timers_wait_ms(&t, 0) == 10);
    timers_set(&t, 4, (apr_time_t)INT_MAX * 1000 * 4);
    CHECK(timers_wait_ms(&t, 1) == INT_MAX);
}

int main(void)
{
    test_empty();
    test_order();
    test_set_clear();
    test_wait();
    return UNIT_DONE("test_timers");
}
