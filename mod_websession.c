/* mod_websession.c -- persistent script sessions over WebSocket.
 *
 * This file holds the module's configuration, its hooks and the request
 * handler: it decides whether a request targets a persistent script, checks
 * the WebSocket handshake, starts a session through the spawner or finds
 * the running one, answers 101 and hands the connection over (relay.c).
 * See docs/ARCHITECTURE.md for the processes involved.
 */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_script.h"
#include "ap_mpm.h"
#include "apr_strings.h"
#include "apr_sha1.h"
#include "apr_lib.h"
#include "apr_shm.h"

#include "client_handler.h"
#include "fallback.h"
#include "ipc.h"
#include "msg_format.h"
#include "relay.h"
#include "session_table.h"
#include "spawner.h"
#include "status.h"
#include "mod_status.h"
#include "ws_codec.h"
#include "ws_handshake.h"
#include "wsv1.h"

module AP_MODULE_DECLARE_DATA websession_module;

#define WS_DEFAULT_RESUME      apr_time_from_sec(30)
#define WS_DEFAULT_UNUSED      apr_time_from_sec(10)
#define WS_PER_CLIENT_DEFAULT  (-1)     /* a quarter of WebSessionMaxSessions */
#define WS_RESERVE_TRIES       16       /* secrets drawn before the table counts as full */
#define WS_RELAYS_AUTO         (-1)
#define WS_DEFAULT_MAX_MESSAGE (1024 * 1024)
#define WS_DEFAULT_BUFFER      (1024 * 1024)
#define WS_DEFAULT_MAX_SESSIONS 1024
#define WS_DEFAULT_PING        apr_time_from_sec(30)
#define WS_SPAWN_TIMEOUT_MS    10000
#define WS_STALE_RESERVATION   apr_time_from_sec(60)
#define WS_SHARED_KEY          "mod_websession-shared"

typedef struct {
    int on;
    const char *on_scope;           /* the directory WebSession On was set for (a
                                     * <Directory> or .htaccess), else NULL */
    const char *command;            /* WebSessionCommand, as written */
    char **command_argv;
    const char *command_scope;      /* URL path of the <Location> it was set in */
    int mode;
    apr_interval_time_t resume_timeout;
    apr_interval_time_t unused_timeout;
    int max_per_client;             /* 0: off; WS_PER_CLIENT_DEFAULT */
    apr_interval_time_t ping;
    apr_size_t max_message;
    apr_size_t buffer;
    ws_origin_mode origin;
    int origin_same;                /* "same" listed */
    apr_array_header_t *origins;    /* ws_hs_origin_normalise forms */

    unsigned int on_set:1;
    unsigned int command_set:1;
    unsigned int mode_set:1;
    unsigned int resume_timeout_set:1;
    unsigned int unused_timeout_set:1;
    unsigned int max_per_client_set:1;
    unsigned int ping_set:1;
    unsigned int max_message_set:1;
    unsigned int buffer_set:1;
    unsigned int origin_set:1;
} ws_dir_conf;

/* How the client of a request speaks: a WebSocket (plain or websession.v1)
 * or the HTTP fallback's down stream. */
typedef struct {
    int v1;
    apr_uint32_t http;              /* 0, or IPC_ATTACH_SSE/_POLL (| _OPEN) */
    int down;                       /* the fallback's down request (a GET) */
    apr_uint64_t received;          /* ... its WebSession-Received */
} ws_how;

typedef struct {
    unsigned max_sessions;
    int max_relays;                 /* WS_RELAYS_AUTO: half the MPM's worker threads */
    unsigned int max_sessions_set:1;
    unsigned int max_relays_set:1;
    const char *route;              /* WebSessionRoute: NULL for none */
    const char *cookie;             /* WebSessionRouteCookie name: NULL for none */
    int cookie_secure;              /* ... "Secure" on every connection, not only TLS */
    unsigned int route_set:1;
    unsigned int cookie_set:1;
} ws_srv_conf;

static ws_shared *shared;           /* set in post_config, inherited by children */

/* ---- configuration ---------------------------------------------------- */

static void *create_dir_conf(apr_pool_t *p, char *dir)
{
    ws_dir_conf *c = apr_pcalloc(p, sizeof(*c));

    (void)dir;
    c->mode = MSG_LINES;
    c->resume_timeout = WS_DEFAULT_RESUME;
    c->unused_timeout = WS_DEFAULT_UNUSED;
    c->max_per_client = WS_PER_CLIENT_DEFAULT;
    c->ping = WS_DEFAULT_PING;
    c->max_message = WS_DEFAULT_MAX_MESSAGE;
    c->buffer = WS_DEFAULT_BUFFER;
    c->origin = WS_ORIGIN_DEFAULT;
    return c;
}

static void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    ws_dir_conf *base = basev, *add = addv;
    ws_dir_conf *c = apr_pcalloc(p, sizeof(*c));

    c->on = add->on_set ? add->on : base->on;
    c->on_scope = add->on_set ? add->on_scope : base->on_scope;
    c->on_set = add->on_set || base->on_set;
    if (add->command_set) {
        c->command = add->command;
        c->command_argv = add->command_argv;
        c->command_scope = add->command_scope;
    }
    else {
        c->command = base->command;
        c->command_argv = base->command_argv;
        c->command_scope = base->command_scope;
    }
    c->command_set = add->command_set || base->command_set;
    c->mode = add->mode_set ? add->mode : base->mode;
    c->mode_set = add->mode_set || base->mode_set;
    c->resume_timeout = add->resume_timeout_set ? add->resume_timeout : base->resume_timeout;
    c->resume_timeout_set = add->resume_timeout_set || base->resume_timeout_set;
    c->unused_timeout = add->unused_timeout_set ? add->unused_timeout : base->unused_timeout;
    c->unused_timeout_set = add->unused_timeout_set || base->unused_timeout_set;
    c->max_per_client = add->max_per_client_set ? add->max_per_client : base->max_per_client;
    c->max_per_client_set = add->max_per_client_set || base->max_per_client_set;
    c->ping = add->ping_set ? add->ping : base->ping;
    c->ping_set = add->ping_set || base->ping_set;
    c->max_message = add->max_message_set ? add->max_message : base->max_message;
    c->max_message_set = add->max_message_set || base->max_message_set;
    c->buffer = add->buffer_set ? add->buffer : base->buffer;
    c->buffer_set = add->buffer_set || base->buffer_set;
    if (add->origin_set) {
        c->origin = add->origin;
        c->origin_same = add->origin_same;
        c->origins = add->origins;
    }
    else {
        c->origin = base->origin;
        c->origin_same = base->origin_same;
        c->origins = base->origins;
    }
    c->origin_set = add->origin_set || base->origin_set;
    return c;
}

static void *create_srv_conf(apr_pool_t *p, server_rec *s)
{
    ws_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    c->max_sessions = WS_DEFAULT_MAX_SESSIONS;
    c->max_relays = WS_RELAYS_AUTO;
    return c;
}

static void *merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    ws_srv_conf *base = basev, *add = addv;
    ws_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    c->max_sessions = add->max_sessions_set ? add->max_sessions : base->max_sessions;
    c->max_sessions_set = add->max_sessions_set || base->max_sessions_set;
    c->max_relays = add->max_relays_set ? add->max_relays : base->max_relays;
    c->max_relays_set = add->max_relays_set || base->max_relays_set;
    c->route = add->route_set ? add->route : base->route;
    c->route_set = add->route_set || base->route_set;
    if (add->cookie_set) {
        c->cookie = add->cookie;
        c->cookie_secure = add->cookie_secure;
    }
    else {
        c->cookie = base->cookie;
        c->cookie_secure = base->cookie_secure;
    }
    c->cookie_set = add->cookie_set || base->cookie_set;
    return c;
}

