/* flow.h -- a keeper's flow-control decisions, no I/O.
 *
 * Two directions, each with a bound, and one rule that keeps them from
 * waiting on each other: the keeper never stops reading a websession.v1
 * client that keeps to its window, so the acknowledgements that client
 * sends are always read, even while the script's stdin is full.
 *
 * Contract (W: WebSessionBuffer, the window; M: WebSessionMaxMessage):
 *  - Toward the client: the keeper reads the script's output only while
 *    the bytes queued and not yet acknowledged (not yet written, without
 *    websession.v1) are below W, and never more than the room left; a
 *    message already begun is finished, so the queue holds at most W + M.
 *  - Toward the script, websession.v1: the keeper acknowledges the client's
 *    messages (A, and the count a POST is answered with) only while less
 *    than W waits for the script's stdin.  A client sends at most W past
 *    its last acknowledgement, plus one message, so that queue holds at
 *    most 2W + M; the keeper reads the client while it holds less, and
 *    stops only for a client that does not keep to its window.
 *  - Toward the script, plain WebSocket: no acknowledgements, so TCP is the
 *    brake: the keeper reads the client while less than W waits.
 */
#ifndef WS_FLOW_H
#define WS_FLOW_H

#include <stddef.h>

typedef struct {
    size_t window;              /* W */
    size_t max_message;         /* M */
    int v1;                     /* the client speaks websession.v1 */
} flow_cfg;

/* How many bytes of the script's output may be read now (0: wait). */
size_t flow_stdout_room(const flow_cfg *f, size_t queued_to_client);
/* May the client's stream be read now? */
int flow_read_client(const flow_cfg *f, size_t to_script);
/* May the client's messages be acknowledged now (A, or a POST's count)?
 * Also: may a POST's next data message be taken. */
int flow_may_ack(const flow_cfg *f, size_t to_script);

#endif /* WS_FLOW_H */
