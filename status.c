/* status.c -- the status page (status.h). */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_script.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "mod_status.h"

#include "ipc.h"
#include "session_table.h"
#include "status.h"
#include "ws_handshake.h"

APLOG_USE_MODULE(websession);

#define STATUS_IPC_TIMEOUT_MS 3000

typedef struct {
    ws_slot_info info;
    ws_slot_stats st;
} status_row;

static const struct {
    ws_stat stat;
    const char *name;
} ends[] = {
    { WS_STAT_END_CLIENT, "client" },       { WS_STAT_END_SCRIPT, "script" },
    { WS_STAT_END_TIMEOUT, "timeout" },     { WS_STAT_END_ERROR, "error" },
    { WS_STAT_END_STOP, "stop" },           { WS_STAT_END_ADMIN, "admin" },
}, refusals[] = {
    { WS_STAT_REFUSED_FULL, "max-sessions" }, { WS_STAT_REFUSED_CLIENT, "max-per-client" },
    { WS_STAT_REFUSED_RELAYS, "max-relays" }, { WS_STAT_REFUSED_UNKNOWN, "unknown-id" },
    { WS_STAT_REFUSED_OTHER, "other" },
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The sessions of the table now, in slot order. */
static apr_array_header_t *rows(request_rec *r, const ws_table *t)
{
    apr_array_header_t *a = apr_array_make(r->pool, 16, sizeof(status_row));

    for (unsigned i = 0; i < ws_table_capacity(t); i++) {
        status_row row;

        if (ws_table_get(t, i, &row.info) == APR_SUCCESS
            && ws_table_stats(t, i, &row.st) == APR_SUCCESS) {
            *(status_row *)apr_array_push(a) = row;
        }
    }
    return a;
}

static const char *state_of(const status_row *w)
{
    switch (w->info.state) {
    case WS_SLOT_RESERVED:
        return "starting";
    case WS_SLOT_CLOSING:
        return "closing";
    default:
        return w->info.detached ? "detached" : "attached";
    }
}

static const char *transport_of(const status_row *w)
{
    static const char *const names[] = { "websocket", "sse", "poll" };

    return w->st.transport < COUNT_OF(names) ? names[w->st.transport] : "?";
}

static double seconds_since(apr_time_t then, apr_time_t now)
{
    return then && now > then ? (double)(now - then) / APR_USEC_PER_SEC : 0.0;
}

/* How long the session has been in its state (attached or detached). */
static double state_seconds(const status_row *w, apr_time_t now)
{
    return seconds_since(w->info.detached ? w->info.detached : w->info.attached, now);
}

/* s as a JSON string, quotes included. */
static const char *json_str(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, 6 * strlen(s) + 3), *o = out;

    *o++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        }
        else if (c < 0x20 || c == 0x7f) {
            o += sprintf(o, "\\u%04x", c);
        }
        else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static void emit_json(request_rec *r, const ws_shared *sh, const char *route,
                      apr_array_header_t *a)
{
    const ws_table *t = sh->table;
    apr_time_t now = apr_time_now();

    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "{\"node\": {\"server\": %s, \"route\": %s, \"capacity\": %u, \"used\": %u, \"relays\": %u,"
               " \"max_relays\": %u, \"pool_keepers\": %" APR_UINT64_T_FMT "},\n",
               json_str(r->pool, ap_get_server_name(r)),
               route ? json_str(r->pool, route) : "null", ws_table_capacity(t),
               ws_table_count(t), ws_table_relays(t), sh->max_relays,
               ws_table_counter(t, WS_STAT_POOL));
    ap_rprintf(r, " \"totals\": {\"started\": %" APR_UINT64_T_FMT ", \"resumes\": %"
               APR_UINT64_T_FMT ", \"ended\": {",
               ws_table_counter(t, WS_STAT_STARTED), ws_table_counter(t, WS_STAT_RESUMES));
    for (size_t i = 0; i < COUNT_OF(ends); i++) {
        ap_rprintf(r, "%s\"%s\": %" APR_UINT64_T_FMT, i ? ", " : "", ends[i].name,
                   ws_table_counter(t, ends[i].stat));
    }
    ap_rputs("}, \"refused\": {", r);
    for (size_t i = 0; i < COUNT_OF(refusals); i++) {
        ap_rprintf(r, "%s\"%s\": %" APR_UINT64_T_FMT, i ? ", " : "", refusals[i].name,
                   ws_table_counter(t, refusals[i].stat));
    }
    ap_rputs("}},\n \"sessions\": [", r);
    for (int i = 0; i < a->nelts; i++) {
        const status_row *w = &APR_ARRAY_IDX(a, i, status_row);
        char fp[2 * WS_PUBID_LEN + 1];

        ws_pubid_hex(w->info.pubid, fp);
        ap_rprintf(r, "%s\n  {\"id\": \"%s\", \"target\": %s, \"client\": %s, \"state\": \"%s\","
                   " \"transport\": \"%s\", \"state_seconds\": %.1f, \"age_seconds\": %.1f,"
                   " \"connections\": %u, \"messages_in\": %" APR_UINT64_T_FMT
                   ", \"bytes_in\": %" APR_UINT64_T_FMT ", \"messages_out\": %" APR_UINT64_T_FMT
                   ", \"bytes_out\": %" APR_UINT64_T_FMT ", \"queued_out\": %" APR_UINT64_T_FMT
                   ", \"queued_in\": %" APR_UINT64_T_FMT ", \"keeper_pid\": %ld,"
                   " \"script_pid\": %u}",
                   i ? "," : "", fp, json_str(r->pool, w->st.target),
                   json_str(r->pool, w->st.client), state_of(w), transport_of(w),
                   state_seconds(w, now),
                   seconds_since(w->info.created, now), w->info.attaches,
                   w->st.msgs_in, w->st.bytes_in, w->st.msgs_out, w->st.bytes_out,
                   w->st.queued_out, w->st.queued_in, (long)w->info.keeper_pid,
                   w->st.script_pid);
    }
    ap_rputs(a->nelts ? "\n ]}\n" : "]}\n", r);
}