/* The file system directory a directive applies to: a <Directory> section's
 * path or an .htaccess file's directory, without the trailing slash; NULL
 * in the server, a virtual host, <Location>, <Files>, or a pattern (those
 * are checked as paths by script_scope and fall back to the document root
 * if they are not one; so does <If>, whose path is "*If").  <IfModule>,
 * <IfDefine> and the like are no parents: httpd reads their contents into
 * the section around them. */
static const char *directory_of(cmd_parms *cmd)
{
    const ap_directive_t *parent = cmd->directive ? cmd->directive->parent : NULL;
    char *d;
    apr_size_t n;

    if (!cmd->path || cmd->path[0] != '/'
        || (parent && strcasecmp(parent->directive, "<Directory"))) {
        return NULL;
    }
    d = apr_pstrdup(cmd->pool, cmd->path);
    n = strlen(d);
    while (n > 1 && d[n - 1] == '/') {
        d[--n] = '\0';
    }
    return d;
}

static const char *set_on(cmd_parms *cmd, void *cfg, int flag)
{
    ws_dir_conf *c = cfg;

    c->on = flag;
    c->on_scope = directory_of(cmd);
    c->on_set = 1;
    return NULL;
}

static const char *set_command(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_dir_conf *c = cfg;
    char **argv;

    if (apr_tokenize_to_argv(arg, &argv, cmd->pool) != APR_SUCCESS || !argv[0]) {
        return "WebSessionCommand needs a command line, starting with an absolute path";
    }
    if (argv[0][0] != '/') {
        return apr_psprintf(cmd->pool, "WebSessionCommand: '%s' is not an absolute path;"
                            " give the program's full path", argv[0]);
    }
    c->command = arg;
    c->command_argv = argv;
    c->command_scope = NULL;
    if (cmd->path && cmd->directive && cmd->directive->parent
        && !strncasecmp(cmd->directive->parent->directive, "<Location", 9)) {
        c->command_scope = cmd->path;
    }
    c->command_set = 1;
    return NULL;
}

static const char *set_messages(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_dir_conf *c = cfg;

    (void)cmd;
    if (!strcasecmp(arg, "lines")) {
        c->mode = MSG_LINES;
    }
    else if (!strcasecmp(arg, "framed")) {
        c->mode = MSG_FRAMED;
    }
    else {
        return "WebSessionMessages must be 'lines' or 'framed'";
    }
    c->mode_set = 1;
    return NULL;
}

/* A positive decimal number within [min, max]; NULL on success. */
static const char *parse_number(cmd_parms *cmd, const char *arg, apr_int64_t min,
                                apr_int64_t max, apr_int64_t *out)
{
    char *end;
    apr_int64_t v;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || errno || v < min || v > max) {
        return apr_psprintf(cmd->pool, "%s must be a whole number from %" APR_INT64_T_FMT
                            " to %" APR_INT64_T_FMT ", not '%s'",
                            cmd->cmd->name, min, max, arg);
    }
    *out = v;
    return NULL;
}

/* WebSessionResumeTimeout and WebSessionUnusedTimeout: seconds. */
static const char *set_timeout(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_dir_conf *c = cfg;
    apr_int64_t v;
    const char *err = parse_number(cmd, arg, 1, 86400, &v);

    if (err) {
        return apr_pstrcat(cmd->pool, err, " (seconds)", NULL);
    }
    if (!strcasecmp(cmd->cmd->name, "WebSessionUnusedTimeout")) {
        c->unused_timeout = apr_time_from_sec(v);
        c->unused_timeout_set = 1;
    }
    else {
        c->resume_timeout = apr_time_from_sec(v);
        c->resume_timeout_set = 1;
    }
    return NULL;
}

static const char *set_max_per_client(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_dir_conf *c = cfg;
    apr_int64_t v;
    const char *err;

    if (!strcasecmp(arg, "off")) {
        c->max_per_client = 0;
        c->max_per_client_set = 1;
        return NULL;
    }
    err = parse_number(cmd, arg, 1, 1000000, &v);
    if (err) {
        return apr_pstrcat(cmd->pool, err, " or 'off'", NULL);
    }
    c->max_per_client = (int)v;
    c->max_per_client_set = 1;
    return NULL;
}

static const char *set_ping(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_dir_conf *c = cfg;
    apr_int64_t v;
    const char *err = parse_number(cmd, arg, 0, 3600, &v);

    if (err) {
        return apr_pstrcat(cmd->pool, err, " (seconds; 0 turns heartbeats off)", NULL);
    }
    c->ping = apr_time_from_sec(v);
    c->ping_set = 1;
    return NULL;
}

/* WebSessionMaxMessage and WebSessionBuffer: a byte count; cmd->info holds
 * the smallest value allowed. */
static const char *set_size(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_dir_conf *c = cfg;
    apr_int64_t v;
    const char *err = parse_number(cmd, arg, (apr_int64_t)(apr_uintptr_t)cmd->info,
                                   1024 * 1024 * 1024, &v);

    if (err) {
        return apr_pstrcat(cmd->pool, err, " (bytes)", NULL);
    }
    if (!strcasecmp(cmd->cmd->name, "WebSessionBuffer")) {
        c->buffer = (apr_size_t)v;
        c->buffer_set = 1;
    }
    else {
        c->max_message = (apr_size_t)v;
        c->max_message_set = 1;
    }
    return NULL;
}

static const char *set_max_sessions(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_srv_conf *c = ap_get_module_config(cmd->server->module_config, &websession_module);
    apr_int64_t v;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)cfg;
    if (err) {
        return err;
    }
    err = parse_number(cmd, arg, 1, 1000000, &v);
    if (err) {
        return err;
    }
    c->max_sessions = (unsigned)v;
    c->max_sessions_set = 1;
    return NULL;
}

static const char *set_max_relays(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_srv_conf *c = ap_get_module_config(cmd->server->module_config, &websession_module);
    apr_int64_t v;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)cfg;
    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "auto")) {
        c->max_relays = WS_RELAYS_AUTO;
    }
    else if ((err = parse_number(cmd, arg, 0, WS_RELAY_MAX, &v)) != NULL) {
        return apr_pstrcat(cmd->pool, err, " or 'auto'", NULL);
    }
    else {
        c->max_relays = (int)v;
    }
    c->max_relays_set = 1;
    return NULL;
}

/* WebSessionMaxRelays as a number: 'auto' is half the worker threads the
 * MPM may run (MaxRequestWorkers), so that relayed sessions can never take
 * the threads ordinary requests need. */
static unsigned resolve_max_relays(const ws_srv_conf *sc)
{
    int daemons = 0, threads = 0;

    if (sc->max_relays != WS_RELAYS_AUTO) {
        return (unsigned)sc->max_relays;
    }
    if (ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons) != APR_SUCCESS || daemons < 1) {
        daemons = 1;
    }
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 1) {
        threads = 1;
    }
    if (daemons * threads / 2 > WS_RELAY_MAX) {
        return WS_RELAY_MAX;
    }
    return daemons * threads / 2 > 0 ? (unsigned)(daemons * threads / 2) : 1;
}

static const char *set_route(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_srv_conf *c = ap_get_module_config(cmd->server->module_config, &websession_module);

    (void)cfg;
    if (!strcasecmp(arg, "none")) {
        c->route = NULL;
    }
    else if (!ws_route_valid(arg)) {
        return apr_psprintf(cmd->pool, "WebSessionRoute: '%s' is not a route; use 1 to %d"
                            " letters, digits, '_' or '-' (the BalancerMember's route=)",
                            arg, WS_ROUTE_MAX);
    }
    else {
        c->route = arg;
    }
    c->route_set = 1;
    return NULL;
}

