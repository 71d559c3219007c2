/* exit_status.c -- a script's wait status as a close code and reason. */

#include "exit_status.h"

#include <stdio.h>
#include <sys/wait.h>

#include "ws_codec.h"

unsigned ws_exit_close(int st, char *reason, size_t reason_len)
{
    if (WIFEXITED(st)) {
        snprintf(reason, reason_len, "script exited with status %d", WEXITSTATUS(st));
        return WEXITSTATUS(st) == 0 ? WS_CLOSE_NORMAL
                                    : WS_CLOSE_EXIT_BASE + (unsigned)WEXITSTATUS(st);
    }
    if (WIFSIGNALED(st)) {
        snprintf(reason, reason_len, "script killed by signal %d", WTERMSIG(st));
        return WS_CLOSE_SIGNAL_BASE + (unsigned)WTERMSIG(st);
    }
    snprintf(reason, reason_len, "script ended");
    return WS_CLOSE_INTERNAL;
}
