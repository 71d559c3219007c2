/* test_handshake.c -- unit tests for ws_handshake.c: token lists, the check
 * order of ws_hs_check, Sec-WebSocket-Accept, same-origin, session ids. */

#include "ws_handshake.h"
#include "unit.h"

#include <stdint.h>
#include <string.h>

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static ws_hs_request good(void)
{
    ws_hs_request rq;
    rq.method = "GET";
    rq.http11 = 1;
    rq.upgrade = "websocket";
    rq.connection = "Upgrade";
    rq.version = "13";
    rq.key = RFC_KEY;
    return rq;
}

static void test_tokens(void)
{
    CHECK(ws_hs_has_token("upgrade", "upgrade"));
    CHECK(ws_hs_has_token("Upgrade", "upgrade"));
    CHECK(ws_hs_has_token("UPGRADE", "upgrade"));
    CHECK(ws_hs_has_token("upgrade", "UpGrAdE"));
    CHECK(ws_hs_has_token("keep-alive, Upgrade", "upgrade"));
    CHECK(ws_hs_has_token("Upgrade, keep-alive", "upgrade"));
    CHECK(ws_hs_has_token("keep-alive,Upgrade", "upgrade"));
    CHECK(ws_hs_has_token("  ,upgrade,", "upgrade"));
    CHECK(ws_hs_has_token(",,, upgrade ,,,", "upgrade"));
    CHECK(ws_hs_has_token("\tupgrade\t", "upgrade"));
    CHECK(ws_hs_has_token("close , upgrade , keep-alive", "upgrade"));
    CHECK(ws_hs_has_token("a,b,c,d,e,upgrade", "upgrade"));
    CHECK(!ws_hs_has_token("upgraded", "upgrade"));
    CHECK(!ws_hs_has_token("xupgrade", "upgrade"));
    CHECK(!ws_hs_has_token("upgrade2, keep-alive", "upgrade"));
    CHECK(!ws_hs_has_token("upgrad", "upgrade"));
    CHECK(!ws_hs_has_token("up grade", "upgrade"));
    CHECK(!ws_hs_has_token("keep-alive", "upgrade"));
    CHECK(!ws_hs_has_token("upgrade;q=1", "upgrade"));
    CHECK(!ws_hs_has_token("\"upgrade\"", "upgrade"));
    CHECK(!ws_hs_has_token("", "upgrade"));
    CHECK(!ws_hs_has_token(" , ,, ", "upgrade"));
    CHECK(!ws_hs_has_token(NULL, "upgrade"));
    CHECK(!ws_hs_has_token("upgrade", ""));
    CHECK(!ws_hs_has_token("upgrade", NULL));
    CHECK(!ws_hs_has_token(",", ""));
    CHECK(ws_hs_has_token("websocket", "websocket"));
    CHECK(ws_hs_has_token("WebSocket", "websocket"));
    CHECK(ws_hs_has_token("h2c, WebSocket", "websocket"));
    CHECK(!ws_hs_has_token("websocket/13", "websocket"));
    CHECK(!ws_hs_has_token("websockets", "websocket"));
    CHECK(!ws_hs_has_token("web socket", "websocket"));
}