/* A cookie name: an RFC 6265 token, kept to the characters every balancer
 * and browser takes in a name. */
static int cookie_name_ok(const char *name)
{
    size_t n = strlen(name);

    return n >= 1 && n <= 64
           && strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                           "0123456789_-.") == n;
}

static const char *set_route_cookie(cmd_parms *cmd, void *cfg, const char *name,
                                    const char *flag)
{
    ws_srv_conf *c = ap_get_module_config(cmd->server->module_config, &websession_module);

    (void)cfg;
    if (!strcasecmp(name, "off")) {
        if (flag) {
            return "WebSessionRouteCookie off takes no second argument";
        }
        c->cookie = NULL;
    }
    else if (!cookie_name_ok(name)) {
        return apr_psprintf(cmd->pool, "WebSessionRouteCookie: '%s' is not a cookie name;"
                            " use 1 to 64 letters, digits, '_', '-' or '.' (or 'off')", name);
    }
    else if (flag && strcasecmp(flag, "Secure")) {
        return apr_psprintf(cmd->pool, "WebSessionRouteCookie: the second argument may only"
                            " be 'Secure', not '%s'", flag);
    }
    else {
        c->cookie = name;
    }
    c->cookie_secure = flag != NULL;
    c->cookie_set = 1;
    return NULL;
}

static const char *set_origin(cmd_parms *cmd, void *cfg, const char *arg)
{
    ws_dir_conf *c = cfg;

    if (!c->origin_set) {
        c->origin = WS_ORIGIN_LIST;
        c->origin_same = 0;
        c->origins = apr_array_make(cmd->pool, 4, sizeof(const char *));
        c->origin_set = 1;
    }
    if (!strcasecmp(arg, "any")) {
        c->origin = WS_ORIGIN_ANY;
    }
    else if (!strcasecmp(arg, "same")) {
        c->origin_same = 1;
    }
    else {
        char n[WS_ORIGIN_MAX];

        if (ws_hs_origin_normalise(arg, n, sizeof(n)) < 0) {
            return apr_psprintf(cmd->pool, "WebSessionOrigin: '%s' is not an origin;"
                                " use 'same', 'any' or origins like https://example.com:8443",
                                arg);
        }
        APR_ARRAY_PUSH(c->origins, const char *) = apr_pstrdup(cmd->pool, n);
    }
    return NULL;
}

/* ---- helpers for the handler ------------------------------------------ */

/* Answer with status and a plain-text explanation; error is a token the
 * client can match (WebSession-Error header). */
static int respond(request_rec *r, int status, const char *error, const char *text)
{
    ws_stat what = !strcmp(error, "too-many-sessions") ? WS_STAT_REFUSED_FULL
                   : !strcmp(error, "too-many-sessions-client") ? WS_STAT_REFUSED_CLIENT
                   : !strcmp(error, "too-many-relays") ? WS_STAT_REFUSED_RELAYS
                   : !strcmp(error, "session-unknown") ? WS_STAT_REFUSED_UNKNOWN
                   : WS_STAT_REFUSED_OTHER;

    if (shared) {
        ws_table_note(shared->table, what);     /* the status page's totals */
    }
    r->status = status;
    apr_table_setn(r->err_headers_out, "WebSession-Error", error);
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_rprintf(r, "%s\n", text);
    return OK;
}

static int origin_allowed(request_rec *r, const ws_dir_conf *c)
{
    ws_origin_policy p;

    p.mode = c->origin;
    p.same = c->origin_same;
    p.list = c->origins ? (const char *const *)c->origins->elts : NULL;
    p.n = c->origins ? (size_t)c->origins->nelts : 0;
    return ws_hs_origin_allowed(&p, apr_table_get(r->headers_in, "Origin"),
                                apr_table_get(r->headers_in, "Host"),
                                ap_ssl_conn_is_ssl(r->connection));
}

/* Is the target a persistent script?  Sets *argv0 for an executable file. */
static int is_persistent(request_rec *r, const ws_dir_conf *c)
{
    if (c->command) {
        return 1;
    }
    if (r->finfo.filetype != APR_REG) {
        return 0;
    }
    /* Claimed by another handler (AddHandler cgi-script, SetHandler ...)?
     * Without a claim r->handler is a content type or the default. */
    if (r->handler && *r->handler && strcmp(r->handler, "websession")
        && strcmp(r->handler, "default-handler") && !ap_strchr_c(r->handler, '/')) {
        return 0;
    }
    return access(r->filename, X_OK) == 0;
}

/* What a session is bound to: the virtual host, the script, and the
 * authenticated user who opened it (r->user; none is an identity too).
 * The table compares it with the secret in constant time, so a resume by
 * another user is answered exactly as an unknown id. */
static void binding(request_rec *r, const ws_dir_conf *c, unsigned char out[WS_BIND_LEN])
{
    apr_sha1_ctx_t ctx;
    const char *vhost = apr_psprintf(r->pool, "%s://%s:%u",
                                     ap_ssl_conn_is_ssl(r->connection) ? "https" : "http",
                                     r->server->server_hostname
                                         ? r->server->server_hostname : "",
                                     (unsigned)r->connection->local_addr->port);
    const char *script = c->command ? apr_pstrcat(r->pool, "cmd:", c->command, NULL)
                                    : r->filename;

    apr_sha1_init(&ctx);
    apr_sha1_update(&ctx, vhost, (unsigned)strlen(vhost) + 1);
    apr_sha1_update(&ctx, script, (unsigned)strlen(script));
    if (r->user) {
        /* No script name contains a NUL: "script\0user" is no script's. */
        apr_sha1_update(&ctx, "", 1);
        apr_sha1_update(&ctx, r->user, (unsigned)strlen(r->user));
    }
    apr_sha1_final(out, &ctx);
}

/* The key a client's sessions are counted under: a keyed hash of its
 * address as httpd sees it (mod_remoteip applies), IPv6 by its /64, since
 * one host commonly holds a whole /64.  Never 0 (0 counts nothing). */
static apr_uint32_t client_key(request_rec *r)
{
    const apr_sockaddr_t *a = r->useragent_addr ? r->useragent_addr
                                                : r->connection->client_addr;
    const unsigned char *p = NULL;
    apr_size_t n = 0;
    unsigned char digest[APR_SHA1_DIGESTSIZE];
    apr_sha1_ctx_t ctx;
    apr_uint32_t k;

    if (a && a->family == AF_INET) {
        p = (const unsigned char *)&a->sa.sin.sin_addr;
        n = 4;
    }
#if APR_HAVE_IPV6
    else if (a && a->family == AF_INET6) {
        p = (const unsigned char *)&a->sa.sin6.sin6_addr;
        n = 8;
        if (IN6_IS_ADDR_V4MAPPED(&a->sa.sin6.sin6_addr)) {
            p += 12;
            n = 4;
        }
    }
#endif
    apr_sha1_init(&ctx);
    apr_sha1_update_binary(&ctx, shared->client_key, sizeof(shared->client_key));
    if (p) {
        apr_sha1_update_binary(&ctx, p, (unsigned)n);
    }
    apr_sha1_final(digest, &ctx);
    k = (apr_uint32_t)digest[0] | (apr_uint32_t)digest[1] << 8
        | (apr_uint32_t)digest[2] << 16 | (apr_uint32_t)digest[3] << 24;
    return k ? k : 1;
}

