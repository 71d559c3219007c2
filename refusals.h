/* refusals.h -- how often a process logs the peers it refuses, no I/O.
 *
 * Any local user can connect to the module's abstract sockets (their names
 * are listed in /proc/net/unix), and each connection from a process of
 * another user is refused.  Logging every refusal let one user write the
 * error log full (hundreds of thousands of lines in seconds).  So each
 * process logs refusals at a bounded rate:
 *
 * Contract:
 *  - refusals_note() counts one refusal at now.  It returns nonzero when a
 *    line is due now: the first refusal the process sees, and the first
 *    after REFUSALS_QUIET of silence since the last line.  Then *n is the
 *    number the line reports, this one included; the caller logs it.
 *  - Refusals within REFUSALS_QUIET of the last line are only counted.
 *    refusals_deadline() says when they are due (0: none waits);
 *    refusals_due() returns their number once that time has come (and 0
 *    before, and when none waits), and the caller logs one line for them.
 *  - So a process writes at most one line per REFUSALS_QUIET, whatever the
 *    number of refusals, and every refusal is in exactly one line.
 */
#ifndef WS_REFUSALS_H
#define WS_REFUSALS_H

#include "apr_time.h"

#define REFUSALS_QUIET_SECONDS 10
#define REFUSALS_QUIET apr_time_from_sec(REFUSALS_QUIET_SECONDS)

typedef struct {
    apr_time_t last;            /* when the last line was due, 0 if never */
    unsigned long counted;      /* refusals since, not reported yet */
} ws_refusals;

int refusals_note(ws_refusals *r, apr_time_t now, unsigned long *n);
apr_time_t refusals_deadline(const ws_refusals *r);
unsigned long refusals_due(ws_refusals *r, apr_time_t now);
/* The refusals not reported yet, whatever the time (the process is about
 * to exit: one last line for them), and none waits any more. */
unsigned long refusals_drain(ws_refusals *r);

#endif /* WS_REFUSALS_H */
