/* timers.h -- a fixed table of deadlines, no I/O.
 *
 * A keeper keeps every deadline of a session here, under an id the keeper
 * defines (keeper_session.h): the loop sleeps until the earliest one
 * (timers_wait_ms) and then acts on each that is due (timers_take), so
 * what it waits for and what it acts on cannot disagree.
 *
 * Contract:
 *  - ids are 0 .. TIMERS_MAX-1; a time of 0 means "not armed", so a
 *    deadline is any positive time (apr_time_t, microseconds);
 *  - timers_set replaces whatever the id held; timers_clear disarms it;
 *  - timers_take returns the id of a due timer (the earliest, the lowest id
 *    among equals) and disarms it, or -1 when none is due;
 *  - timers_wait_ms is how long to sleep: -1 with nothing armed, 0 when
 *    something is due, else the milliseconds until the earliest deadline,
 *    rounded up (never wakes early), at most INT_MAX.
 */
#ifndef WS_TIMERS_H
#define WS_TIMERS_H

#include "apr_time.h"

#define TIMERS_MAX 32

typedef struct {
    apr_time_t at[TIMERS_MAX];
} timer_table;

void timers_init(timer_table *t);
void timers_set(timer_table *t, int id, apr_time_t at);
void timers_clear(timer_table *t, int id);
/* The deadline of id, or 0 when it is not armed. */
apr_time_t timers_get(const timer_table *t, int id);
/* The earliest deadline armed, or 0. */
apr_time_t timers_next(const timer_table *t);
int timers_take(timer_table *t, apr_time_t now);
int timers_wait_ms(const timer_table *t, apr_time_t now);

#endif /* WS_TIMERS_H */
