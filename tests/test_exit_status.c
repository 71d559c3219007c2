/* test_exit_status.c -- unit tests for exit_status.c: every exit status and
 * signal maps to its own close code, and the reason says which. */

#include "exit_status.h"
#include "ws_codec.h"
#include "unit.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The wait status of a real child that exits with code, or (code < 0) is
 * killed by signal -code: no hand-made encodings. */
static int real_status(int code)
{
    int st = 0;
    pid_t p = fork();

    if (p == 0) {
        if (code < 0) {
            signal(-code, SIG_DFL);
            kill(getpid(), -code);
            pause();
        }
        _exit(code);
    }
    waitpid(p, &st, 0);
    return st;
}

static int is(int st, unsigned want, const char *want_reason)
{
    char reason[100];
    unsigned got = ws_exit_close(st, reason, sizeof(reason));

    if (got != want || strcmp(reason, want_reason) != 0) {
        fprintf(stderr, "status %#x: %u \"%s\", want %u \"%s\"\n",
                st, got, reason, want, want_reason);
        return 0;
    }
    return 1;
}

static void test_exits(void)
{
    char want[64];
    int n;

    CHECK(is(real_status(0), WS_CLOSE_NORMAL, "script exited with status 0"));
    CHECK(is(real_status(1), 4001, "script exited with status 1"));
    CHECK(is(real_status(2), 4002, "script exited with status 2"));
    CHECK(is(real_status(3), 4003, "script exited with status 3"));
    CHECK(is(real_status(255), 4255, "script exited with status 255"));
    for (n = 0; n <= 255; n++) {
        snprintf(want, sizeof(want), "script exited with status %d", n);
        CHECK(is(W_EXITCODE(n, 0), n ? 4000u + (unsigned)n : 1000u, want));
    }
}

static void test_signals(void)
{
    char want[64];
    int s;

    CHECK(is(real_status(-SIGKILL), 4309, "script killed by signal 9"));
    CHECK(is(real_status(-SIGTERM), 4315, "script killed by signal 15"));
    CHECK(is(real_status(-SIGHUP), 4301, "script killed by signal 1"));
    for (s = 1; s <= 64; s++) {
        snprintf(want, sizeof(want), "script killed by signal %d", s);
        CHECK(is(W_EXITCODE(0, s), 4300u + (unsigned)s, want));
        /* the same with a core dump */
        CHECK(is(W_EXITCODE(0, s) | 0x80, 4300u + (unsigned)s, want));
    }
}

static void test_other(void)
{
    char reason[8];

    /* stopped, continued: not an end the client can be told of precisely */
    CHECK(is(W_STOPCODE(SIGSTOP), WS_CLOSE_INTERNAL, "script ended"));
    CHECK(is(0xffff, WS_CLOSE_INTERNAL, "script ended"));
    /* a short buffer truncates the reason, never overflows */
    CHECK(ws_exit_close(W_EXITCODE(7, 0), reason, sizeof(reason)) == 4007);
    CHECK(strcmp(reason, "script ") == 0);
}

int main(void)
{
    test_exits();
    test_signals();
    test_other();
    return UNIT_DONE("test_exit_status");
}