/* WebSessionMaxSessionsPerClient as a number (0: no limit). */
static unsigned per_client_limit(const ws_dir_conf *c)
{
    unsigned cap = ws_table_capacity(shared->table);

    if (c->max_per_client == WS_PER_CLIENT_DEFAULT) {
        return cap / 4 ? cap / 4 : 1;
    }
    return (unsigned)c->max_per_client;
}

/* The CGI/1.1 environment of this request, as "NAME=value" strings. */
static char **script_env(request_rec *r, const ws_dir_conf *c, const char *pubhex)
{
    apr_table_t *e = r->subprocess_env;

    ap_add_common_vars(r);
    ap_add_cgi_vars(r);
    if (c->command && c->command_scope) {
        apr_size_t n = strlen(c->command_scope);
        while (n > 1 && c->command_scope[n - 1] == '/') {
            n--;
        }
        if (!strncmp(r->uri, c->command_scope, n)
            && (r->uri[n] == '/' || r->uri[n] == '\0')) {
            apr_table_setn(e, "SCRIPT_NAME", apr_pstrndup(r->pool, r->uri, n));
            apr_table_setn(e, "PATH_INFO", r->uri + n);
        }
    }
    if (c->command) {
        apr_table_unset(e, "PATH_TRANSLATED");
        apr_table_setn(e, "SCRIPT_FILENAME", c->command_argv[0]);
    }
    apr_table_setn(e, "WEBSESSION_ID", pubhex);
    apr_table_unset(e, "HTTP_SESSION_ID");      /* the resume secret */
    return ap_create_environment(r->pool, e);
}

static char *dir_of(apr_pool_t *p, const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash && slash != path ? apr_pstrndup(p, path, slash - path) : apr_pstrdup(p, "/");
}

/* ---- the script's safety (docs/DIRECTIVES.md, "Script safety") --------- */

/* Is path root itself or below it?  Both absolute, root without a trailing
 * slash (but "/"). */
static int path_within(const char *path, const char *root)
{
    apr_size_t n = strlen(root);

    if (!strcmp(root, "/")) {
        return path[0] == '/';
    }
    return !strncmp(path, root, n) && (path[n] == '/' || path[n] == '\0');
}

/* realpath() into the pool; NULL with errno. */
static char *resolved(apr_pool_t *p, const char *path)
{
    char *r = realpath(path, NULL), *copy;

    if (!r) {
        return NULL;
    }
    copy = apr_pstrdup(p, r);
    free(r);
    return copy;
}

/* What unsafe_node checks: the program, a directory from the program's up
 * to the scope, or a directory above the scope. */
enum { NODE_PROGRAM, NODE_DIR, NODE_ABOVE };

/* Why path may not be trusted: it is missing or of the wrong type; or,
 * the program or a directory up to the scope, writable by its group or by
 * others; or, above the scope, writable by others without the sticky bit
 * (anyone could rename the whole scope away and put their own in its
 * place).  NULL when it is none of these.  stat() follows symlinks: the
 * mode is that of what the name leads to. */
static const char *unsafe_node(apr_pool_t *p, const char *path, int kind)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        apr_status_t e = errno;

        return apr_psprintf(p, "%s cannot be checked: %pm", path, &e);
    }
    if (kind == NODE_PROGRAM ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode)) {
        return apr_psprintf(p, "%s is not a %s", path,
                            kind == NODE_PROGRAM ? "regular file" : "directory");
    }
    if (kind == NODE_ABOVE) {
        if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
            return apr_psprintf(p, "directory %s, above the scope, is writable by others"
                                " without the sticky bit (mode %04o)",
                                path, (unsigned)(st.st_mode & 07777));
        }
        return NULL;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        return apr_psprintf(p, "%s %s is writable by %s (mode %04o)",
                            kind == NODE_PROGRAM ? "the program" : "directory", path,
                            (st.st_mode & S_IWOTH) ? "others" : "its group",
                            (unsigned)(st.st_mode & 07777));
    }
    return NULL;
}

/* The directories from dir up to "/": up to root (both included) as
 * NODE_DIR when dir is root or below it, else dir alone; the rest as
 * NODE_ABOVE. */
static const char *unsafe_dirs(apr_pool_t *p, const char *dir, const char *root)
{
    const char *d = dir;
    int kind = NODE_DIR, walk = root && path_within(dir, root);

    for (;;) {
        const char *why = unsafe_node(p, d, kind);

        if (why || !strcmp(d, "/")) {
            return why;
        }
        if (kind == NODE_DIR && (!walk || !strcmp(d, root))) {
            kind = NODE_ABOVE;
        }
        d = dir_of(p, d);
    }
}

/* The directory up to which the directories above a script file are
 * checked: where WebSession On was set (a <Directory>, an .htaccess), else
 * the document root the request was mapped from (DocumentRoot, or an
 * Alias's target), whichever holds the script; else its own directory. */
static const char *script_scope(request_rec *r, const ws_dir_conf *c, const char *program)
{
    const char *docroot = ap_context_document_root(r);
    char *d;
    apr_size_t n;

    if (c->on_scope && !strpbrk(c->on_scope, "*?[") && path_within(program, c->on_scope)) {
        return c->on_scope;
    }
    if (docroot && docroot[0] == '/') {
        d = apr_pstrdup(r->pool, docroot);
        n = strlen(d);
        while (n > 1 && d[n - 1] == '/') {
            d[--n] = '\0';
        }
        if (path_within(program, d)) {
            return d;
        }
    }
    return dir_of(r->pool, program);
}

/* A program that someone other than its owner could change (or replace, or
 * put beside it) must not run for every visitor, as suexec refuses it for
 * CGI: NULL when program is safe to run, else why not.  Refused when any
 * of these cannot be checked, or (unsafe_node):
 *  - the file execve() runs, program with every symlink resolved, is not a
 *    regular file or is writable by its group or others;
 *  - a directory from program's own up to the scope (script_scope; for
 *    WebSessionCommand the program's directory alone) is writable by its
 *    group or others, along the path as configured or requested (a symlink
 *    there is in a directory that is checked) and along the resolved path,
 *    up to the resolved scope (a target outside the scope: its own
 *    directory);
 *  - a directory above those, up to "/", is writable by others without
 *    the sticky bit.
 * A program that does not exist (a WebSessionCommand) is left to fail at
 * its start, once the directories from the nearest that exists are safe. */
static const char *script_unsafe(request_rec *r, const ws_dir_conf *c, const char *program)
{
    apr_pool_t *p = r->pool;
    const char *root = c->command ? dir_of(p, program) : script_scope(r, c, program);
    const char *real = resolved(p, program), *real_root, *why;

    if (!real) {
        apr_status_t e = errno;
        const char *d = program;
        struct stat st;

        if (e != ENOENT && e != ENOTDIR) {
            return apr_psprintf(p, "%s cannot be resolved: %pm", program, &e);
        }
        /* A missing program (a WebSessionCommand) fails to start, unless
         * the directory where it would be could be written by others: they
         * could put it there between this check and the exec. */
        do {
            d = dir_of(p, d);
        } while (strcmp(d, "/") && stat(d, &st) < 0 && (errno == ENOENT || errno == ENOTDIR));
        why = unsafe_dirs(p, d, root);
        if (!why && (real = resolved(p, d)) != NULL) {
            why = unsafe_dirs(p, real, resolved(p, root));
        }
        return why;
    }
    why = unsafe_node(p, real, NODE_PROGRAM);
    if (!why) {
        why = unsafe_dirs(p, dir_of(p, program), root);
    }
    if (!why) {
        real_root = resolved(p, root);
        why = unsafe_dirs(p, dir_of(p, real), real_root);
    }
    return why;
}

