/* timers.c -- a fixed table of deadlines (timers.h). */

#include <limits.h>
#include <string.h>

#include "timers.h"

void timers_init(timer_table *t)
{
    memset(t, 0, sizeof(*t));
}

void timers_set(timer_table *t, int id, apr_time_t at)
{
    if (id >= 0 && id < TIMERS_MAX) {
        t->at[id] = at > 0 ? at : 1;
    }
}

void timers_clear(timer_table *t, int id)
{
    if (id >= 0 && id < TIMERS_MAX) {
        t->at[id] = 0;
    }
}

apr_time_t timers_get(const timer_table *t, int id)
{
    return id >= 0 && id < TIMERS_MAX ? t->at[id] : 0;
}

static int earliest(const timer_table *t)
{
    int best = -1;

    for (int i = 0; i < TIMERS_MAX; i++) {
        if (t->at[i] && (best < 0 || t->at[i] < t->at[best])) {
            best = i;
        }
    }
    return best;
}

apr_time_t timers_next(const timer_table *t)
{
    int i = earliest(t);

    return i < 0 ? 0 : t->at[i];
}

int timers_take(timer_table *t, apr_time_t now)
{
    int i = earliest(t);

    if (i < 0 || t->at[i] > now) {
        return -1;
    }
    t->at[i] = 0;
    return i;
}

int timers_wait_ms(const timer_table *t, apr_time_t now)
{
    apr_time_t next = timers_next(t);
    apr_time_t us;

    if (!next) {
        return -1;
    }
    if (next <= now) {
        return 0;
    }
    us = next - now;
    if (us / 1000 >= INT_MAX) {
        return INT_MAX;
    }
    return (int)((us + 999) / 1000);
}
