/* ws_codec.h -- RFC 6455 framing, server side, without any I/O.
 *
 * Contract:
 *  - ws_parser consumes every byte it is given (it keeps partial headers and
 *    the message being assembled itself) and reports one event per call.
 *    The caller loops: feed the unconsumed rest until WS_EV_NEED_MORE.
 *  - It enforces the client rules of RFC 6455: masking (when required),
 *    RSV bits (no extension is ever negotiated), known opcodes, control frames
 *    unfragmented and <= 125 bytes, continuation rules, and a close payload
 *    that is empty or a valid code plus UTF-8 reason.  Each violation is a
 *    WS_EV_ERROR carrying the close code to send: 1002 protocol, 1007 invalid
 *    UTF-8 (checked incrementally, failing as soon as a prefix is invalid,
 *    across fragments), 1009 message over max_message.
 *  - After WS_EV_CLOSE or WS_EV_ERROR the parser is finished: further feeds
 *    consume nothing and return the same event type again.
 *  - Event data points into the parser and stays valid until the next feed.
 *  - The encoders write unmasked server frames (or masked client frames for
 *    test tools and the load generator).
 */
#ifndef WS_CODEC_H
#define WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT   0x0
#define WS_OP_TEXT   0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE  0x8
#define WS_OP_PING   0x9
#define WS_OP_PONG   0xA

#define WS_MAX_HEADER 14          /* 2 + 8 (length) + 4 (mask) */
#define WS_MAX_CONTROL 125

#define WS_CLOSE_NORMAL        1000
#define WS_CLOSE_GOING_AWAY    1001
#define WS_CLOSE_PROTOCOL      1002
#define WS_CLOSE_UNSUPPORTED   1003
#define WS_CLOSE_NO_STATUS     1005
#define WS_CLOSE_ABNORMAL      1006
#define WS_CLOSE_INVALID_DATA  1007
#define WS_CLOSE_POLICY        1008
#define WS_CLOSE_TOO_BIG       1009
#define WS_CLOSE_INTERNAL      1011

typedef enum {
    WS_EV_NEED_MORE = 0,   /* every byte consumed, no complete event yet */
    WS_EV_MESSAGE,         /* a complete text or binary message */
    WS_EV_PING,            /* payload: data/len; the caller answers with a pong */
    WS_EV_PONG,
    WS_EV_CLOSE,           /* code (1005 when the frame had no payload), reason */
    WS_EV_ERROR            /* code: close code to send; reason: short text */
} ws_event_type;

typedef struct {
    ws_event_type type;
    int binary;                    /* WS_EV_MESSAGE: 1 binary, 0 text */
    const unsigned char *data;     /* message, ping/pong payload, close reason */
    size_t len;
    unsigned code;                 /* WS_EV_CLOSE / WS_EV_ERROR */
    const char *reason;            /* WS_EV_ERROR: static text for logs and the close frame */
} ws_event;

typedef struct ws_parser ws_parser;

/* max_message: largest assembled message accepted (bytes, > 0).
 * require_mask: 1 for a server parsing client frames, 0 for a client. */
ws_parser *ws_parser_create(size_t max_message, int require_mask);
void ws_parser_destroy(ws_parser *p);

/* Consumes from buf[0..len) up to and including the frame that completes an
 * event; *used tells how many bytes.  Returns ev->type. */
ws_event_type ws_parser_feed(ws_parser *p, const unsigned char *buf, size_t len,
                             size_t *used, ws_event *ev);

/* Frame header for a frame of len payload bytes.  mask == NULL writes an
 * unmasked (server) frame; otherwise the 4 mask bytes are included and the
 * caller masks the payload with ws_mask().  Returns the header length. */
size_t ws_frame_header(unsigned char out[WS_MAX_HEADER], int fin, int opcode,
                       uint64_t len, const unsigned char *mask);

/* XOR buf with mask, as if buf started at payload offset `offset`. */
void ws_mask(unsigned char *buf, size_t len, const unsigned char mask[4],
             uint64_t offset);

/* Close frame payload: 2-byte code plus as much of reason as fits in 123
 * bytes, cut on a UTF-8 character boundary.  Returns the payload length. */
size_t ws_close_payload(unsigned char out[WS_MAX_CONTROL], unsigned code,
                        const char *reason);

/* 1 if code may appear in a close frame sent on the wire (RFC 6455 7.4). */
int ws_close_code_valid(unsigned code);

/* Incremental UTF-8 validation.  state starts at WS_UTF8_ACCEPT.
 * ws_utf8_step returns WS_UTF8_REJECT as soon as the bytes seen cannot be a
 * prefix of valid UTF-8; WS_UTF8_ACCEPT at a character boundary; any other
 * value inside a character. */
#define WS_UTF8_ACCEPT 0u
#define WS_UTF8_REJECT 1u
uint32_t ws_utf8_step(uint32_t state, const unsigned char *s, size_t n);
int ws_utf8_valid(const unsigned char *s, size_t n);

#endif /* WS_CODEC_H */