static void test_check(void)
{
    ws_hs_request rq;
    int i;

    rq = good();
    CHECK(ws_hs_check(&rq) == WS_HS_OK);
    rq.upgrade = "WebSocket";
    rq.connection = "keep-alive, Upgrade";
    CHECK(ws_hs_check(&rq) == WS_HS_OK);

    /* Upgrade. */
    rq = good(); rq.upgrade = NULL;
    CHECK(ws_hs_check(&rq) == WS_HS_NOT_WEBSOCKET);
    rq = good(); rq.upgrade = "h2c";
    CHECK(ws_hs_check(&rq) == WS_HS_NOT_WEBSOCKET);
    rq = good(); rq.upgrade = "websockets";
    CHECK(ws_hs_check(&rq) == WS_HS_NOT_WEBSOCKET);
    rq = good(); rq.upgrade = "";
    CHECK(ws_hs_check(&rq) == WS_HS_NOT_WEBSOCKET);
    /* A plain request wins over everything else being wrong too. */
    rq.method = "POST"; rq.http11 = 0; rq.connection = NULL; rq.version = NULL; rq.key = NULL;
    CHECK(ws_hs_check(&rq) == WS_HS_NOT_WEBSOCKET);

    /* Method. */
    rq = good(); rq.method = "POST";
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_METHOD);
    rq = good(); rq.method = "get";
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_METHOD);
    rq = good(); rq.method = "GETX";
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_METHOD);
    rq = good(); rq.method = NULL;
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_METHOD);
    rq = good(); rq.method = "HEAD"; rq.http11 = 0; rq.connection = NULL;
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_METHOD);

    /* Protocol. */
    rq = good(); rq.http11 = 0;
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_PROTOCOL);
    rq.connection = NULL; rq.version = "8"; rq.key = "x";
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_PROTOCOL);

    /* Connection. */
    rq = good(); rq.connection = NULL;
    CHECK(ws_hs_check(&rq) == WS_HS_NO_CONNECTION);
    rq = good(); rq.connection = "keep-alive";
    CHECK(ws_hs_check(&rq) == WS_HS_NO_CONNECTION);
    rq = good(); rq.connection = "upgraded";
    CHECK(ws_hs_check(&rq) == WS_HS_NO_CONNECTION);
    rq = good(); rq.connection = "  ,upgrade,";
    CHECK(ws_hs_check(&rq) == WS_HS_OK);
    rq = good(); rq.connection = "close"; rq.version = NULL; rq.key = NULL;
    CHECK(ws_hs_check(&rq) == WS_HS_NO_CONNECTION);

    /* Version. */
    {
        static const char *badv[] = { "", "8", "12", "14", "130", "013", "1 3",
                                      "13, 8", "8, 13", "13a", "+13", "١٣" };
        static const char *goodv[] = { "13", " 13", "13 ", "\t13\t", "  13  " };
        int all = 1;
        for (i = 0; i < (int)(sizeof(badv) / sizeof(badv[0])); i++) {
            rq = good(); rq.version = badv[i];
            if (ws_hs_check(&rq) != WS_HS_BAD_VERSION) all = 0;
        }
        CHECK(all);
        all = 1;
        for (i = 0; i < (int)(sizeof(goodv) / sizeof(goodv[0])); i++) {
            rq = good(); rq.version = goodv[i];
            if (ws_hs_check(&rq) != WS_HS_OK) all = 0;
        }
        CHECK(all);
    }
    rq = good(); rq.version = NULL;
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_VERSION);
    rq.key = NULL;
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_VERSION);

    /* Key. */
    {
        static const char *badk[] = {
            "", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ===",
            "dGhlIHNhbXBsZSBub25jZQ=x", "dGhlIHNhbXBsZSBub25jZ==", "dGhlIHNhbXBsZSBub25jZQo=",
            "dGhlIHNhbXBsZSBub25jZ*==", "dGhlIHNhbXBs-SBub25jZQ==", "dGhlIHNhbXBs_SBub25jZQ==",
            "=GhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZS Bub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ==\n",
            "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "x3JJHMbDL1EzLkh9GBhXDw", "\xc3\xa9GhlIHNhbXBsZSBub25jZ==",
        };
        static const char *goodk[] = {
            RFC_KEY, "x3JJHMbDL1EzLkh9GBhXDw==", "AAAAAAAAAAAAAAAAAAAAAA==",
            "/////////////////////w==", "+++++++++++++++++++++w==", " " RFC_KEY " ",
            ("\t" RFC_KEY),
        };
        int all = 1;
        for (i = 0; i < (int)(sizeof(badk) / sizeof(badk[0])); i++) {
            rq = good(); rq.key = badk[i];
            if (ws_hs_check(&rq) != WS_HS_BAD_KEY) all = 0;
        }
        CHECK(all);
        all = 1;
        for (i = 0; i < (int)(sizeof(goodk) / sizeof(goodk[0])); i++) {
            rq = good(); rq.key = goodk[i];
            if (ws_hs_check(&rq) != WS_HS_OK) all = 0;
        }
        CHECK(all);
    }
    rq = good(); rq.key = NULL;
    CHECK(ws_hs_check(&rq) == WS_HS_BAD_KEY);

    /* Texts. */
    {
        const char *t[7];
        int j, all = 1;
        for (i = WS_HS_OK; i <= WS_HS_BAD_KEY; i++) {
            t[i] = ws_hs_result_text((ws_hs_result)i);
            if (!t[i] || !t[i][0]) all = 0;
            for (j = 0; j < i; j++) {
                if (strcmp(t[i], t[j]) == 0) all = 0;
            }
        }
        CHECK(all);
        CHECK(ws_hs_result_text((ws_hs_result)99) != NULL);
    }
}

