/* ipc.c -- abstract Unix sockets and descriptor passing for mod_websession. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "apr_general.h"
#include "apr_sha1.h"

#include "ipc.h"

/* The hex digits of the MAC in a name: 128 bits. */
#define NAME_MAC_BYTES 16

apr_status_t ipc_names_init(ipc_names *n, long pid)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->prefix, sizeof(n->prefix), "mod_websession/%ld", pid);
    return apr_generate_random_bytes(n->key, sizeof(n->key));
}

/* out = visible "." hex(HMAC-SHA1(key, visible))[0..32): RFC 2104 with
 * SHA-1, the key zero-padded to the 64-byte block.  The visible part is
 * what a local user may know anyway (httpd's pid, slot, generation); the
 * MAC makes the whole name unguessable without the key, and one name seen
 * in /proc/net/unix tells nothing about any other. */
static void keyed_name(char out[IPC_NAME_MAX], const ipc_names *n, const char *visible)
{
    unsigned char pad[64], digest[APR_SHA1_DIGESTSIZE];
    apr_sha1_ctx_t ctx;
    size_t len;

    memset(pad, 0, sizeof(pad));
    memcpy(pad, n->key, sizeof(n->key));
    for (size_t i = 0; i < sizeof(pad); i++) {
        pad[i] ^= 0x36;
    }
    apr_sha1_init(&ctx);
    apr_sha1_update_binary(&ctx, pad, sizeof(pad));
    apr_sha1_update_binary(&ctx, (const unsigned char *)visible, (unsigned)strlen(visible));
    apr_sha1_final(digest, &ctx);
    for (size_t i = 0; i < sizeof(pad); i++) {
        pad[i] ^= 0x36 ^ 0x5c;
    }
    apr_sha1_init(&ctx);
    apr_sha1_update_binary(&ctx, pad, sizeof(pad));
    apr_sha1_update_binary(&ctx, digest, sizeof(digest));
    apr_sha1_final(digest, &ctx);
    explicit_bzero(pad, sizeof(pad));   /* the key, as padded */

    len = (size_t)snprintf(out, IPC_NAME_MAX, "%s.", visible);
    for (size_t i = 0; i < NAME_MAC_BYTES && len + 2 < IPC_NAME_MAX; i++, len += 2) {
        snprintf(out + len, 3, "%02x", digest[i]);
    }
}

void ipc_spawner_name(char out[IPC_NAME_MAX], const ipc_names *n)
{
    char visible[IPC_NAME_MAX];

    snprintf(visible, sizeof(visible), "%s/spawner", n->prefix);
    keyed_name(out, n, visible);
}

void ipc_keeper_name(char out[IPC_NAME_MAX], const ipc_names *n,
                     unsigned slot, uint32_t gen)
{
    char visible[IPC_NAME_MAX];

    snprintf(visible, sizeof(visible), "%s/k%u.%u", n->prefix, slot, (unsigned)gen);
    keyed_name(out, n, visible);
}