/* RLimitCPU, RLimitMEM, RLimitNPROC of the request's directory (core's
 * per-dir configuration, NULL when not set), for the keeper to apply to the
 * script as mod_cgid does to a CGI script. */
static void spawn_rlimits(request_rec *r, ipc_spawn *sp)
{
    core_dir_config *core = ap_get_core_module_config(r->per_dir_config);
    const struct rlimit *limit[IPC_RLIMIT_COUNT] = {
        [IPC_RLIMIT_CPU] = core->limit_cpu,
        [IPC_RLIMIT_MEM] = core->limit_mem,
        [IPC_RLIMIT_NPROC] = core->limit_nproc,
    };

    for (int i = 0; i < IPC_RLIMIT_COUNT; i++) {
        if (limit[i]) {
            sp->rlimit_set |= 1u << i;
            sp->rlimit[i][0] = (uint64_t)limit[i]->rlim_cur;
            sp->rlimit[i][1] = (uint64_t)limit[i]->rlim_max;
        }
    }
}

/* Build and send IPC_SPAWN on fd. */
static int send_spawn(request_rec *r, const ws_dir_conf *c, int v1, int fd, unsigned slot,
                      apr_uint32_t gen, const unsigned char pubid[WS_PUBID_LEN],
                      const unsigned char secret[WS_SECRET_LEN], const char *route,
                      char **argv, char **envp, const char *cwd)
{
    ipc_spawn sp;
    apr_size_t len = strlen(cwd) + 1;
    char *body, *q;
    int i;

    memset(&sp, 0, sizeof(sp));
    for (i = 0; argv[i]; i++) {
        len += strlen(argv[i]) + 1;
    }
    sp.nargv = (uint32_t)i;
    for (i = 0; envp[i]; i++) {
        len += strlen(envp[i]) + 1;
    }
    sp.nenv = (uint32_t)i;
    sp.slot = slot;
    sp.gen = gen;
    sp.mode = (uint32_t)c->mode;
    sp.max_message = (uint32_t)c->max_message;
    sp.buffer = (uint32_t)c->buffer;
    sp.resume_timeout_ms = (uint32_t)apr_time_as_msec(c->resume_timeout);
    sp.unused_timeout_ms = (uint32_t)apr_time_as_msec(c->unused_timeout < c->resume_timeout
                                                      ? c->unused_timeout : c->resume_timeout);
    sp.ping_ms = (uint32_t)apr_time_as_msec(c->ping);
    sp.protocol = v1 ? IPC_PROTOCOL_V1 : IPC_PROTOCOL_PLAIN;
    sp.strings_len = (uint32_t)len;
    spawn_rlimits(r, &sp);
    memcpy(sp.pubid, pubid, WS_PUBID_LEN);
    memcpy(sp.secret, secret, WS_SECRET_LEN);
    if (route) {
        apr_cpystrn(sp.route, route, sizeof(sp.route));
    }

    body = apr_palloc(r->pool, sizeof(sp) + len);
    memcpy(body, &sp, sizeof(sp));
    q = body + sizeof(sp);
    q = stpcpy(q, cwd) + 1;
    for (i = 0; argv[i]; i++) {
        q = stpcpy(q, argv[i]) + 1;
    }
    for (i = 0; envp[i]; i++) {
        q = stpcpy(q, envp[i]) + 1;
    }
    return ipc_send_msg(fd, IPC_SPAWN, body, sizeof(sp) + len, -1);
}

static int read_reply(int fd, ipc_reply *rep)
{
    return ipc_recv_reply(fd, rep);
}

/* WebSessionRouteCookie: "NAME=.<route>" on the answer that starts a
 * session, so that a balancer that reads its sticky route from a cookie
 * (after the first '.') brings the browser back here.  Only the route: the
 * secret never goes into a cookie, which balancers read and log. */
static void add_route_cookie(request_rec *r)
{
    ws_srv_conf *sc = ap_get_module_config(r->server->module_config, &websession_module);

    if (!sc->cookie || !sc->route) {
        return;
    }
    apr_table_addn(r->headers_out, "Set-Cookie",
                   apr_pstrcat(r->pool, sc->cookie, "=.", sc->route,
                               "; Path=/; HttpOnly; SameSite=Lax",
                               sc->cookie_secure || ap_ssl_conn_is_ssl(r->connection)
                                   ? "; Secure" : "", NULL));
}

/* 101 Switching Protocols, then the connection goes to the keeper. */
static void send_101(request_rec *r, int v1, const char *id)
{
    char accept[WS_ACCEPT_LEN + 1];

    ws_hs_accept(apr_table_get(r->headers_in, "Sec-WebSocket-Key"), accept);
    r->status = HTTP_SWITCHING_PROTOCOLS;
    r->status_line = NULL;
    apr_table_clear(r->headers_out);
    apr_table_setn(r->headers_out, "Upgrade", "websocket");
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    apr_table_setn(r->headers_out, "Sec-WebSocket-Accept", apr_pstrdup(r->pool, accept));
    if (v1) {
        apr_table_setn(r->headers_out, "Sec-WebSocket-Protocol", WSV1_PROTOCOL);
    }
    if (id) {
        apr_table_setn(r->headers_out, "Session-ID", id);
        add_route_cookie(r);
    }
    ap_send_interim_response(r, 1);
}

/* The answer that starts the session's traffic (101, or the fallback's
 * 200), then the connection goes to the keeper. */
static int switch_protocols(request_rec *r, const ws_how *how, int keeper_fd, const char *id,
                            const char *fp)
{
    if (how->http) {
        if (id) {
            add_route_cookie(r);
        }
        ws_fallback_start(r, id);
    }
    else {
        send_101(r, how->v1, id);
    }
    ws_handover(r, keeper_fd, (how->v1 ? IPC_ATTACH_V1 : 0) | how->http, how->received, fp);
    return OK;
}

/* websession.v1 clients (browsers) cannot read an HTTP error status: they
 * get the WebSocket and then a close frame that says what went wrong. */
static int refuse_in_band(request_rec *r, unsigned code, const char *reason)
{
    ws_table_note(shared->table, code == WSV1_CLOSE_UNKNOWN ? WS_STAT_REFUSED_UNKNOWN
                                                            : WS_STAT_REFUSED_OTHER);
    conn_rec *c = r->connection;
    unsigned char frame[WS_MAX_HEADER + WS_MAX_CONTROL], pl[WS_MAX_CONTROL];
    size_t n = ws_close_payload(pl, code, reason);
    size_t h = ws_frame_header(frame, 1, WS_OP_CLOSE, n, NULL);
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);

    memcpy(frame + h, pl, n);
    send_101(r, 1, NULL);
    c->keepalive = AP_CONN_CLOSE;
    r->output_filters = r->proto_output_filters = c->output_filters;
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_heap_create((const char *)frame, h + n, NULL,
                                                       c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
    ap_pass_brigade(c->output_filters, bb);
    return OK;
}

typedef struct {
    unsigned token;
    apr_uint32_t pid;
} relay_place;

static apr_status_t relay_done(void *data)
{
    relay_place *rp = data;

    ws_table_relay_give(shared->table, rp->token, rp->pid);
    return APR_SUCCESS;
}

/* Does the process that holds a relay place still run?  (A worker child
 * killed or crashed in the middle of a relay never gave its places back.) */
