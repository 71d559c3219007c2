/* test_flow.c -- unit tests for flow.c: the bounds flow.h states, and a
 * simulated bulk transfer through a script that echoes (cat) in which no
 * side ever waits for ever. */

#include <string.h>

#include "flow.h"
#include "unit.h"

static void test_rules(void)
{
    flow_cfg v1 = { 4096, 65536, 1 }, plain = { 4096, 65536, 0 };

    CHECK(flow_stdout_room(&v1, 0) == 4096);
    CHECK(flow_stdout_room(&v1, 4000) == 96);
    CHECK(flow_stdout_room(&v1, 4096) == 0);
    CHECK(flow_stdout_room(&v1, 100000) == 0);
    CHECK(flow_may_ack(&v1, 4095));
    CHECK(!flow_may_ack(&v1, 4096));
    CHECK(flow_read_client(&v1, 2 * 4096 + 65536 - 1));
    CHECK(!flow_read_client(&v1, 2 * 4096 + 65536));
    CHECK(flow_read_client(&plain, 4095));
    CHECK(!flow_read_client(&plain, 4096));
}

/* A websession.v1 client sends n messages of size len to a script that
 * echoes each (cat, with a pipe of pipe_cap bytes each way), and
 * acknowledges what comes back -- in its stream to the keeper, behind its
 * data, so the keeper sees an ack only when it reads the client.  The
 * keeper follows read_client and may_ack.  Each step moves what may move.
 * Returns the steps until every echo is back, or 0 when nothing could move
 * (a deadlock); *sn gets the largest queues seen. */
typedef struct {
    size_t to_script_max, to_client_max, client_unacked_max;
} seen;

typedef int (*read_fn)(const flow_cfg *, size_t);

static unsigned long bulk(const flow_cfg *f, read_fn read_client, read_fn may_ack,
                          size_t n, size_t len, size_t pipe_cap, seen *sn)
{
    size_t sent = 0, c_unacked = 0, server_rx = 0, server_acked = 0;
    size_t to_script = 0, stdin_pipe = 0, stdout_pipe = 0, held = 0;
    size_t out_queued = 0, out_acked = 0, c_received = 0;
    unsigned long steps = 0;

    memset(sn, 0, sizeof(*sn));
    while (c_received < n * len) {
        int moved = 0;

        steps++;
        /* the client sends a message while its window has room */
        if (sent < n && c_unacked < f->window) {
            sent++;
            c_unacked += len;
            moved = 1;
        }
        /* the keeper reads the client: the acks it sent, then a message */
        if ((out_acked < c_received || server_rx < sent * len)
            && read_client(f, to_script)) {
            out_acked = c_received;
            if (server_rx < sent * len) {
                server_rx += len;
                to_script += len;
            }
            moved = 1;
        }
        /* the keeper acknowledges what it has, when it may */
        if (server_acked < server_rx && may_ack(f, to_script)) {
            c_unacked -= server_rx - server_acked;
            server_acked = server_rx;
            moved = 1;
        }
        /* the keeper writes to the script's stdin */
        if (to_script && stdin_pipe < pipe_cap) {
            size_t k = pipe_cap - stdin_pipe < to_script ? pipe_cap - stdin_pipe : to_script;
            stdin_pipe += k;
            to_script -= k;
            moved = 1;
        }
        /* cat reads only once it has written what it read before */
        if (stdin_pipe && !held) {
            held = stdin_pipe;
            stdin_pipe = 0;
            moved = 1;
        }
        if (held && stdout_pipe < pipe_cap) {
            size_t k = pipe_cap - stdout_pipe < held ? pipe_cap - stdout_pipe : held;
            stdout_pipe += k;
            held -= k;
            moved = 1;
        }
        /* the keeper reads stdout within the room its window leaves, and
         * the client receives it at once */
        if (stdout_pipe) {
            size_t room = flow_stdout_room(f, out_queued - out_acked);
            size_t k = room < stdout_pipe ? room : stdout_pipe;

            if (k) {
                out_queued += k;
                c_received += k;
                stdout_pipe -= k;
                moved = 1;
            }
        }
        if (to_script > sn->to_script_max) sn->to_script_max = to_script;
        if (out_queued - out_acked > sn->to_client_max) sn->to_client_max = out_queued - out_acked;
        if (c_unacked > sn->client_unacked_max) sn->client_unacked_max = c_unacked;
        if (!moved) {
            return 0;
        }
    }
    return steps;
}

/* What the keeper did before flow.h: it read the client only while less
 * than the buffer waited for the script, and acknowledged on receipt. */
static int old_read_client(const flow_cfg *f, size_t to_script)
{
    return to_script < f->window;
}

static int always(const flow_cfg *f, size_t to_script)
{
    (void)f;
    (void)to_script;
    return 1;
}

static void test_bulk(void)
{
    static const size_t lens[] = { 1, 100, 1024, 4096, 32768, 65536 };
    flow_cfg f = { 4096, 65536, 1 };
    seen sn;
    int all = 1, old_stalls = 0;

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (size_t pipe = 512; pipe <= 65536; pipe *= 4) {
            if (!bulk(&f, flow_read_client, flow_may_ack, 300, lens[i], pipe, &sn)
                || sn.to_script_max > 2 * f.window + f.max_message
                || sn.to_client_max > f.window
                || sn.client_unacked_max > f.window + lens[i]) {
                fprintf(stderr, "bulk 300 x %zu, pipe %zu: stalled or over a bound:"
                        " to_script %zu, to_client %zu, unacked %zu\n", lens[i], pipe,
                        sn.to_script_max, sn.to_client_max, sn.client_unacked_max);
                all = 0;
            }
            if (!bulk(&f, old_read_client, always, 300, lens[i], pipe, &sn)) {
                old_stalls++;
            }
        }
    }
    CHECK(all);
    /* The simulation can see the deadlock the old rules had. */
    CHECK(old_stalls > 0);
}

int main(void)
{
    test_rules();
    test_bulk();
    return UNIT_DONE("test_flow");
}
