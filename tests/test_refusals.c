/* test_refusals.c -- unit tests for refusals.c: the contract in refusals.h. */

#include "refusals.h"
#include "unit.h"

#define SEC(s) apr_time_from_sec(s)
#define T0 SEC(1000000)

/* The first refusal is logged at once, alone. */
static void test_first(void)
{
    ws_refusals r = { 0, 0 };
    unsigned long n = 0;

    CHECK(refusals_deadline(&r) == 0);
    CHECK(refusals_due(&r, T0) == 0);
    CHECK(refusals_note(&r, T0, &n) == 1);
    CHECK(n == 1);
    CHECK(refusals_deadline(&r) == 0);          /* nothing left to say */
    CHECK(refusals_due(&r, T0 + SEC(60)) == 0);
}

/* A flood: one line at its start, one for the rest once the quiet time
 * has passed, and each refusal counted exactly once. */
static void test_flood(void)
{
    ws_refusals r = { 0, 0 };
    unsigned long n = 0, lines = 0, reported = 0;

    for (int i = 0; i < 2000; i++) {
        apr_time_t now = T0 + i * 1000;         /* 2,000 in 2 s */

        if (refusals_note(&r, now, &n)) {
            lines++;
            reported += n;
        }
        n = refusals_due(&r, now);
        if (n) {
            lines++;
            reported += n;
        }
    }
    CHECK(lines == 1);
    CHECK(reported == 1);
    CHECK(refusals_deadline(&r) == T0 + REFUSALS_QUIET);
    CHECK(refusals_due(&r, T0 + REFUSALS_QUIET - 1) == 0);     /* not yet */
    n = refusals_due(&r, T0 + REFUSALS_QUIET);
    CHECK(n == 1999);
    CHECK(refusals_deadline(&r) == 0);
    CHECK(refusals_due(&r, T0 + SEC(100)) == 0);
}

/* An endless flood: at most one line per quiet period, whichever way it
 * comes (note or due), nothing lost. */
static void test_endless(void)
{
    ws_refusals r = { 0, 0 };
    unsigned long n, lines = 0, reported = 0, total = 0;
    apr_time_t last_line = 0;
    int spaced = 1;

    for (apr_time_t now = T0; now < T0 + SEC(95); now += 3000) {
        total++;
        if (refusals_note(&r, now, &n)) {
            spaced &= last_line == 0 || now - last_line >= REFUSALS_QUIET;
            last_line = now;
            lines++;
            reported += n;
        }
        if ((n = refusals_due(&r, now)) != 0) {
            spaced &= now - last_line >= REFUSALS_QUIET;
            last_line = now;
            lines++;
            reported += n;
        }
    }
    n = refusals_due(&r, last_line + REFUSALS_QUIET);
    reported += n;
    lines += n != 0;
    CHECK(spaced);
    CHECK(lines >= 10 && lines <= 11);
    CHECK(reported == total);
}

/* After a quiet period the next refusal is logged at once again. */
static void test_quiet_again(void)
{
    ws_refusals r = { 0, 0 };
    unsigned long n = 0;

    CHECK(refusals_note(&r, T0, &n) == 1);
    CHECK(refusals_note(&r, T0 + SEC(3), &n) == 0);
    CHECK(refusals_due(&r, T0 + SEC(10)) == 1);
    CHECK(refusals_note(&r, T0 + SEC(15), &n) == 0);           /* 5 s after that line */
    CHECK(refusals_due(&r, T0 + SEC(19)) == 0);
    CHECK(refusals_due(&r, T0 + SEC(20)) == 1);
    CHECK(refusals_note(&r, T0 + SEC(31), &n) == 1);           /* quiet for 11 s */
    CHECK(n == 1);
}

/* Before an exit, what waits is taken whatever the time, once. */
static void test_drain(void)
{
    ws_refusals r = { 0, 0 };
    unsigned long n = 0;

    CHECK(refusals_drain(&r) == 0);
    CHECK(refusals_note(&r, T0, &n) == 1);
    CHECK(refusals_note(&r, T0 + 1, &n) == 0);
    CHECK(refusals_note(&r, T0 + 2, &n) == 0);
    CHECK(refusals_drain(&r) == 2);
    CHECK(refusals_deadline(&r) == 0);
    CHECK(refusals_drain(&r) == 0);
    CHECK(refusals_due(&r, T0 + SEC(60)) == 0);
}

int main(void)
{
    test_first();
    test_flood();
    test_endless();
    test_quiet_again();
    test_drain();
    return UNIT_DONE("test_refusals");
}