static int process_alive(apr_uint32_t pid)
{
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* A connection that will be relayed holds a worker thread while it lasts:
 * take one of WebSessionMaxRelays for the life of the request, or refuse
 * (503 too-many-relays).  DECLINED when the request may go on. */
static int take_relay(request_rec *r)
{
    relay_place *rp;

    if (!ws_relay_needed(r->connection)) {
        return DECLINED;
    }
    rp = apr_palloc(r->pool, sizeof(*rp));
    rp->pid = (apr_uint32_t)getpid();
    rp->token = ws_table_relay_take(shared->table, shared->max_relays, rp->pid, process_alive);
    if (!rp->token) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "WS00048: WebSessionMaxRelays (%u) connections are relayed (TLS,"
                      " HTTP/2); refusing another session connection", shared->max_relays);
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return respond(r, HTTP_SERVICE_UNAVAILABLE, "too-many-relays",
                       "The server relays as many encrypted session connections as it may"
                       " (WebSessionMaxRelays). Try again later.");
    }
    apr_pool_cleanup_register(r->pool, rp, relay_done, apr_pool_cleanup_null);
    return DECLINED;
}

static int new_session(request_rec *r, const ws_dir_conf *c, const ws_how *how)
{
    ws_srv_conf *sc = ap_get_module_config(r->server->module_config, &websession_module);
    unsigned char secret[WS_SECRET_LEN], pubid[WS_PUBID_LEN], bind[WS_BIND_LEN];
    char id[WS_ID_MAX + 1], fp[2 * WS_PUBID_LEN + 1], name[IPC_NAME_MAX];
    unsigned slot, limit = per_client_limit(c);
    apr_uint32_t gen;
    apr_status_t rv = APR_ENOSPC;
    ipc_reply rep;
    char **argv;
    const char *cwd;
    const char *program = c->command ? c->command_argv[0] : r->filename;
    const char *unsafe = script_unsafe(r, c, program);
    int fd, tries;

    if (unsafe) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "WS00006: script %s not run: %s", program, unsafe);
        return respond(r, HTTP_INTERNAL_SERVER_ERROR, "script-unsafe",
                       "The script is not run: it, or a directory above it, could be"
                       " changed by others; see the server's error log.");
    }
    binding(r, c, bind);
    /* A secret may live only near its home slot (session_table.h): one
     * whose slots are all taken is drawn again. */
    for (tries = 0; tries < WS_RESERVE_TRIES && rv == APR_ENOSPC; tries++) {
        if (apr_generate_random_bytes(secret, sizeof(secret)) != APR_SUCCESS
            || apr_generate_random_bytes(pubid, sizeof(pubid)) != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "WS00001: no random bytes for a session id");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        rv = ws_table_reserve(shared->table, secret, bind, pubid, client_key(r), limit,
                              apr_time_now(), WS_STALE_RESERVATION, &slot, &gen);
    }
    ws_id_encode(secret, sc->route, id);
    ws_pubid_hex(pubid, fp);
    if (rv == APR_EBUSY) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "WS00046: client %s has WebSessionMaxSessionsPerClient (%u) sessions;"
                      " refusing another", r->useragent_ip ? r->useragent_ip : "?", limit);
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return respond(r, HTTP_SERVICE_UNAVAILABLE, "too-many-sessions-client",
                       "This client runs as many sessions as it may"
                       " (WebSessionMaxSessionsPerClient). Try again later.");
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "WS00002: WebSessionMaxSessions (%u) reached; refusing a new session",
                      ws_table_capacity(shared->table));
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return respond(r, HTTP_SERVICE_UNAVAILABLE, "too-many-sessions",
                       "The server runs as many sessions as it may (WebSessionMaxSessions)."
                       " Try again later.");
    }
    if (c->command) {
        argv = c->command_argv;
        cwd = dir_of(r->pool, argv[0]);
    }
    else {
        argv = apr_pcalloc(r->pool, 2 * sizeof(char *));
        argv[0] = r->filename;
        cwd = dir_of(r->pool, r->filename);
    }

    ipc_spawner_name(name, &shared->names);
    fd = ipc_connect(name, WS_SPAWN_TIMEOUT_MS);
    if (fd < 0 || send_spawn(r, c, how->v1, fd, slot, gen, pubid, secret, sc->route, argv,
                             script_env(r, c, fp), cwd) < 0
        || read_reply(fd, &rep) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, errno, r,
                      "WS00003: [%s] the session spawner did not answer", fp);
        if (fd >= 0) {
            close(fd);
        }
        ws_table_release(shared->table, slot, gen);
        return respond(r, HTTP_SERVICE_UNAVAILABLE, "spawner-unavailable",
                       "The session could not be started (spawner unavailable).");
    }
    if (rep.status != IPC_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "WS00004: [%s] session for %s not started: %s", fp, argv[0],
                      rep.message);
        close(fd);
        ws_table_release(shared->table, slot, gen);
        return respond(r, HTTP_INTERNAL_SERVER_ERROR, "script-failed",
                       "The script could not be started; see the server's error log.");
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "WS00005: [%s] new session, keeper %ld", fp, (long)rep.keeper_pid);
    ws_table_note(shared->table, WS_STAT_STARTED);
    apr_table_setn(r->notes, "websession-id", apr_pstrdup(r->pool, fp));
    return switch_protocols(r, how, fd, apr_pstrdup(r->pool, id), fp);
}

/* A browser's WebSocket sees no HTTP status: websession.v1 refusals go in
 * band (a 101, then a close frame).  The HTTP fallback reads statuses. */
static int answers_in_band(const ws_how *how)
{
    return how->v1 && !how->http;
}

/* The one answer for an id that names no live session of this script here
 * (unknown, expired, bound elsewhere alike): no existence oracle. */
static int session_unknown(request_rec *r, const ws_how *how)
{
    if (answers_in_band(how)) {
        return refuse_in_band(r, WSV1_CLOSE_UNKNOWN, "session unknown or expired");
    }
    return respond(r, HTTP_GONE, "session-unknown",
                   "No such session: it is unknown, expired or belongs elsewhere.");
}

/* Find the session id names and have its keeper accept us (HELLO).
 * Sets *keeper_fd, or -1 after answering the client; returns the
 * handler's result in that case. */
/* The session id names a live session of this script: 1 with its secret
 * and slot; else 0, the refusal answered and its status in *rc. */
