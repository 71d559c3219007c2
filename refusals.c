/* refusals.c -- the refusal log's rate (refusals.h). */

#include "refusals.h"

int refusals_note(ws_refusals *r, apr_time_t now, unsigned long *n)
{
    r->counted++;
    if (r->last != 0 && now < r->last + REFUSALS_QUIET) {
        return 0;
    }
    *n = r->counted;
    r->counted = 0;
    r->last = now;
    return 1;
}

apr_time_t refusals_deadline(const ws_refusals *r)
{
    return r->counted ? r->last + REFUSALS_QUIET : 0;
}

unsigned long refusals_drain(ws_refusals *r)
{
    unsigned long n = r->counted;

    r->counted = 0;
    return n;
}

unsigned long refusals_due(ws_refusals *r, apr_time_t now)
{
    unsigned long n = r->counted;

    if (!n || now < r->last + REFUSALS_QUIET) {
        return 0;
    }
    r->counted = 0;
    r->last = now;
    return n;
}
