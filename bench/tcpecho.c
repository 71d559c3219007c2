/* tcpecho.c -- plain TCP echo server, the loopback floor of the benchmarks.
 *
 *   tcpecho [-a ADDRESS] -p PORT
 *
 * Single-threaded, epoll, non-blocking.  Echoes every byte it reads on the
 * same connection (no framing at all: wsload --raw-tcp sends lines).  When
 * the peer does not read, the unsent rest is kept and the connection is not
 * read again until it has gone out.  Exits on SIGTERM or SIGINT. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int fd;
    unsigned char *pend;        /* bytes read but not written back yet */
    size_t off, len;
} conn;

static volatile sig_atomic_t stop;
static unsigned char buf[1 << 18];

static void on_sig(int sig)
{
    (void)sig;
    stop = 1;
}

static void drop(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pend);
    free(c);
}

/* Write what is pending; 1 all out, 0 would block, -1 error. */
static int flush_pending(conn *c)
{
    while (c->off < c->len) {
        ssize_t w = write(c->fd, c->pend + c->off, c->len - c->off);

        if (w > 0) {
            c->off += (size_t)w;
        }
        else if (w < 0 && errno == EINTR) {
            continue;
        }
        else if (w < 0 && errno == EAGAIN) {
            return 0;
        }
        else {
            return -1;
        }
    }
    free(c->pend);
    c->pend = NULL;
    c->off = c->len = 0;
    return 1;
}

static void watch(int ep, conn *c, uint32_t events)
{
    struct epoll_event ev;

    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_readable(int ep, conn *c)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        ssize_t w = 0;

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(ep, c);
            return;
        }
        if (n < 0) {
            return;
        }
        while (w < n) {
            ssize_t k = write(c->fd, buf + w, (size_t)(n - w));

            if (k > 0) {
                w += k;
            }
            else if (k < 0 && errno == EINTR) {
                continue;
            }
            else if (k < 0 && errno == EAGAIN) {
                break;
            }
            else {
                drop(ep, c);
                return;
            }
        }
        if (w < n) {
            c->len = (size_t)(n - w);
            c->off = 0;
            c->pend = malloc(c->len);
            if (!c->pend) {
                drop(ep, c);
                return;
            }
            memcpy(c->pend, buf + w, c->len);
            watch(ep, c, EPOLLOUT);     /* stop reading until it is out */
            return;
        }
        if ((size_t)n < sizeof(buf)) {
            return;
        }
    }
}

int main(int argc, char **argv)
{
    const char *address = "127.0.0.1", *port = NULL;
    struct addrinfo hints, *ai;
    struct epoll_event ev, evs[256];
    struct sigaction sa;
    struct rlimit rl;
    int ch, lfd, ep, one = 1, rc;
    conn listener = { .fd = -1 };

    while ((ch = getopt(argc, argv, "a:p:")) != -1) {
        switch (ch) {
        case 'a':
            address = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        default:
            fprintf(stderr, "usage: tcpecho [-a ADDRESS] -p PORT\n");
            return 2;
        }
    }
    if (!port) {
        fprintf(stderr, "usage: tcpecho [-a ADDRESS] -p PORT\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sig;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if ((rc = getaddrinfo(address, port, &hints, &ai)) != 0) {
        fprintf(stderr, "tcpecho: %s:%s: %s\n", address, port, gai_strerror(rc));
        return 2;
    }
    lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(lfd, 4096) < 0) {
        perror("tcpecho: listen");
        return 1;
    }
    freeaddrinfo(ai);
    ep = epoll_create1(EPOLL_CLOEXEC);
    listener.fd = lfd;
    ev.events = EPOLLIN;
    ev.data.ptr = &listener;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

    while (!stop) {
        int n = epoll_wait(ep, evs, 256, -1);

        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;

            if (c == &listener) {
                int fd;

                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    conn *nc = calloc(1, sizeof(*nc));

                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    ev.events = EPOLLIN;
                    ev.data.ptr = nc;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (c->pend) {
                rc = flush_pending(c);
                if (rc < 0) {
                    drop(ep, c);
                    continue;
                }
                if (rc == 0) {
                    continue;
                }
                watch(ep, c, EPOLLIN);
            }
            on_readable(ep, c);
        }
    }
    return 0;
}
