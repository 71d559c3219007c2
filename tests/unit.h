/* unit.h -- a minimal test harness for the C unit tests.
 *
 * CHECK(cond) records one assertion; UNIT_DONE() prints the
 * "N passed, N failed" summary line and returns the exit status.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>

static int unit_passed, unit_failed;

#define CHECK(cond) do { \
        if (cond) { unit_passed++; } \
        else { unit_failed++; \
               fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

#define UNIT_DONE(name) \
    (printf("%s: %d passed, %d failed\n", (name), unit_passed, unit_failed), \
     unit_failed ? 1 : 0)

#endif /* UNIT_H */
