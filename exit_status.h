/* exit_status.h -- how a script's end is told to its client, no I/O.
 *
 * Contract:
 *  - ws_exit_close() maps a wait status (as waitpid gives it) to the close
 *    code and reason the client receives (docs/PROTOCOL.md, "Close codes"):
 *    exit 0 -> 1000; exit N (1-255) -> 4000 + N; killed by signal S ->
 *    4300 + S; anything else (stopped, continued) -> 1011.  The two ranges
 *    never overlap: exit codes end at 4255, signals (1-64) start at 4301.
 *  - The reason ("script exited with status N", "script killed by signal
 *    S") is written to reason, truncated to reason_len bytes with its NUL;
 *    it is also what the keeper logs.
 */
#ifndef WS_EXIT_STATUS_H
#define WS_EXIT_STATUS_H

#include <stddef.h>

#define WS_CLOSE_EXIT_BASE   4000u    /* + exit status 1-255 */
#define WS_CLOSE_SIGNAL_BASE 4300u    /* + signal number */

unsigned ws_exit_close(int wait_status, char *reason, size_t reason_len);

#endif /* WS_EXIT_STATUS_H */