static int find_session(request_rec *r, const ws_dir_conf *c, const ws_how *how,
                        const char *id, unsigned char secret[WS_SECRET_LEN],
                        ws_slot_info *info, int *rc)
{
    ws_srv_conf *sc = ap_get_module_config(r->server->module_config, &websession_module);
    unsigned char bind[WS_BIND_LEN];
    const char *route;

    if (!ws_id_decode(id, secret, &route)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "WS00010: malformed Session-ID header (%lu characters)",
                      (unsigned long)strlen(id));
        if (answers_in_band(how)) {
            *rc = refuse_in_band(r, WSV1_CLOSE_MISMATCH, "malformed session id");
            return 0;
        }
        *rc = respond(r, HTTP_BAD_REQUEST, "session-id-malformed",
                      "The Session-ID header is malformed.");
        return 0;
    }
    if (route && (!sc->route || strcmp(route, sc->route) != 0)) {
        /* Another node's session (a failover, a misrouted request): it is
         * not here, so the answer is the unknown session's, at once. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "WS00070: Session-ID is for route %s, this server's is %s:"
                      " answered as an unknown session", route,
                      sc->route ? sc->route : "none");
        *rc = session_unknown(r, how);
        return 0;
    }
    binding(r, c, bind);
    if (ws_table_lookup(shared->table, secret, bind, info) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "WS00011: Session-ID names no session of this script");
        *rc = session_unknown(r, how);
        return 0;
    }
    return 1;
}

/* Have the keeper of the session find_session() found accept us (HELLO):
 * OK with the connection in *keeper_fd, or the refusal answered (*keeper_fd
 * -1).  A fallback down request's resume point goes with the HELLO: the
 * keeper refuses a stale one while a status can still say so (409). */
static int contact_keeper(request_rec *r, const ws_how *how,
                          const unsigned char secret[WS_SECRET_LEN], const ws_slot_info *info,
                          int *keeper_fd, char fp[2 * WS_PUBID_LEN + 1])
{
    char name[IPC_NAME_MAX];
    unsigned char hello[WS_SECRET_LEN + sizeof(ipc_hello_down)];
    ipc_hello_down hd;
    size_t hello_len = WS_SECRET_LEN;
    ipc_reply rep;
    int fd, answered;

    *keeper_fd = -1;
    ws_pubid_hex(info->pubid, fp);
    memcpy(hello, secret, WS_SECRET_LEN);
    if (how->down) {
        /* The keeper judges the resume point before the 200 goes out. */
        hd.received = how->received;
        memcpy(hello + WS_SECRET_LEN, &hd, sizeof(hd));
        hello_len += sizeof(hd);
    }
    ipc_keeper_name(name, &shared->names, info->slot, info->gen);
    fd = ipc_connect(name, WS_SPAWN_TIMEOUT_MS);
    answered = fd >= 0 && ipc_send_msg(fd, IPC_HELLO, hello, hello_len, -1) == 0
               && read_reply(fd, &rep) == 0;
    if (answered && rep.status == IPC_ERR_STALE && how->down) {
        close(fd);
        return ws_fallback_stale(r, how->received, rep.count, fp, respond);
    }
    if (!answered || rep.status != IPC_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, errno, r,
                      "WS00012: [%s] session's keeper is gone or ending", fp);
        if (fd >= 0) {
            close(fd);
        }
        if (info->keeper_pid > 0 && kill(info->keeper_pid, 0) < 0 && errno == ESRCH) {
            ws_table_release(shared->table, info->slot, info->gen);
        }
        return session_unknown(r, how);
    }
    apr_table_setn(r->notes, "websession-id", apr_pstrdup(r->pool, fp));
    *keeper_fd = fd;
    return OK;
}

/* find_session(), then contact_keeper(). */
static int reach_keeper(request_rec *r, const ws_dir_conf *c, const ws_how *how,
                        const char *id, int *keeper_fd, char fp[2 * WS_PUBID_LEN + 1])
{
    unsigned char secret[WS_SECRET_LEN];
    ws_slot_info info;
    int rc;

    *keeper_fd = -1;
    if (!find_session(r, c, how, id, secret, &info, &rc)) {
        return rc;
    }
    return contact_keeper(r, how, secret, &info, keeper_fd, fp);
}

static int resume_session(request_rec *r, const ws_dir_conf *c, const ws_how *how,
                          const char *id)
{
    char fp[2 * WS_PUBID_LEN + 1];
    int fd, rc = reach_keeper(r, c, how, id, &fd, fp);

    if (fd < 0) {
        return rc;
    }
    /* Polls come back all the time: only news is logged at info. */
    ap_log_rerror(APLOG_MARK, (how->http & IPC_ATTACH_POLL) ? APLOG_DEBUG : APLOG_INFO, 0, r,
                  "WS00013: [%s] client re-attached", fp);
    return switch_protocols(r, how, fd, NULL, fp);
}

static int refuse_origin(request_rec *r)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "WS00022: Origin %s is not allowed by WebSessionOrigin",
                  apr_table_get(r->headers_in, "Origin"));
    return respond(r, HTTP_FORBIDDEN, "origin-refused",
                   "This page's origin may not open sessions here (WebSessionOrigin).");
}

/* A request of the HTTP fallback (it has WebSession-Transport). */
static int fallback_request(request_rec *r, const ws_dir_conf *c)
{
    const char *id = apr_table_get(r->headers_in, "Session-ID");
    char fp[2 * WS_PUBID_LEN + 1];
    unsigned char secret[WS_SECRET_LEN];
    ws_slot_info info;
    ws_fallback_req req;
    ws_how how;
    int fd, rc = ws_fallback_parse(r, &req, respond);

    if (rc != DECLINED) {
        return rc;
    }
    if (!origin_allowed(r, c)) {
        return refuse_origin(r);
    }
    memset(&how, 0, sizeof(how));
    how.v1 = 1;
    if (req.down) {
        how.http = req.flags;
        how.down = 1;
        how.received = req.received;
        if ((rc = take_relay(r)) != DECLINED) {
            return rc;
        }
        return id ? resume_session(r, c, &how, id) : new_session(r, c, &how);
    }
    if (!id) {
        return respond(r, HTTP_BAD_REQUEST, "bad-request",
                       "A POST needs the Session-ID header of its session.");
    }
    how.http = req.flags;
    if (!find_session(r, c, &how, id, secret, &info, &rc)) {
        return rc;      /* refused before its body is read */
    }
    rc = ws_fallback_read_post(r, &req, IPC_MAX_POST(c->buffer, c->max_message), respond);
    if (rc != DECLINED) {
        return rc;
    }
    rc = contact_keeper(r, &how, secret, &info, &fd, fp);
    if (fd < 0) {
        return rc;
    }
    return ws_fallback_post(r, &req, fd, fp, respond);
}

/* ---- hooks ------------------------------------------------------------ */

static int ws_handler(request_rec *r)
{
    ws_dir_conf *c = ap_get_module_config(r->per_dir_config, &websession_module);
    ws_hs_request hs;
    ws_hs_result res;
    const char *id, *protocols;
    char idbuf[256];
    ws_how how;
    int v1, rc;

    if (!c->on || r->main) {
        return DECLINED;
    }
    if (!is_persistent(r, c)) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "WS00023: %s is not persistent (handler %s); declined",
                      r->filename, r->handler ? r->handler : "none");
        return DECLINED;
    }
    if (!shared) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "WS00020: sessions are unavailable: the module did not initialise");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (apr_table_get(r->headers_in, "WebSession-Transport")) {
        return fallback_request(r, c);
    }
    hs.method = r->method;
    hs.http11 = r->proto_num >= HTTP_VERSION(1, 1);
    hs.upgrade = apr_table_get(r->headers_in, "Upgrade");
    hs.connection = apr_table_get(r->headers_in, "Connection");
    hs.version = apr_table_get(r->headers_in, "Sec-WebSocket-Version");
    hs.key = apr_table_get(r->headers_in, "Sec-WebSocket-Key");
    res = ws_hs_check(&hs);
    switch (res) {
    case WS_HS_OK:
        break;
    case WS_HS_NOT_WEBSOCKET:
        apr_table_setn(r->err_headers_out, "Upgrade", "websocket");
        apr_table_setn(r->err_headers_out, "Connection", "Upgrade");
        return respond(r, HTTP_UPGRADE_REQUIRED, "upgrade-required",
                       "This URL is a persistent WebSession script: connect to it"
                       " with a WebSocket client.");
    case WS_HS_BAD_METHOD:
        apr_table_setn(r->err_headers_out, "Allow", "GET");
        return respond(r, HTTP_METHOD_NOT_ALLOWED, "bad-handshake",
                       "A WebSocket upgrade must use GET.");
    case WS_HS_BAD_VERSION:
        apr_table_setn(r->err_headers_out, "Sec-WebSocket-Version", "13");
        /* fall through */
    default:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "WS00021: refused WebSocket handshake: %s", ws_hs_result_text(res));
        return respond(r, HTTP_BAD_REQUEST, "bad-handshake", ws_hs_result_text(res));
    }
    if (!origin_allowed(r, c)) {
        return refuse_origin(r);
    }
    protocols = apr_table_get(r->headers_in, "Sec-WebSocket-Protocol");
    v1 = ws_hs_has_token(protocols, WSV1_PROTOCOL);
    id = apr_table_get(r->headers_in, "Session-ID");
    if (!id && v1) {
        /* Browsers cannot send headers: the id rides in a protocol token.
         * One too long to be an id is malformed, never "no id". */
        switch (ws_hs_token_after(protocols, WSV1_ID_PREFIX, idbuf, sizeof(idbuf))) {
        case 1:
            id = idbuf;
            break;
        case -1:
            id = "";
            break;
        }
    }
    memset(&how, 0, sizeof(how));
    how.v1 = v1;
    if ((rc = take_relay(r)) != DECLINED) {
        return rc;
    }
    return id ? resume_session(r, c, &how, id) : new_session(r, c, &how);
}

