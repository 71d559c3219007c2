/* echo.c -- the persistent script of the benchmarks: one message per line,
 * echoed as it arrives.  Reads stdin a line at a time and writes each line
 * back to stdout with a flush per line, as a well-behaved session script
 * does (`WebSessionMessages lines`; websocketd runs it the same way). */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (fwrite(line, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
            return 1;
        }
    }
    free(line);
    return 0;
}
