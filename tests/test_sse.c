/* test_sse.c -- unit tests for the Server-Sent Events encoder. */

#include <stdlib.h>
#include <string.h>

#include "apr_base64.h"

#include "sse.h"
#include "ws_codec.h"
#include "unit.h"

static bytebuf out;     /* the last event encoded */

/* Encode one server frame built from opcode and payload; return the event
 * as a NUL-terminated string (valid until the next call). */
static const char *event_of(int opcode, const void *payload, size_t len)
{
    unsigned char *frame = malloc(WS_MAX_HEADER + len + 1);
    size_t h = ws_frame_header(frame, 1, opcode, len, NULL);
    sse_frame f;
    size_t whole;

    memcpy(frame + h, payload, len);
    CHECK(sse_frame_whole(frame, h + len - (len ? 1 : 0), &f) == (len ? 0 : h));
    whole = sse_frame_whole(frame, h + len, &f);
    CHECK(whole == h + len);
    CHECK(f.opcode == opcode && f.len == len);
    bytebuf_clear(&out);
    sse_encode(&out, &f);
    bytebuf_append(&out, "", 1);
    free(frame);
    return (const char *)out.data + out.off;
}

static const char *close_event(unsigned code, const char *reason)
{
    unsigned char pl[WS_MAX_CONTROL];
    size_t n = ws_close_payload(pl, code, reason);

    return event_of(WS_OP_CLOSE, pl, n);
}

/* The base64 line of an event "event: <name>\ndata: <b64>\n\n" decoded. */
static size_t decode_line(const char *ev, const char *name, unsigned char *out)
{
    char head[64], *b64;
    size_t hl;
    int n;

    snprintf(head, sizeof(head), "event: %s\ndata: ", name);
    hl = strlen(head);
    if (strncmp(ev, head, hl)) {
        return (size_t)-1;
    }
    b64 = strdup(ev + hl);
    if (strlen(b64) < 2 || strcmp(b64 + strlen(b64) - 2, "\n\n")) {
        free(b64);
        return (size_t)-1;
    }
    b64[strlen(b64) - 2] = '\0';
    CHECK(strchr(b64, '\n') == NULL);
    n = apr_base64_decode_binary(out, b64);
    free(b64);
    return (size_t)n;
}

static void test_text(void)
{
    CHECK(!strcmp(event_of(WS_OP_TEXT, "Dhello", 6), "data: Dhello\n\n"));
    CHECK(!strcmp(event_of(WS_OP_TEXT, "R0 1048576", 10), "data: R0 1048576\n\n"));
    CHECK(!strcmp(event_of(WS_OP_TEXT, "Da\nb\n", 5), "data: Da\ndata: b\ndata: \n\n"));
    CHECK(!strcmp(event_of(WS_OP_TEXT, "D", 1), "data: D\n\n"));
    CHECK(!strcmp(event_of(WS_OP_TEXT, "D lead", 6), "data: D lead\n\n"));
    CHECK(!strcmp(event_of(WS_OP_TEXT, "", 0), "data: \n\n"));
    /* A CR anywhere: base64 of the text. */
    {
        unsigned char back[64];
        const char *ev = event_of(WS_OP_TEXT, "Dline\r\n", 7);

        CHECK(decode_line(ev, "text64", back) == 7 && !memcmp(back, "Dline\r\n", 7));
    }
}

static void test_binary(void)
{
    unsigned char back[3 * 4096 * 3 + 64];
    unsigned char *data = malloc(sizeof(back));
    size_t sizes[] = { 1, 2, 3, 4, 5, 3 * 4096 - 1, 3 * 4096, 3 * 4096 + 1, 3 * 4096 * 3 + 7 };
    unsigned seed = 7;

    for (size_t i = 0; i < sizeof(back); i++) {
        data[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
    }
    data[0] = 'D';
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        const char *ev = event_of(WS_OP_BINARY, data, sizes[k]);

        CHECK(decode_line(ev, "binary", back) == sizes[k]);
        CHECK(!memcmp(back, data, sizes[k]));
    }
    free(data);
}

static void test_close(void)
{
    CHECK(!strcmp(close_event(1000, ""), "event: close\ndata: 1000\n\n"));
    CHECK(!strcmp(close_event(4003, "script exited with status 3"),
                  "event: close\ndata: 4003 script exited with status 3\n\n"));
    CHECK(!strcmp(close_event(1002, "bad\r\nthing"), "event: close\ndata: 1002 bad  thing\n\n"));
    CHECK(!strcmp(event_of(WS_OP_CLOSE, "", 0), "event: close\ndata: 1005\n\n"));
    /* ping and pong have no event */
    CHECK(!strcmp(event_of(WS_OP_PING, "x", 1), ""));
    CHECK(!strcmp(event_of(WS_OP_PONG, "", 0), ""));
}

static void test_frames(void)
{
    unsigned char big[70000 + WS_MAX_HEADER];
    size_t h = ws_frame_header(big, 1, WS_OP_BINARY, 70000, NULL);
    sse_frame f;

    CHECK(h == 10);
    CHECK(sse_frame_whole(big, 1, &f) == 0);
    CHECK(sse_frame_whole(big, 9, &f) == 0);
    CHECK(sse_frame_whole(big, h + 69999, &f) == 0);
    CHECK(sse_frame_whole(big, h + 70000, &f) == h + 70000 && f.len == 70000);
    h = ws_frame_header(big, 1, WS_OP_TEXT, 300, NULL);
    CHECK(h == 4);
    CHECK(sse_frame_whole(big, 3, &f) == 0);
    CHECK(sse_frame_whole(big, h + 300 + 5, &f) == h + 300 && f.opcode == WS_OP_TEXT);
}

static void test_comment(void)
{
    bytebuf b = { 0 };

    sse_comment(&b, "websession.v1");
    bytebuf_append(&b, "", 1);
    CHECK(!strcmp((char *)b.data, ": websession.v1\n\n"));
    bytebuf_free(&b);
}

int main(void)
{
    test_text();
    test_binary();
    test_close();
    test_frames();
    test_comment();
    bytebuf_free(&out);
    return UNIT_DONE("test_sse");
}