static void metric(request_rec *r, const char *name, const char *type, const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void emit_prometheus(request_rec *r, const ws_shared *sh, const char *route,
                            apr_array_header_t *a)
{
    static const char *const states[] = { "starting", "attached", "detached", "closing" };
    const ws_table *t = sh->table;
    apr_uint64_t queued_out = 0, queued_in = 0;

    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    metric(r, "websession_node_info", "gauge",
           "1, labelled with the node's WebSessionRoute (empty: none).");
    ap_rprintf(r, "websession_node_info{route=\"%s\"} 1\n", route ? route : "");
    metric(r, "websession_sessions_started_total", "counter", "Sessions started.");
    ap_rprintf(r, "websession_sessions_started_total %" APR_UINT64_T_FMT "\n",
               ws_table_counter(t, WS_STAT_STARTED));
    metric(r, "websession_resumes_total", "counter",
           "Connections to a session after its first (resumes).");
    ap_rprintf(r, "websession_resumes_total %" APR_UINT64_T_FMT "\n",
               ws_table_counter(t, WS_STAT_RESUMES));
    metric(r, "websession_sessions_ended_total", "counter", "Sessions ended, by reason.");
    for (size_t i = 0; i < COUNT_OF(ends); i++) {
        ap_rprintf(r, "websession_sessions_ended_total{reason=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   ends[i].name, ws_table_counter(t, ends[i].stat));
    }
    metric(r, "websession_refusals_total", "counter", "Requests refused, by reason.");
    for (size_t i = 0; i < COUNT_OF(refusals); i++) {
        ap_rprintf(r, "websession_refusals_total{reason=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   refusals[i].name, ws_table_counter(t, refusals[i].stat));
    }
    metric(r, "websession_sessions", "gauge", "Sessions now, by state.");
    for (size_t s = 0; s < COUNT_OF(states); s++) {
        int n = 0;

        for (int i = 0; i < a->nelts; i++) {
            n += !strcmp(state_of(&APR_ARRAY_IDX(a, i, status_row)), states[s]);
        }
        ap_rprintf(r, "websession_sessions{state=\"%s\"} %d\n", states[s], n);
    }
    for (int i = 0; i < a->nelts; i++) {
        queued_out += APR_ARRAY_IDX(a, i, status_row).st.queued_out;
        queued_in += APR_ARRAY_IDX(a, i, status_row).st.queued_in;
    }
    metric(r, "websession_queued_bytes", "gauge",
           "Bytes buffered in the keepers, toward the client (out) and the scripts (in).");
    ap_rprintf(r, "websession_queued_bytes{direction=\"out\"} %" APR_UINT64_T_FMT "\n"
               "websession_queued_bytes{direction=\"in\"} %" APR_UINT64_T_FMT "\n",
               queued_out, queued_in);
    metric(r, "websession_table_slots", "gauge", "WebSessionMaxSessions: the table's size.");
    ap_rprintf(r, "websession_table_slots %u\n", ws_table_capacity(t));
    metric(r, "websession_relays", "gauge", "Session connections relayed by workers now.");
    ap_rprintf(r, "websession_relays %u\n", ws_table_relays(t));
    metric(r, "websession_relays_max", "gauge", "WebSessionMaxRelays.");
    ap_rprintf(r, "websession_relays_max %u\n", sh->max_relays);
    metric(r, "websession_pool_keepers", "gauge", "Keepers waiting for a new session.");
    ap_rprintf(r, "websession_pool_keepers %" APR_UINT64_T_FMT "\n",
               ws_table_counter(t, WS_STAT_POOL));
}

static void emit_html(request_rec *r, const ws_shared *sh, const char *route,
                      apr_array_header_t *a)
{
    const ws_table *t = sh->table;
    apr_time_t now = apr_time_now();

    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rprintf(r, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
               "<title>WebSession status: %s</title>\n<style>body{font-family:sans-serif}"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
               "text-align:right}td.l{text-align:left}</style></head><body>\n"
               "<h1>WebSession status: %s</h1>\n",
               ap_escape_html2(r->pool, ap_get_server_name(r), 1),
               ap_escape_html2(r->pool, ap_get_server_name(r), 1));
    if (route) {
        ap_rprintf(r, "<p>Route (WebSessionRoute): <code>%s</code></p>\n",
                   ap_escape_html2(r->pool, route, 1));
    }
    ap_rprintf(r, "<p>%u of %u slots in use; %u of %u relayed connections; %"
               APR_UINT64_T_FMT " keepers waiting. Also as <a href=\"?format=json\">JSON</a>"
               " and <a href=\"?format=prometheus\">Prometheus</a> text.</p>\n",
               ws_table_count(t), ws_table_capacity(t), ws_table_relays(t), sh->max_relays,
               ws_table_counter(t, WS_STAT_POOL));
    ap_rprintf(r, "<h2>Totals</h2>\n<table><tr><th>started</th><td>%" APR_UINT64_T_FMT
               "</td></tr><tr><th>resumes</th><td>%" APR_UINT64_T_FMT "</td></tr>\n",
               ws_table_counter(t, WS_STAT_STARTED), ws_table_counter(t, WS_STAT_RESUMES));
    for (size_t i = 0; i < COUNT_OF(ends); i++) {
        ap_rprintf(r, "<tr><th>ended: %s</th><td>%" APR_UINT64_T_FMT "</td></tr>\n",
                   ends[i].name, ws_table_counter(t, ends[i].stat));
    }
    for (size_t i = 0; i < COUNT_OF(refusals); i++) {
        ap_rprintf(r, "<tr><th>refused: %s</th><td>%" APR_UINT64_T_FMT "</td></tr>\n",
                   refusals[i].name, ws_table_counter(t, refusals[i].stat));
    }
    ap_rprintf(r, "</table>\n<h2>Sessions (%d)</h2>\n<table><tr><th>id</th><th>target</th>"
               "<th>client</th><th>state</th><th>for (s)</th><th>age (s)</th>"
               "<th>transport</th><th>connections</th><th>messages in/out</th>"
               "<th>bytes in/out</th><th>queued out/in</th><th>keeper/script pid</th>"
               "<th></th></tr>\n", a->nelts);
    for (int i = 0; i < a->nelts; i++) {
        const status_row *w = &APR_ARRAY_IDX(a, i, status_row);
        char fp[2 * WS_PUBID_LEN + 1];

        ws_pubid_hex(w->info.pubid, fp);
        ap_rprintf(r, "<tr><td class=\"l\"><code>%s</code></td><td class=\"l\">%s</td>"
                   "<td class=\"l\">%s</td><td class=\"l\">%s</td><td>%.1f</td><td>%.1f</td>"
                   "<td class=\"l\">%s</td><td>%u</td><td>%" APR_UINT64_T_FMT " / %"
                   APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT
                   "</td><td>%" APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT "</td>"
                   "<td>%ld / %u</td><td><form method=\"post\"><input type=\"hidden\""
                   " name=\"end\" value=\"%s\"><button>end</button></form></td></tr>\n",
                   fp, ap_escape_html2(r->pool, w->st.target, 1),
                   ap_escape_html2(r->pool, w->st.client, 1), state_of(w),
                   state_seconds(w, now),
                   seconds_since(w->info.created, now), transport_of(w), w->info.attaches,
                   w->st.msgs_in, w->st.msgs_out, w->st.bytes_in, w->st.bytes_out,
                   w->st.queued_out, w->st.queued_in, (long)w->info.keeper_pid,
                   w->st.script_pid, fp);
    }
    ap_rputs("</table>\n</body></html>\n", r);
}

/* Ask the keeper of the session named by fp (hex) to end it.  HTTP status. */
static int end_session(request_rec *r, const ws_shared *sh, const char *fp)
{
    unsigned char pubid[WS_PUBID_LEN], secret[WS_SECRET_LEN];
    char name[IPC_NAME_MAX];
    unsigned slot;
    apr_uint32_t gen;
    ipc_reply rep;
    int fd, ok;

    if (!fp || strlen(fp) != 2 * WS_PUBID_LEN) {
        return HTTP_BAD_REQUEST;
    }
    for (size_t i = 0; i < WS_PUBID_LEN; i++) {
        unsigned v;

        if (sscanf(fp + 2 * i, "%2x", &v) != 1 || !apr_isxdigit(fp[2 * i])
            || !apr_isxdigit(fp[2 * i + 1])) {
            return HTTP_BAD_REQUEST;
        }
        pubid[i] = (unsigned char)v;
    }
    if (ws_table_find_pubid(sh->table, pubid, &slot, &gen, secret) != APR_SUCCESS) {
        return HTTP_NOT_FOUND;
    }
    ipc_keeper_name(name, &sh->names, slot, gen);
    fd = ipc_connect(name, STATUS_IPC_TIMEOUT_MS);
    ok = fd >= 0 && ipc_send_msg(fd, IPC_HELLO, secret, WS_SECRET_LEN, -1) == 0
         && ipc_recv_reply(fd, &rep) == 0 && rep.status == IPC_OK
         && ipc_send_msg(fd, IPC_END, NULL, 0, -1) == 0
         && ipc_recv_reply(fd, &rep) == 0 && rep.status == IPC_OK;
    memset(secret, 0, sizeof(secret));
    if (fd >= 0) {
        close(fd);
    }
    ap_log_rerror(APLOG_MARK, ok ? APLOG_NOTICE : APLOG_WARNING, 0, r,
                  "WS00049: [%s] %s from the status page (user %s)", fp,
                  ok ? "session ended" : "could not end the session", r->user ? r->user : "-");
    return ok ? OK : HTTP_NOT_FOUND;
}

int ws_status_handler(request_rec *r, const ws_shared *sh, const char *route)
{
    int json, prometheus;

    if (!r->handler || strcmp(r->handler, "websession-status")) {
        return DECLINED;
    }
    if (!sh) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    json = r->args && ap_strstr_c(r->args, "format=json") != NULL;
    prometheus = r->args && ap_strstr_c(r->args, "format=prometheus") != NULL;
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    r->allowed |= (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
    if (r->method_number == M_POST) {
        const char *origin = apr_table_get(r->headers_in, "Origin");
        apr_array_header_t *form = NULL;
        const char *fp = NULL;
        int rc;

        /* A form on another site must not end sessions with the admin's
         * credentials. */
        if (origin && !ws_hs_origin_allowed(&(ws_origin_policy){ WS_ORIGIN_DEFAULT, 1, NULL, 0 },
                                            origin, apr_table_get(r->headers_in, "Host"),
                                            ap_ssl_conn_is_ssl(r->connection))) {
            return HTTP_FORBIDDEN;
        }
        if (ap_parse_form_data(r, NULL, &form, 4, 4096) != OK || !form) {
            return HTTP_BAD_REQUEST;
        }
        for (int i = 0; i < form->nelts; i++) {
            ap_form_pair_t *pair = &APR_ARRAY_IDX(form, i, ap_form_pair_t);

            if (!strcmp(pair->name, "end")) {
                apr_off_t len;
                char *v;

                apr_brigade_length(pair->value, 1, &len);
                v = apr_palloc(r->pool, (apr_size_t)len + 1);
                apr_brigade_flatten(pair->value, v, (apr_size_t *)&len);
                v[len] = '\0';
                fp = v;
            }
        }
        rc = end_session(r, sh, fp);
        if (rc != OK) {
            return rc;
        }
        if (json) {
            ap_set_content_type(r, "application/json");
            ap_rprintf(r, "{\"ended\": \"%s\"}\n", fp);
            return OK;
        }
        apr_table_setn(r->headers_out, "Location", r->uri);
        return HTTP_SEE_OTHER;
    }
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (r->header_only) {
        ap_set_content_type(r, json ? "application/json" : prometheus
                            ? "text/plain; version=0.0.4; charset=utf-8"
                            : "text/html; charset=utf-8");
        return OK;
    }
    if (json) {
        emit_json(r, sh, route, rows(r, sh->table));
    }
    else if (prometheus) {
        emit_prometheus(r, sh, route, rows(r, sh->table));
    }
    else {
        emit_html(r, sh, route, rows(r, sh->table));
    }
    return OK;
}

int ws_status_hook(request_rec *r, int flags, const ws_shared *sh)
{
    const ws_table *t;

    if (!sh) {
        return OK;
    }
    t = sh->table;
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "WebSessions: %u\nWebSessionSlots: %u\nWebSessionsStarted: %"
                   APR_UINT64_T_FMT "\nWebSessionRelays: %u\n", ws_table_count(t),
                   ws_table_capacity(t), ws_table_counter(t, WS_STAT_STARTED),
                   ws_table_relays(t));
        return OK;
    }
    ap_rprintf(r, "<hr>\n<h2>mod_websession</h2>\n<p>%u of %u session slots in use, %"
               APR_UINT64_T_FMT " sessions started, %" APR_UINT64_T_FMT " resumes, %u of %u"
               " relayed connections (details: <code>SetHandler websession-status</code>)."
               "</p>\n", ws_table_count(t), ws_table_capacity(t),
               ws_table_counter(t, WS_STAT_STARTED), ws_table_counter(t, WS_STAT_RESUMES),
               ws_table_relays(t), sh->max_relays);
    return OK;
}