/* Abstract address: a leading NUL, then the name, not NUL-terminated. */
static socklen_t make_addr(struct sockaddr_un *sa, const char *name)
{
    size_t n = strlen(name);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (n > sizeof(sa->sun_path) - 1) {
        n = sizeof(sa->sun_path) - 1;
    }
    memcpy(sa->sun_path + 1, name, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* Close fd keeping errno; returns -1 for the caller to return. */
static int fail_closing(int fd)
{
    int e = errno;

    close(fd);
    errno = e;
    return -1;
}

/* A close-on-exec stream socket and the address for name. */
static int new_socket(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
    *len = make_addr(sa, name);
    return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

int ipc_listen(const char *name, int backlog)
{
    struct sockaddr_un sa;
    socklen_t len;
    int fd = new_socket(name, &sa, &len);

    if (fd < 0) {
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, backlog) < 0) {
        return fail_closing(fd);
    }
    return fd;
}

int ipc_name_in_use(const char *name)
{
    struct sockaddr_un sa;
    socklen_t len;
    int fd = new_socket(name, &sa, &len), rc;

    if (fd < 0) {
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, len) == 0) {
        rc = 0;
    }
    else {
        rc = errno == EADDRINUSE ? 1 : -1;
    }
    close(fd);
    return rc;
}

void ipc_set_timeouts(int fd, int timeout_ms)
{
    struct timeval tv;

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int ipc_connect(const char *name, int timeout_ms)
{
    struct sockaddr_un sa;
    socklen_t len;
    int fd = new_socket(name, &sa, &len);

    if (fd < 0) {
        return -1;
    }
    ipc_set_timeouts(fd, timeout_ms);
    while (connect(fd, (struct sockaddr *)&sa, len) < 0) {
        if (errno != EINTR) {
            return fail_closing(fd);
        }
    }
    return fd;
}

static int peer_cred(int fd, struct ucred *cred)
{
    socklen_t len = sizeof(*cred);

    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0;
}

int ipc_peer_allowed(int fd, uid_t uid)
{
    struct ucred cred;

    return peer_cred(fd, &cred) && (cred.uid == uid || cred.uid == 0);
}

void ipc_peer_ids(int fd, long *uid, long *pid)
{
    struct ucred cred;

    *uid = *pid = -1;
    if (peer_cred(fd, &cred)) {
        *uid = (long)cred.uid;
        *pid = (long)cred.pid;
    }
}

int ipc_peer_is(int fd, pid_t pid)
{
    struct ucred cred;

    return peer_cred(fd, &cred) && cred.pid == pid;
}

int ipc_write_full(int fd, const void *buf, size_t len, int pass_fd)
{
    const char *p = buf;

    while (len > 0) {
        struct msghdr msg;
        struct iovec iov;
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        ssize_t n;

        memset(&msg, 0, sizeof(msg));
        iov.iov_base = (void *)p;
        iov.iov_len = len;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (pass_fd >= 0) {
            struct cmsghdr *cm;

            memset(&ctl, 0, sizeof(ctl));
            msg.msg_control = ctl.buf;
            msg.msg_controllen = sizeof(ctl.buf);
            cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
        }
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        pass_fd = -1;           /* the descriptor went with the first byte */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One recvmsg: the bytes read, 0 at EOF, or -1 with errno.  A descriptor
 * that comes along goes to *got_fd if that is -1, else it is closed. */
static ssize_t recv_once(int fd, void *p, size_t len, int *got_fd, int flags)
{
    struct msghdr msg;
    struct iovec iov;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct cmsghdr *cm;
    ssize_t n;

    memset(&msg, 0, sizeof(msg));
    iov.iov_base = p;
    iov.iov_len = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | flags);
    if (n < 0) {
        return -1;
    }
    for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int passed;

            memcpy(&passed, CMSG_DATA(cm), sizeof(int));
            if (got_fd && *got_fd < 0) {
                *got_fd = passed;
            }
            else {
                close(passed);      /* unexpected: do not leak it */
            }
        }
    }
    return n;
}

int ipc_read_full(int fd, void *buf, size_t len, int *got_fd)
{
    char *p = buf;

    if (got_fd) {
        *got_fd = -1;
    }
    while (len > 0) {
        ssize_t n = recv_once(fd, p, len, got_fd, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t ipc_recv_some(int fd, void *buf, size_t len, int *got_fd)
{
    ssize_t n;

    do {
        n = recv_once(fd, buf, len, got_fd, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n;
}

int ipc_send_msg(int fd, uint32_t kind, const void *body, size_t len, int pass_fd)
{
    ipc_header h;
    char stackbuf[512];

    h.magic = IPC_MAGIC;
    h.kind = kind;
    h.len = (uint32_t)len;
    if (sizeof(h) + len <= sizeof(stackbuf)) {
        memcpy(stackbuf, &h, sizeof(h));
        if (len) {
            memcpy(stackbuf + sizeof(h), body, len);
        }
        return ipc_write_full(fd, stackbuf, sizeof(h) + len, pass_fd);
    }
    if (ipc_write_full(fd, &h, sizeof(h), pass_fd) < 0) {
        return -1;
    }
    return ipc_write_full(fd, body, len, -1);
}

int ipc_recv_header_any(int fd, uint32_t *kind, uint32_t *len, int *got_fd)
{
    ipc_header h;

    if (ipc_read_full(fd, &h, sizeof(h), got_fd) < 0) {
        return -1;
    }
    if (h.magic != IPC_MAGIC) {
        if (got_fd && *got_fd >= 0) {
            close(*got_fd);
            *got_fd = -1;
        }
        errno = EPROTO;
        return -1;
    }
    *kind = h.kind;
    *len = h.len;
    return 0;
}

int ipc_recv_header(int fd, uint32_t kind, uint32_t *len, int *got_fd)
{
    uint32_t got;

    if (ipc_recv_header_any(fd, &got, len, got_fd) < 0) {
        return -1;
    }
    if (got != kind) {
        if (got_fd && *got_fd >= 0) {
            close(*got_fd);
            *got_fd = -1;
        }
        errno = EPROTO;
        return -1;
    }
    return 0;
}

int ipc_recv_reply(int fd, ipc_reply *rep)
{
    uint32_t len;

    if (ipc_recv_header(fd, IPC_REPLY, &len, NULL) < 0 || len != sizeof(*rep)
        || ipc_read_full(fd, rep, sizeof(*rep), NULL) < 0) {
        return -1;
    }
    rep->message[sizeof(rep->message) - 1] = '\0';
    return 0;
}