static int ws_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                          server_rec *s)
{
    apr_pool_t *pp = s->process->pool;
    server_rec *vs;
    ws_srv_conf *sc = ap_get_module_config(s->module_config, &websession_module);
    ws_shared *sh = NULL;
    apr_status_t rv;

    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;      /* the first of two passes: httpd may still detach */
    }
    apr_pool_userdata_get((void **)&sh, WS_SHARED_KEY, pp);
    if (!sh) {
        char name[IPC_NAME_MAX];

        sh = apr_pcalloc(pp, sizeof(*sh));
        sh->capacity = sc->max_sessions;
        rv = apr_shm_create(&sh->shm, ws_table_size(sh->capacity), NULL, pp);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "WS00030: cannot create shared memory for %u sessions",
                         sh->capacity);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        sh->table = ws_table_format(apr_shm_baseaddr_get(sh->shm), sh->capacity);
        if (apr_generate_random_bytes(sh->client_key, sizeof(sh->client_key))
            != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         "WS00047: no random bytes for the client key");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        /* The sockets' names carry a key drawn now (ipc.h): no local user
         * can take one in advance. */
        if (ipc_names_init(&sh->names, (long)getpid()) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         "WS00033: cannot draw random bytes for the sockets' names");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        ipc_spawner_name(name, &sh->names);
        sh->listen_fd = ipc_listen(name, 511);
        if (sh->listen_fd < 0 || pipe2(sh->lifeline, O_CLOEXEC) < 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                         "WS00031: cannot create the spawner's socket");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        apr_pool_userdata_set(sh, WS_SHARED_KEY, apr_pool_cleanup_null, pp);
    }
    else if (sc->max_sessions != sh->capacity) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "WS00032: WebSessionMaxSessions changed to %u; the session table"
                     " keeps %u slots until httpd is stopped and started",
                     sc->max_sessions, sh->capacity);
    }
    sh->max_relays = resolve_max_relays(sc);
    for (vs = s; vs; vs = vs->next) {
        ws_srv_conf *vc = ap_get_module_config(vs->module_config, &websession_module);

        if (vc->cookie && !vc->route) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, vs,
                         "WS00071: WebSessionRouteCookie %s without WebSessionRoute:"
                         " no cookie is set", vc->cookie);
        }
    }
    shared = sh;
    rv = spawner_start(sh, s, pconf);
    return rv == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

static void ws_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p;
    (void)s;
    if (shared) {
        /* Only the spawner serves its socket, and only the parent may hold
         * the lifeline's write end: a child that outlives a killed parent
         * must not keep the sessions alive. */
        close(shared->listen_fd);
        shared->listen_fd = -1;
        close(shared->lifeline[1]);
    }
}

static int ws_status(request_rec *r)
{
    ws_srv_conf *sc = ap_get_module_config(r->server->module_config, &websession_module);

    return ws_status_handler(r, shared, sc->route);
}

static int ws_server_status(request_rec *r, int flags)
{
    return ws_status_hook(r, flags, shared);
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(ws_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ws_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ws_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ws_client_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ws_status, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, ws_server_status, NULL, NULL, APR_HOOK_MIDDLE);
}

static const command_rec ws_cmds[] = {
    AP_INIT_FLAG("WebSession", set_on, NULL, OR_OPTIONS | ACCESS_CONF,
                 "On to run executable files (or WebSessionCommand) in this scope"
                 " as persistent per-session scripts"),
    AP_INIT_TAKE1("WebSessionCommand", set_command, NULL, ACCESS_CONF,
                  "Command line (absolute program path, arguments) run for every"
                  " session in this scope"),
    AP_INIT_TAKE1("WebSessionMessages", set_messages, NULL, OR_OPTIONS | ACCESS_CONF,
                  "How messages cross the script's stdin/stdout: 'lines' or 'framed'"),
    AP_INIT_TAKE1("WebSessionResumeTimeout", set_timeout, NULL,
                  OR_OPTIONS | ACCESS_CONF,
                  "Seconds a session waits for its client to come back (1-86400)"),
    AP_INIT_TAKE1("WebSessionUnusedTimeout", set_timeout, NULL,
                  OR_OPTIONS | ACCESS_CONF,
                  "Seconds a session waits for a client that left before sending any"
                  " message (1-86400; at most WebSessionResumeTimeout)"),
    AP_INIT_TAKE1("WebSessionMaxSessionsPerClient", set_max_per_client, NULL,
                  OR_OPTIONS | ACCESS_CONF,
                  "Most sessions one client address (IPv6: one /64) may hold at once;"
                  " 'off' for no limit (default: a quarter of WebSessionMaxSessions)"),
    AP_INIT_TAKE1("WebSessionPing", set_ping, NULL, OR_OPTIONS | ACCESS_CONF,
                  "Seconds between heartbeats that detect a dead connection (0-3600, 0 off)"),
    AP_INIT_TAKE1("WebSessionMaxMessage", set_size, (void *)1, OR_OPTIONS | ACCESS_CONF,
                  "Largest message in bytes, either direction"),
    AP_INIT_TAKE1("WebSessionBuffer", set_size, (void *)4096, OR_OPTIONS | ACCESS_CONF,
                  "Bytes buffered per direction before the producer is slowed"),
    AP_INIT_TAKE1("WebSessionMaxSessions", set_max_sessions, NULL, RSRC_CONF,
                  "Most sessions the server runs at once (server-wide)"),
    AP_INIT_TAKE1("WebSessionMaxRelays", set_max_relays, NULL, RSRC_CONF,
                  "Most session connections relayed at once (TLS, HTTP/2: each holds a"
                  " worker thread); 'auto' (default) is half of MaxRequestWorkers"),
    AP_INIT_TAKE1("WebSessionRoute", set_route, NULL, RSRC_CONF,
                  "This server's route, as in its BalancerMember route=: added to the"
                  " session ids it issues as <secret>.<route> (1-32 of A-Z a-z 0-9 _ -;"
                  " 'none' for ids without one)"),
    AP_INIT_TAKE12("WebSessionRouteCookie", set_route_cookie, NULL, RSRC_CONF,
                   "Cookie NAME=.<route> set when a session starts, for balancers that"
                   " read the route from a cookie: a name, optionally 'Secure'"
                   " (always; otherwise on TLS only), or 'off'"),
    AP_INIT_ITERATE("WebSessionOrigin", set_origin, NULL, OR_OPTIONS | ACCESS_CONF,
                    "Origins allowed to open sessions: 'same', 'any' or"
                    " scheme://host[:port] ..."),
    { NULL }
};

AP_DECLARE_MODULE(websession) = {
    STANDARD20_MODULE_STUFF,
    create_dir_conf,
    merge_dir_conf,
    create_srv_conf,
    merge_srv_conf,
    ws_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