static void test_accept(void)
{
    char out[WS_ACCEPT_LEN + 1];

    /* RFC 6455 section 1.3: the sample key gives s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
     * (also what openssl sha1 | base64 gives). */
    memset(out, 'z', sizeof(out));
    ws_hs_accept(RFC_KEY, out);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    CHECK(strlen(out) == WS_ACCEPT_LEN);
    ws_hs_accept("x3JJHMbDL1EzLkh9GBhXDw==", out);
    CHECK(strcmp(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0);
    /* Leading and trailing whitespace is not part of the key. */
    ws_hs_accept("  " RFC_KEY "\t", out);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    /* Anything else gives a different answer, always 28 characters. */
    ws_hs_accept("dGhlIHNhbXBsZSBub25jZq==", out);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0 && strlen(out) == 28);
    ws_hs_accept("", out);
    CHECK(strlen(out) == 28);
    ws_hs_accept(NULL, out);
    CHECK(strlen(out) == 28);
}

static void test_origin(void)
{
    /* Plain http. */
    CHECK(ws_hs_same_origin("http://example.com", "example.com", 0));
    CHECK(ws_hs_same_origin("http://example.com:80", "example.com", 0));
    CHECK(ws_hs_same_origin("http://example.com", "example.com:80", 0));
    CHECK(ws_hs_same_origin("http://example.com:80", "example.com:80", 0));
    CHECK(ws_hs_same_origin("HTTP://EXAMPLE.COM", "example.com", 0));
    CHECK(ws_hs_same_origin("http://Example.Com", "EXAMPLE.com", 0));
    CHECK(ws_hs_same_origin("http://example.com:8080", "example.com:8080", 0));
    CHECK(ws_hs_same_origin("http://localhost:8080", "localhost:8080", 0));
    CHECK(ws_hs_same_origin("http://127.0.0.1:8080", "127.0.0.1:8080", 0));
    CHECK(ws_hs_same_origin(" http://example.com ", " example.com\t", 0));
    CHECK(ws_hs_same_origin("http://a-b_c.example~x", "A-B_C.example~x", 0));
    CHECK(!ws_hs_same_origin("http://example.com:8080", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com", "example.com:8080", 0));
    CHECK(!ws_hs_same_origin("http://example.com:443", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com:8081", "example.com:8080", 0));
    CHECK(!ws_hs_same_origin("http://evil.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com.evil.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://evilexample.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.co", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com/", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com/path", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://user@example.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com@evil.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com:", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com:0", "example.com:0", 0));
    CHECK(!ws_hs_same_origin("http://example.com:65536", "example.com:65536", 0));
    CHECK(!ws_hs_same_origin("http://example.com:123456", "example.com:123456", 0));
    CHECK(ws_hs_same_origin("http://example.com:65535", "example.com:65535", 0));
    CHECK(!ws_hs_same_origin("http://example.com:80x", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com:-80", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://", "", 0));
    CHECK(!ws_hs_same_origin("http://", "example.com", 0));
    CHECK(!ws_hs_same_origin("http:/example.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("http:example.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("example.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("//example.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("ws://example.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("ftp://example.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("httpx://example.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("http://exa mple.com", "exa mple.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com", "", 0));
    CHECK(!ws_hs_same_origin("http://example.com", "example.com/", 0));

    /* Scheme must match the connection. */
    CHECK(ws_hs_same_origin("https://example.com", "example.com", 1));
    CHECK(ws_hs_same_origin("https://example.com:443", "example.com", 1));
    CHECK(ws_hs_same_origin("https://example.com", "example.com:443", 1));
    CHECK(ws_hs_same_origin("HTTPS://example.com:8443", "example.com:8443", 1));
    CHECK(!ws_hs_same_origin("http://example.com", "example.com", 1));
    CHECK(!ws_hs_same_origin("https://example.com", "example.com", 0));
    CHECK(!ws_hs_same_origin("https://example.com:80", "example.com", 1));
    CHECK(!ws_hs_same_origin("https://example.com", "example.com:80", 1));

    /* "null" and missing values. */
    CHECK(!ws_hs_same_origin("null", "example.com", 0));
    CHECK(!ws_hs_same_origin("null", "null", 0));
    CHECK(!ws_hs_same_origin("NULL", "null", 0));
    CHECK(!ws_hs_same_origin(NULL, "example.com", 0));
    CHECK(!ws_hs_same_origin("http://example.com", NULL, 0));
    CHECK(!ws_hs_same_origin("", "", 0));

    /* IPv6 literals. */
    CHECK(ws_hs_same_origin("http://[::1]:8080", "[::1]:8080", 0));
    CHECK(ws_hs_same_origin("http://[::1]", "[::1]", 0));
    CHECK(ws_hs_same_origin("http://[::1]", "[::1]:80", 0));
    CHECK(ws_hs_same_origin("https://[::1]:443", "[::1]", 1));
    CHECK(ws_hs_same_origin("http://[2001:DB8::1]:81", "[2001:db8::1]:81", 0));
    CHECK(ws_hs_same_origin("http://[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]", 0));
    CHECK(!ws_hs_same_origin("http://[::1]:8080", "[::2]:8080", 0));
    CHECK(!ws_hs_same_origin("http://[::1]:8080", "[::1]:8081", 0));
    CHECK(!ws_hs_same_origin("http://[::1]:8080", "::1:8080", 0));
    CHECK(!ws_hs_same_origin("http://::1:8080", "[::1]:8080", 0));
    CHECK(!ws_hs_same_origin("http://[::1", "[::1", 0));
    CHECK(!ws_hs_same_origin("http://[]", "[]", 0));
    CHECK(!ws_hs_same_origin("http://[::1]x", "[::1]x", 0));
    CHECK(!ws_hs_same_origin("http://[::g]", "[::g]", 0));
    CHECK(!ws_hs_same_origin("http://[::1]:", "[::1]:", 0));
    CHECK(!ws_hs_same_origin("http://[::1]", "::1", 0));
}

/* n is what ws_hs_origin_normalise makes of o, or -1 for NULL. */
static int norm_is(const char *o, const char *n)
{
    char out[WS_ORIGIN_MAX];
    int len = ws_hs_origin_normalise(o, out, sizeof(out));

    if (!n) {
        return len == -1;
    }
    return len == (int)strlen(n) && strcmp(out, n) == 0;
}

static void test_origin_normalise(void)
{
    char small[24];

    CHECK(norm_is("http://example.com", "http://example.com:80"));
    CHECK(norm_is("https://example.com", "https://example.com:443"));
    CHECK(norm_is("http://example.com:80", "http://example.com:80"));
    CHECK(norm_is("https://Example.COM:8443", "https://example.com:8443"));
    CHECK(norm_is("HTTP://EXAMPLE.COM", "http://example.com:80"));
    CHECK(norm_is("HtTpS://a.b", "https://a.b:443"));
    CHECK(norm_is("http://example.com:0080", "http://example.com:80"));
    CHECK(norm_is(" http://example.com\t", "http://example.com:80"));
    CHECK(norm_is("http://[::1]", "http://[::1]:80"));
    CHECK(norm_is("https://[2001:DB8::1]:8443", "https://[2001:db8::1]:8443"));
    CHECK(norm_is("http://127.0.0.1:65535", "http://127.0.0.1:65535"));
    CHECK(norm_is(NULL, NULL));
    CHECK(norm_is("", NULL));
    CHECK(norm_is("null", NULL));
    CHECK(norm_is("http://", NULL));
    CHECK(norm_is("https://", NULL));
    CHECK(norm_is("http:/example.com", NULL));
    CHECK(norm_is("ws://example.com", NULL));
    CHECK(norm_is("httpx://example.com", NULL));
    CHECK(norm_is("ftp://example.com", NULL));
    CHECK(norm_is("http://example.com/", NULL));
    CHECK(norm_is("http://example.com/path", NULL));
    CHECK(norm_is("http://example.com?q", NULL));
    CHECK(norm_is("http://example.com#f", NULL));
    CHECK(norm_is("http://user@example.com", NULL));
    CHECK(norm_is("http://example.com:", NULL));
    CHECK(norm_is("http://example.com:0", NULL));
    CHECK(norm_is("http://example.com:65536", NULL));
    CHECK(norm_is("http://example.com:8x", NULL));
    CHECK(norm_is("http://exa mple.com", NULL));
    CHECK(norm_is("http://[::1", NULL));
    /* the whole form must fit, NUL included */
    CHECK(ws_hs_origin_normalise("http://example.com", small, 22) == 21);
    CHECK(strcmp(small, "http://example.com:80") == 0);
    CHECK(ws_hs_origin_normalise("http://example.com:8080", small, 23) == -1);
    CHECK(ws_hs_origin_normalise("http://example.com", small, 21) == -1);
}

static void test_origin_policy(void)
{
    static const char *const listed[] = { "http://allowed.example:80",
                                          "https://also.example:8443" };
    ws_origin_policy def = { WS_ORIGIN_DEFAULT, 0, NULL, 0 };
    ws_origin_policy any = { WS_ORIGIN_ANY, 0, NULL, 0 };
    ws_origin_policy list = { WS_ORIGIN_LIST, 0, listed, 2 };
    ws_origin_policy list_same = { WS_ORIGIN_LIST, 1, listed, 2 };
    ws_origin_policy empty_same = { WS_ORIGIN_LIST, 1, NULL, 0 };
    const char *host = "localhost:8529";

    /* no Origin: not a browser; always allowed */
    CHECK(ws_hs_origin_allowed(&def, NULL, host, 0));
    CHECK(ws_hs_origin_allowed(&list, NULL, host, 0));
    /* the default: same origin only */
    CHECK(ws_hs_origin_allowed(&def, "http://localhost:8529", host, 0));
    CHECK(ws_hs_origin_allowed(&def, "HTTP://LocalHost:8529", host, 0));
    CHECK(!ws_hs_origin_allowed(&def, "http://localhost:8530", host, 0));
    CHECK(!ws_hs_origin_allowed(&def, "https://localhost:8529", host, 0));
    CHECK(ws_hs_origin_allowed(&def, "https://localhost:8529", host, 1));
    CHECK(!ws_hs_origin_allowed(&def, "http://allowed.example", host, 0));
    CHECK(!ws_hs_origin_allowed(&def, "null", host, 0));
    /* any */
    CHECK(ws_hs_origin_allowed(&any, "http://evil.example", host, 0));
    CHECK(ws_hs_origin_allowed(&any, "null", host, 0));
    /* a list: each entry matches only as a whole */
    CHECK(ws_hs_origin_allowed(&list, "http://allowed.example", host, 0));
    CHECK(ws_hs_origin_allowed(&list, "http://allowed.example:80", host, 0));
    CHECK(ws_hs_origin_allowed(&list, "HTTP://ALLOWED.example", host, 0));
    CHECK(ws_hs_origin_allowed(&list, "https://also.example:8443", host, 0));
    CHECK(ws_hs_origin_allowed(&list, "https://also.example:8443", host, 1));
    CHECK(!ws_hs_origin_allowed(&list, "http://allowed.example:8080", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "http://allowed.example:800", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "https://also.example:84", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "https://also.example:844", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "http://allowed.examplex", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "http://allowed.exampl", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "http://allowed.example.evil.example", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "http://allowed.example/", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "https://allowed.example", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "http://also.example:8443", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "null", host, 0));
    CHECK(!ws_hs_origin_allowed(&list, "", host, 0));
    /* a list without "same" does not admit the same origin */
    CHECK(!ws_hs_origin_allowed(&list, "http://localhost:8529", host, 0));
    CHECK(ws_hs_origin_allowed(&list_same, "http://localhost:8529", host, 0));
    CHECK(ws_hs_origin_allowed(&list_same, "http://allowed.example", host, 0));
    CHECK(!ws_hs_origin_allowed(&list_same, "http://evil.example", host, 0));
    CHECK(ws_hs_origin_allowed(&empty_same, "http://localhost:8529", host, 0));
    CHECK(!ws_hs_origin_allowed(&empty_same, "http://localhost:8530", host, 0));
}

static void test_ids(void)
{
    unsigned char s[WS_SECRET_LEN], d[WS_SECRET_LEN];
    char id[WS_ID_MAX + 1], bad[WS_ID_MAX + 8];
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t x = 2463534242u;
    int i, k, all;

    CHECK(WS_ID_LEN == (WS_SECRET_LEN * 8 + 5) / 6);

    memset(s, 0, sizeof(s));
    ws_id_encode(s, NULL, id);
    CHECK(strlen(id) == WS_ID_LEN && strspn(id, "A") == WS_ID_LEN);
    memset(s, 0xFF, sizeof(s));
    ws_id_encode(s, NULL, id);
    CHECK(strspn(id, "_") == WS_ID_LEN);
    for (i = 0; i < WS_SECRET_LEN; i += 3) {
        s[i] = 0xFB; s[i + 1] = 0xEF; s[i + 2] = 0xBE;      /* "++++" in base64 */
    }
    ws_id_encode(s, NULL, id);
    CHECK(strspn(id, "-") == WS_ID_LEN);
    /* A known vector: "Many hands make light work." is the classic. */
    memcpy(s, "Many hands make light wo", WS_SECRET_LEN);
    ws_id_encode(s, NULL, id);
    CHECK(strcmp(id, "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdv") == 0);
    CHECK(ws_id_decode(id, d, NULL) && memcmp(d, s, WS_SECRET_LEN) == 0);
    CHECK(ws_id_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", d, NULL));
    CHECK(ws_id_decode("________________________________", d, NULL));

    /* Random round trips, and every alphabet character decodes. */
    all = 1;
    for (k = 0; k < 2000; k++) {
        for (i = 0; i < WS_SECRET_LEN; i++) {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            s[i] = (unsigned char)x;
        }
        ws_id_encode(s, NULL, id);
        if (strlen(id) != WS_ID_LEN || strspn(id, alphabet) != WS_ID_LEN) all = 0;
        memset(d, 0, sizeof(d));
        if (!ws_id_decode(id, d, NULL) || memcmp(d, s, WS_SECRET_LEN) != 0) all = 0;
    }
    CHECK(all);
    all = 1;
    for (i = 0; i < 64; i++) {
        memset(id, 'A', WS_ID_LEN);
        id[WS_ID_LEN] = 0;
        id[i % WS_ID_LEN] = alphabet[i];
        if (!ws_id_decode(id, d, NULL)) all = 0;
        ws_id_encode(d, NULL, bad);
        if (strcmp(bad, id) != 0) all = 0;
    }
    CHECK(all);

    /* Rejections: lengths, alphabet, NUL; secret untouched on failure. */
    memset(d, 0x5A, sizeof(d));
    CHECK(!ws_id_decode(NULL, d, NULL));
    CHECK(!ws_id_decode("", d, NULL));
    CHECK(!ws_id_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", d, NULL));     /* 31 */
    CHECK(!ws_id_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", d, NULL));   /* 33 */
    CHECK(!ws_id_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", d, NULL));
    CHECK(!ws_id_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", d, NULL));
    {
        static const char badc[] = "+/=. \t\n*%!~\"\x7f\x80\xc3\xff";
        size_t c;
        all = 1;
        for (i = 0; i < WS_ID_LEN; i++) {
            for (c = 0; c < sizeof(badc) - 1; c++) {
                memset(bad, 'Q', WS_ID_LEN);
                bad[WS_ID_LEN] = 0;
                bad[i] = badc[c];
                if (ws_id_decode(bad, d, NULL)) all = 0;
            }
            /* A NUL inside makes it short. */
            memset(bad, 'Q', WS_ID_LEN + 4);
            bad[WS_ID_LEN + 4] = 0;
            bad[i] = 0;
            if (ws_id_decode(bad, d, NULL)) all = 0;
        }
        CHECK(all);
        /* Every byte value that is not in the alphabet, at one position. */
        all = 1;
        for (c = 1; c < 256; c++) {
            int ok;
            memset(bad, 'Q', WS_ID_LEN);
            bad[WS_ID_LEN] = 0;
            bad[7] = (char)c;
            ok = ws_id_decode(bad, d, NULL);
            if (ok != (strchr(alphabet, (int)c) != NULL)) all = 0;
        }
        CHECK(all);
    }
    memset(s, 0x5A, sizeof(s));
    memset(d, 0x5A, sizeof(d));
    CHECK(!ws_id_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", d, NULL));
    CHECK(memcmp(d, s, WS_SECRET_LEN) == 0);
}

/* Ids with a route: "<secret>.<route>", the balancers' convention. */
static void test_routed_ids(void)
{
    unsigned char s[WS_SECRET_LEN], d[WS_SECRET_LEN], keep[WS_SECRET_LEN];
    char id[WS_ID_MAX + 1], buf[WS_ID_MAX + 16];
    const char *route;
    static const char plain[] = "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdv";
    static const char longest[] = "abcdefghijklmnopqrstuvwxyz012345";   /* 32 */
    static const char *const bad_routes[] = {
        "", ".", "a.b", "a b", "a+b", "a/b", "a=b", "a;b", "a,b", "\xc3\xa9",
        "abcdefghijklmnopqrstuvwxyz0123456", /* 33 */ NULL
    };
    int i;

    CHECK(WS_ID_MAX == WS_ID_LEN + 1 + WS_ROUTE_MAX);
    CHECK(ws_route_valid("node1") && ws_route_valid("a") && ws_route_valid("A-z_0"));
    CHECK(ws_route_valid(longest));
    CHECK(!ws_route_valid(NULL));
    for (i = 0; bad_routes[i]; i++) {
        CHECK(!ws_route_valid(bad_routes[i]));
    }

    memcpy(s, "Many hands make light wo", WS_SECRET_LEN);
    ws_id_encode(s, "node1", id);
    CHECK(strcmp(id, "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdv.node1") == 0);
    route = "unset";
    memset(d, 0, sizeof(d));
    CHECK(ws_id_decode(id, d, &route) && memcmp(d, s, WS_SECRET_LEN) == 0);
    CHECK(route == id + WS_ID_LEN + 1 && strcmp(route, "node1") == 0);
    /* Without a route: *route is set to NULL. */
    route = "unset";
    CHECK(ws_id_decode(plain, d, &route) && route == NULL);
    /* The longest route fits WS_ID_MAX. */
    ws_id_encode(s, longest, id);
    CHECK(strlen(id) == WS_ID_MAX && strcmp(id + WS_ID_LEN + 1, longest) == 0);
    CHECK(ws_id_decode(id, d, &route) && strcmp(route, longest) == 0);
    /* An invalid route is not written. */
    ws_id_encode(s, "a.b", id);
    CHECK(strcmp(id, plain) == 0);
    ws_id_encode(s, "", id);
    CHECK(strcmp(id, plain) == 0);

    /* Malformed: bad routes, no dot, a bad secret before a good route;
     * secret and route untouched. */
    memset(keep, 0x5A, sizeof(keep));
    for (i = 0; bad_routes[i]; i++) {
        snprintf(buf, sizeof(buf), "%s.%s", plain, bad_routes[i]);
        memcpy(d, keep, sizeof(d));
        route = "unset";
        CHECK(!ws_id_decode(buf, d, &route));
        CHECK(memcmp(d, keep, WS_SECRET_LEN) == 0 && strcmp(route, "unset") == 0);
    }
    CHECK(!ws_id_decode("TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvnode1", d, &route));
    CHECK(!ws_id_decode("TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdv-node1", d, &route));
    CHECK(!ws_id_decode("TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHd.node1", d, &route));   /* 31 */
    CHECK(!ws_id_decode("TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvX.node1", d, &route)); /* 33 */
    CHECK(!ws_id_decode("TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHd+.node1", d, &route));
    CHECK(!ws_id_decode("TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdv.node1.x", d, &route));
    CHECK(!ws_id_decode(".node1", d, &route));
    CHECK(memcmp(d, keep, WS_SECRET_LEN) == 0);
}

static void test_pubid(void)
{
    static const unsigned char p[WS_PUBID_LEN] = { 0x01, 0x23, 0x45, 0x67,
                                                   0x89, 0xab, 0xcd, 0xef };
    static const unsigned char z[WS_PUBID_LEN] = { 0 };
    static const unsigned char f[WS_PUBID_LEN] = { 0xff, 0xff, 0xff, 0xff,
                                                   0xff, 0xff, 0xff, 0xff };
    char out[2 * WS_PUBID_LEN + 1];

    memset(out, 'x', sizeof(out));
    ws_pubid_hex(p, out);
    CHECK(strcmp(out, "0123456789abcdef") == 0);
    ws_pubid_hex(z, out);
    CHECK(strcmp(out, "0000000000000000") == 0);
    ws_pubid_hex(f, out);
    CHECK(strcmp(out, "ffffffffffffffff") == 0);
    CHECK(strlen(out) == 2 * WS_PUBID_LEN);
}

int main(void)
{
    test_tokens();
    test_check();
    test_accept();
    test_origin();
    test_origin_normalise();
    test_origin_policy();
    test_ids();
    test_routed_ids();
    test_pubid();
    {
        char out[40];

        CHECK(ws_hs_token_after("websession.v1, websession.id.abc_-1", "websession.id.", out, sizeof(out))
              && !strcmp(out, "abc_-1"));
        CHECK(ws_hs_token_after(" WebSession.ID.x ,y", "websession.id.", out, sizeof(out))
              && !strcmp(out, "x"));
        CHECK(!ws_hs_token_after("websession.id.", "websession.id.", out, sizeof(out)));
        CHECK(!ws_hs_token_after("websession.v1", "websession.id.", out, sizeof(out)));
        CHECK(!ws_hs_token_after(NULL, "websession.id.", out, sizeof(out)));
        CHECK(ws_hs_token_after("websession.id.0123456789", "websession.id.", out, 5) == -1);
    }
    return UNIT_DONE("test_handshake");
}
