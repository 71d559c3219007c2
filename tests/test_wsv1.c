/* test_wsv1.c -- unit tests for websession.v1 message parsing. */

#include <string.h>

#include "wsv1.h"
#include "unit.h"

static wsv1_type parse(const char *s, int binary, wsv1_msg *m)
{
    return wsv1_parse((const unsigned char *)s, strlen(s), binary, m);
}

int main(void)
{
    wsv1_msg m;
    char big[200];

    CHECK(parse("Dhello", 0, &m) == WSV1_DATA && m.len == 5 && !memcmp(m.payload, "hello", 5));
    CHECK(parse("D", 0, &m) == WSV1_DATA && m.len == 0);
    CHECK(parse("D\x01\x02", 1, &m) == WSV1_DATA && m.len == 2);
    CHECK(parse("A0", 0, &m) == WSV1_ACK && m.n == 0);
    CHECK(parse("A18446744073709551615", 0, &m) == WSV1_ACK && m.n == UINT64_MAX);
    CHECK(parse("A18446744073709551616", 0, &m) == WSV1_BAD);
    CHECK(parse("A", 0, &m) == WSV1_BAD);
    CHECK(parse("A01", 0, &m) == WSV1_BAD);
    CHECK(parse("A-1", 0, &m) == WSV1_BAD);
    CHECK(parse("A1 ", 0, &m) == WSV1_BAD);
    CHECK(parse("A12", 1, &m) == WSV1_BAD);          /* control in a binary frame */
    CHECK(parse("R42", 0, &m) == WSV1_RESUME && m.n == 42 && m.window == 0 && !m.has_window);
    CHECK(parse("R7 1048576", 0, &m) == WSV1_RESUME && m.n == 7 && m.window == 1048576
          && m.has_window);
    CHECK(parse("R7 0", 0, &m) == WSV1_RESUME && m.window == 0 && m.has_window);
    CHECK(parse("R7 ", 0, &m) == WSV1_BAD);
    CHECK(parse("R 7", 0, &m) == WSV1_BAD);
    CHECK(parse("R7 x", 0, &m) == WSV1_BAD);
    CHECK(parse("P", 0, &m) == WSV1_PING);
    CHECK(parse("Px", 0, &m) == WSV1_BAD);
    CHECK(parse("Iabc", 0, &m) == WSV1_ID && m.len == 3);
    CHECK(parse("I", 0, &m) == WSV1_BAD);
    CHECK(parse("C1000", 0, &m) == WSV1_CLOSE && m.n == 1000 && m.len == 0);
    CHECK(parse("C4001 done here", 0, &m) == WSV1_CLOSE && m.n == 4001 && m.len == 9
          && !memcmp(m.payload, "done here", 9));
    CHECK(parse("C3000 ", 0, &m) == WSV1_CLOSE && m.n == 3000 && m.len == 0);
    CHECK(parse("C1001", 0, &m) == WSV1_BAD);        /* reserved for the server */
    CHECK(parse("C2999", 0, &m) == WSV1_BAD);
    CHECK(parse("C5000", 0, &m) == WSV1_BAD);
    CHECK(parse("C", 0, &m) == WSV1_BAD);
    CHECK(parse("C 1000", 0, &m) == WSV1_BAD);
    CHECK(parse("C1000", 1, &m) == WSV1_BAD);        /* control in a binary frame */
    CHECK(parse("", 0, &m) == WSV1_BAD && m.error != NULL);
    CHECK(parse("X1", 0, &m) == WSV1_BAD);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "C1000 ", 6);
    big[6 + 123] = '\0';
    CHECK(parse(big, 0, &m) == WSV1_CLOSE && m.len == 123);   /* longer than 125 in all */
    big[6 + 123] = 'x';
    big[6 + 124] = '\0';
    CHECK(parse(big, 0, &m) == WSV1_BAD);
    memset(big, '1', sizeof(big) - 1);
    big[0] = 'A';
    big[sizeof(big) - 1] = '\0';
    CHECK(parse(big, 0, &m) == WSV1_BAD);
    /* Control messages other than C fit a control frame: 125 bytes at most. */
    memset(big, 'a', sizeof(big) - 1);
    big[0] = 'I';
    big[125] = '\0';
    CHECK(parse(big, 0, &m) == WSV1_ID && m.len == 124);
    big[125] = 'a';
    big[126] = '\0';
    CHECK(parse(big, 0, &m) == WSV1_BAD && m.error && strstr(m.error, "too long"));
    /* Data in a binary frame is data; nothing else may be binary. */
    CHECK(parse("Iabc", 1, &m) == WSV1_BAD && m.error && strstr(m.error, "binary"));
    CHECK(parse("R0", 1, &m) == WSV1_BAD && m.error && strstr(m.error, "binary"));
    return UNIT_DONE("test_wsv1");
}
