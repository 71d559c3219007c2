/* flow.c -- when a keeper reads, and when it acknowledges (flow.h). */

#include "flow.h"

size_t flow_stdout_room(const flow_cfg *f, size_t queued_to_client)
{
    return queued_to_client < f->window ? f->window - queued_to_client : 0;
}

int flow_read_client(const flow_cfg *f, size_t to_script)
{
    if (!f->v1) {
        return to_script < f->window;
    }
    return to_script < 2 * f->window + f->max_message;
}

int flow_may_ack(const flow_cfg *f, size_t to_script)
{
    return to_script < f->window;
}
