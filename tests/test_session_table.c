/* test_session_table.c -- unit tests for the shared-memory session table,
 * including a multi-process test on a shared anonymous mapping.
 */

#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <apr_general.h>
#include <apr_atomic.h>
#include <apr_time.h>

#include "session_table.h"
#include "unit.h"

#define T0      ((apr_time_t)1700000000 * APR_USEC_PER_SEC)
#define STALE   apr_time_from_sec(30)

/* Deterministic test bytes derived from a seed. */
static void fill(unsigned char *p, apr_size_t n, apr_uint32_t seed)
{
    apr_uint32_t x = seed * 2654435761u + 0x9e3779b9u;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)(x >> 7);
    }
}

typedef struct {
    unsigned char secret[WS_SECRET_LEN];
    unsigned char bind[WS_BIND_LEN];
    unsigned char pubid[WS_PUBID_LEN];
} creds;

static creds make_creds(apr_uint32_t seed)
{
    creds c;

    fill(c.secret, sizeof(c.secret), seed);
    fill(c.bind, sizeof(c.bind), seed + 1000003u);
    fill(c.pubid, sizeof(c.pubid), seed + 2000003u);
    return c;
}

static apr_status_t reserve(ws_table *t, const creds *c, apr_time_t now,
                            unsigned *slot, apr_uint32_t *gen)
{
    return ws_table_reserve(t, c->secret, c->bind, c->pubid, 0, 0, now, STALE,
                            slot, gen);
}

static void *new_mem(unsigned capacity)
{
    return malloc(ws_table_size(capacity));
}

/* Is `needle` anywhere in the table's memory? */
static int mem_contains(const void *mem, apr_size_t size,
                        const unsigned char *needle, apr_size_t n)
{
    const unsigned char *p = mem;
    apr_size_t i;

    for (i = 0; i + n <= size; i++) {
        if (memcmp(p + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static void test_ct_equal(void)
{
    unsigned char a[32], b[32];

    fill(a, sizeof(a), 1);
    memcpy(b, a, sizeof(b));
    CHECK(ws_ct_equal(a, b, sizeof(a)) == 1);
    CHECK(ws_ct_equal(a, b, 0) == 1);
    b[0] ^= 0x01;
    CHECK(ws_ct_equal(a, b, sizeof(a)) == 0);
    b[0] ^= 0x01;
    b[31] ^= 0x80;
    CHECK(ws_ct_equal(a, b, sizeof(a)) == 0);
    CHECK(ws_ct_equal(a, b, 31) == 1);
}

static void test_format_attach(void)
{
    unsigned char *garbage;
    void *mem;
    ws_table *t;
    apr_size_t size;

    CHECK(ws_table_size(0) == 0);
    CHECK(ws_table_size(1) > 0);
    CHECK(ws_table_size(8) > ws_table_size(1));
    CHECK(ws_table_format(NULL, 4) == NULL);
    CHECK(ws_table_attach(NULL) == NULL);

    size = ws_table_size(8);
    mem = malloc(size);
    memset(mem, 0xA5, size);
    CHECK(ws_table_attach(mem) == NULL);            /* garbage */
    memset(mem, 0, size);
    CHECK(ws_table_attach(mem) == NULL);            /* zeroes */
    CHECK(ws_table_format(mem, 0) == NULL);

    t = ws_table_format(mem, 8);
    CHECK(t != NULL);
    CHECK(ws_table_capacity(t) == 8);
    CHECK(ws_table_count(t) == 0);
    CHECK(ws_table_attach(mem) == t);
    CHECK(ws_table_capacity(ws_table_attach(mem)) == 8);
    free(mem);

    garbage = malloc(4096);
    fill(garbage, 4096, 77);
    CHECK(ws_table_attach(garbage) == NULL);
    CHECK(ws_table_format(garbage + 1, 1) == NULL); /* misaligned */
    free(garbage);
}

static void test_reserve_full(void)
{
    void *mem = new_mem(4);
    ws_table *t = ws_table_format(mem, 4);
    unsigned slot, seen = 0, i;
    apr_uint32_t gen;
    ws_slot_info info;
    creds c;

    for (i = 0; i < 4; i++) {
        c = make_creds(10 + i);
        CHECK(reserve(t, &c, T0, &slot, &gen) == APR_SUCCESS);
        CHECK(slot < 4);
        CHECK(!(seen & (1u << slot)));
        seen |= 1u << slot;
        CHECK(ws_table_count(t) == i + 1);
        CHECK(ws_table_get(t, slot, &info) == APR_SUCCESS);
        CHECK(info.state == WS_SLOT_RESERVED);
        CHECK(info.gen == gen);
        CHECK(info.created == T0);
        CHECK(info.keeper_pid == 0);
        CHECK(memcmp(info.pubid, c.pubid, WS_PUBID_LEN) == 0);
    }
    CHECK(seen == 0xF);
    c = make_creds(99);
    CHECK(reserve(t, &c, T0, &slot, &gen) == APR_ENOSPC);
    CHECK(ws_table_count(t) == 4);
    CHECK(ws_table_get(t, 4, &info) == APR_EINVAL);
    free(mem);
}

static void test_capacity_one(void)
{
    void *mem = new_mem(1);
    ws_table *t = ws_table_format(mem, 1);
    creds a = make_creds(20), b = make_creds(21);
    unsigned slot, slot2;
    apr_uint32_t gen, gen2;
    ws_slot_info info;

    CHECK(ws_table_get(t, 0, &info) == APR_NOTFOUND);
    CHECK(reserve(t, &a, T0, &slot, &gen) == APR_SUCCESS);
    CHECK(slot == 0);
    CHECK(reserve(t, &b, T0, &slot2, &gen2) == APR_ENOSPC);
    CHECK(ws_table_go_live(t, slot, gen, 1234) == APR_SUCCESS);
    CHECK(reserve(t, &b, T0, &slot2, &gen2) == APR_ENOSPC);
    ws_table_release(t, slot, gen);
    CHECK(ws_table_count(t) == 0);
    CHECK(ws_table_get(t, 0, &info) == APR_NOTFOUND);
    CHECK(reserve(t, &b, T0, &slot2, &gen2) == APR_SUCCESS);
    CHECK(slot2 == 0);
    CHECK(gen2 != gen);
    free(mem);
}

static void test_stale_reclaim(void)
{
    void *mem = new_mem(2);
    ws_table *t = ws_table_format(mem, 2);
    creds a = make_creds(30), b = make_creds(31), c = make_creds(32);
    unsigned sa, sb, sc;
    apr_uint32_t ga, gb, gc;
    ws_slot_info info;

    CHECK(reserve(t, &a, T0, &sa, &ga) == APR_SUCCESS);
    CHECK(reserve(t, &b, T0 + apr_time_from_sec(20), &sb, &gb) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, sb, gb, 4321) == APR_SUCCESS);

    /* Not old enough yet, or exactly at the limit. */
    CHECK(reserve(t, &c, T0 + apr_time_from_sec(10), &sc, &gc) == APR_ENOSPC);
    CHECK(reserve(t, &c, T0 + STALE, &sc, &gc) == APR_ENOSPC);
    /* Reclaiming can be switched off. */
    CHECK(ws_table_reserve(t, c.secret, c.bind, c.pubid, 0, 0,
                           T0 + apr_time_from_sec(1000), 0, &sc, &gc) == APR_ENOSPC);

    /* a's worker died: its reservation is taken over; b is LIVE and old,
     * but LIVE slots are never reclaimed. */
    CHECK(reserve(t, &c, T0 + STALE + 1, &sc, &gc) == APR_SUCCESS);
    CHECK(sc == sa);
    CHECK(gc != ga);
    CHECK(ws_table_get(t, sc, &info) == APR_SUCCESS);
    CHECK(info.state == WS_SLOT_RESERVED);
    CHECK(info.created == T0 + STALE + 1);
    CHECK(memcmp(info.pubid, c.pubid, WS_PUBID_LEN) == 0);
    /* c's reservation is fresh and b is LIVE: nothing left to take. */
    {
        unsigned sx;
        apr_uint32_t gx;

        CHECK(reserve(t, &a, T0 + STALE + 2, &sx, &gx) == APR_ENOSPC);
    }

    /* The dead worker's pair is now stale. */
    CHECK(ws_table_go_live(t, sc, ga, 1111) == APR_EINVAL);
    CHECK(ws_table_go_live(t, sc, gc, 2222) == APR_SUCCESS);
    CHECK(ws_table_lookup(t, a.secret, a.bind, &info) == APR_NOTFOUND);
    CHECK(ws_table_lookup(t, c.secret, c.bind, &info) == APR_SUCCESS);
    CHECK(info.keeper_pid == 2222);
    CHECK(ws_table_lookup(t, b.secret, b.bind, &info) == APR_SUCCESS);
    CHECK(info.keeper_pid == 4321);
    free(mem);
}

static void test_go_live(void)
{
    void *mem = new_mem(2);
    ws_table *t = ws_table_format(mem, 2);
    creds a = make_creds(40);
    unsigned slot;
    apr_uint32_t gen;

    CHECK(reserve(t, &a, T0, &slot, &gen) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, slot, gen + 1, 10) == APR_EINVAL);
    CHECK(ws_table_go_live(t, slot, gen - 1, 10) == APR_EINVAL);
    CHECK(ws_table_go_live(t, slot ^ 1, gen, 10) == APR_EINVAL);   /* free */
    CHECK(ws_table_go_live(t, 2, gen, 10) == APR_EINVAL);          /* range */
    CHECK(ws_table_go_live(t, slot, 0xFFFFFFFFu, 10) == APR_EINVAL);
    CHECK(ws_table_go_live(t, slot, gen, 0) == APR_EINVAL);
    CHECK(ws_table_go_live(t, slot, gen, 10) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, slot, gen, 10) == APR_EINVAL);       /* twice */
    free(mem);
}

static void test_lookup(void)
{
    void *mem = new_mem(4);
    ws_table *t = ws_table_format(mem, 4);
    creds a = make_creds(50), b = make_creds(51), x;
    unsigned sa, sb;
    apr_uint32_t ga, gb;
    ws_slot_info info;

    CHECK(ws_table_lookup(t, a.secret, a.bind, &info) == APR_NOTFOUND);
    CHECK(reserve(t, &a, T0, &sa, &ga) == APR_SUCCESS);
    CHECK(reserve(t, &b, T0 + 5, &sb, &gb) == APR_SUCCESS);

    /* RESERVED never matches. */
    CHECK(ws_table_lookup(t, a.secret, a.bind, &info) == APR_NOTFOUND);

    CHECK(ws_table_go_live(t, sa, ga, 700) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, sb, gb, 701) == APR_SUCCESS);

    memset(&info, 0xEE, sizeof(info));
    CHECK(ws_table_lookup(t, a.secret, a.bind, &info) == APR_SUCCESS);
    CHECK(info.slot == sa);
    CHECK(info.gen == ga);
    CHECK(info.state == WS_SLOT_LIVE);
    CHECK(info.keeper_pid == 700);
    CHECK(memcmp(info.pubid, a.pubid, WS_PUBID_LEN) == 0);
    CHECK(info.created == T0);
    CHECK(info.attached == 0);
    CHECK(info.detached == T0);
    CHECK(info.attaches == 0);
    CHECK(ws_table_lookup(t, a.secret, a.bind, NULL) == APR_SUCCESS);

    CHECK(ws_table_lookup(t, b.secret, b.bind, &info) == APR_SUCCESS);
    CHECK(info.slot == sb);
    CHECK(info.gen == gb);
    CHECK(info.keeper_pid == 701);
    CHECK(memcmp(info.pubid, b.pubid, WS_PUBID_LEN) == 0);

    /* Unknown secret; right secret with the wrong binding; a binding that
     * belongs to another session; one bit off at either end. */
    x = make_creds(52);
    CHECK(ws_table_lookup(t, x.secret, x.bind, &info) == APR_NOTFOUND);
    CHECK(ws_table_lookup(t, a.secret, x.bind, &info) == APR_NOTFOUND);
    CHECK(ws_table_lookup(t, a.secret, b.bind, &info) == APR_NOTFOUND);
    CHECK(ws_table_lookup(t, x.secret, a.bind, &info) == APR_NOTFOUND);
    x = a;
    x.secret[WS_SECRET_LEN - 1] ^= 1;
    CHECK(ws_table_lookup(t, x.secret, x.bind, &info) == APR_NOTFOUND);
    x = a;
    x.secret[0] ^= 0x80;
    CHECK(ws_table_lookup(t, x.secret, x.bind, &info) == APR_NOTFOUND);
    x = a;
    x.bind[WS_BIND_LEN - 1] ^= 1;
    CHECK(ws_table_lookup(t, x.secret, x.bind, &info) == APR_NOTFOUND);

    /* All-zero secret and binding never match a free (wiped) slot. */
    memset(&x, 0, sizeof(x));
    CHECK(ws_table_lookup(t, x.secret, x.bind, &info) == APR_NOTFOUND);
    free(mem);
}

static void test_marks_and_closing(void)
{
    void *mem = new_mem(2);
    ws_table *t = ws_table_format(mem, 2);
    creds a = make_creds(60);
    unsigned slot;
    apr_uint32_t gen;
    ws_slot_info info;

    CHECK(reserve(t, &a, T0, &slot, &gen) == APR_SUCCESS);
    /* Not LIVE yet: marks are ignored. */
    ws_table_mark_attached(t, slot, gen, T0 + 1);
    ws_table_mark_closing(t, slot, gen);
    CHECK(ws_table_get(t, slot, &info) == APR_SUCCESS);
    CHECK(info.state == WS_SLOT_RESERVED);
    CHECK(info.attaches == 0);
    CHECK(info.attached == 0);

    CHECK(ws_table_go_live(t, slot, gen, 800) == APR_SUCCESS);
    ws_table_mark_attached(t, slot, gen, T0 + 10);
    CHECK(ws_table_lookup(t, a.secret, a.bind, &info) == APR_SUCCESS);
    CHECK(info.attaches == 1);
    CHECK(info.attached == T0 + 10);
    CHECK(info.detached == 0);
    ws_table_mark_detached(t, slot, gen, T0 + 20);
    ws_table_mark_attached(t, slot, gen, T0 + 30);
    ws_table_mark_detached(t, slot, gen, T0 + 40);
    CHECK(ws_table_get(t, slot, &info) == APR_SUCCESS);
    CHECK(info.attaches == 2);
    CHECK(info.attached == T0 + 30);
    CHECK(info.detached == T0 + 40);

    /* Stale generation: ignored. */
    ws_table_mark_attached(t, slot, gen + 1, T0 + 50);
    ws_table_mark_detached(t, slot, gen + 1, T0 + 60);
    ws_table_mark_closing(t, slot, gen + 1);
    ws_table_mark_attached(t, 5, gen, T0 + 50);     /* out of range */
    ws_table_mark_closing(t, 5, gen);
    CHECK(ws_table_get(t, slot, &info) == APR_SUCCESS);
    CHECK(info.state == WS_SLOT_LIVE);
    CHECK(info.attaches == 2);
    CHECK(info.detached == T0 + 40);

    /* CLOSING: no more matches, no more attaches, still counted. */
    ws_table_mark_closing(t, slot, gen);
    CHECK(ws_table_get(t, slot, &info) == APR_SUCCESS);
    CHECK(info.state == WS_SLOT_CLOSING);
    CHECK(info.gen == gen);
    CHECK(ws_table_lookup(t, a.secret, a.bind, &info) == APR_NOTFOUND);
    ws_table_mark_attached(t, slot, gen, T0 + 70);
    CHECK(ws_table_get(t, slot, &info) == APR_SUCCESS);
    CHECK(info.attaches == 2);
    CHECK(ws_table_count(t) == 1);
    CHECK(ws_table_go_live(t, slot, gen, 800) == APR_EINVAL);

    ws_table_release(t, slot, gen);
    CHECK(ws_table_count(t) == 0);
    CHECK(ws_table_get(t, slot, &info) == APR_NOTFOUND);
    free(mem);
}

static void test_release_and_reuse(void)
{
    apr_size_t size = ws_table_size(1);
    void *mem = new_mem(1);
    ws_table *t = ws_table_format(mem, 1);
    creds a = make_creds(70), b = make_creds(71);
    unsigned sa, sb;
    apr_uint32_t ga, gb;
    ws_slot_info info;

    CHECK(reserve(t, &a, T0, &sa, &ga) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, sa, ga, 900) == APR_SUCCESS);
    CHECK(mem_contains(mem, size, a.secret, WS_SECRET_LEN));
    ws_table_release(t, sa, ga + 1);                /* stale pair */
    CHECK(ws_table_count(t) == 1);
    CHECK(ws_table_lookup(t, a.secret, a.bind, &info) == APR_SUCCESS);

    ws_table_release(t, sa, ga);
    CHECK(ws_table_count(t) == 0);
    CHECK(ws_table_lookup(t, a.secret, a.bind, &info) == APR_NOTFOUND);
    CHECK(!mem_contains(mem, size, a.secret, WS_SECRET_LEN));   /* wiped */
    ws_table_release(t, sa, ga);                    /* twice: harmless */
    CHECK(ws_table_count(t) == 0);

    /* Reuse gets a new generation; the old pair touches nothing. */
    CHECK(reserve(t, &b, T0 + 100, &sb, &gb) == APR_SUCCESS);
    CHECK(sb == sa);
    CHECK(gb != ga);
    CHECK(ws_table_go_live(t, sb, ga, 901) == APR_EINVAL);
    CHECK(ws_table_go_live(t, sb, gb, 902) == APR_SUCCESS);
    ws_table_mark_attached(t, sa, ga, T0 + 200);
    ws_table_mark_closing(t, sa, ga);
    ws_table_release(t, sa, ga);
    CHECK(ws_table_count(t) == 1);
    CHECK(ws_table_lookup(t, b.secret, b.bind, &info) == APR_SUCCESS);
    CHECK(info.gen == gb);
    CHECK(info.state == WS_SLOT_LIVE);
    CHECK(info.attaches == 0);
    CHECK(info.keeper_pid == 902);
    CHECK(ws_table_lookup(t, a.secret, a.bind, &info) == APR_NOTFOUND);

    /* Many reuses: the generation keeps moving. */
    ws_table_release(t, sb, gb);
    {
        apr_uint32_t prev = gb;
        int i, moved = 1;

        for (i = 0; i < 100; i++) {
            if (reserve(t, &a, T0, &sa, &ga) != APR_SUCCESS || ga == prev) {
                moved = 0;
            }
            ws_table_release(t, sa, ga);
            prev = ga;
        }
        CHECK(moved);
        CHECK(ws_table_count(t) == 0);
    }
    free(mem);
}

static void test_release_pid(void)
{
    void *mem = new_mem(5);
    ws_table *t = ws_table_format(mem, 5);
    creds c[5];
    unsigned s[5];
    apr_uint32_t g[5];
    ws_slot_info info;
    int i;

    for (i = 0; i < 5; i++) {
        c[i] = make_creds(80 + i);
        CHECK(reserve(t, &c[i], T0, &s[i], &g[i]) == APR_SUCCESS);
    }
    CHECK(ws_table_go_live(t, s[0], g[0], 100) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, s[1], g[1], 100) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, s[2], g[2], 200) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, s[3], g[3], 100) == APR_SUCCESS);
    ws_table_mark_closing(t, s[3], g[3]);           /* CLOSING counts too */
    /* c[4] stays RESERVED (keeper pid not known yet). */
    CHECK(ws_table_count(t) == 5);

    CHECK(ws_table_release_pid(t, 0) == 0);
    CHECK(ws_table_release_pid(t, -1) == 0);
    CHECK(ws_table_release_pid(t, 999) == 0);
    CHECK(ws_table_count(t) == 5);

    CHECK(ws_table_release_pid(t, 100) == 3);
    CHECK(ws_table_count(t) == 2);
    CHECK(ws_table_lookup(t, c[0].secret, c[0].bind, &info) == APR_NOTFOUND);
    CHECK(ws_table_lookup(t, c[1].secret, c[1].bind, &info) == APR_NOTFOUND);
    CHECK(ws_table_lookup(t, c[2].secret, c[2].bind, &info) == APR_SUCCESS);
    CHECK(ws_table_get(t, s[3], &info) == APR_NOTFOUND);
    CHECK(ws_table_get(t, s[4], &info) == APR_SUCCESS);
    CHECK(info.state == WS_SLOT_RESERVED);
    CHECK(!mem_contains(mem, ws_table_size(5), c[0].secret, WS_SECRET_LEN));
    CHECK(ws_table_release_pid(t, 100) == 0);

    CHECK(ws_table_release_pid(t, 200) == 1);
    ws_table_release(t, s[4], g[4]);
    CHECK(ws_table_count(t) == 0);
    free(mem);
}

/* ---- several processes on one shared mapping ----------------------------- */

#define NPROC   4
#define ITERS   10000
#define CONC_CAP 3      /* fewer slots than processes: forces contention */

typedef struct {
    volatile apr_uint32_t owner[CONC_CAP];  /* pid of the winner, or 0 */
    volatile apr_uint32_t cycles;           /* completed reserve..release */
    volatile apr_uint32_t errors;
} conc_shared;

static int conc_child(ws_table *t, conc_shared *sh, int k)
{
    apr_uint32_t me = (apr_uint32_t)getpid();
    int i, errors = 0;

    for (i = 0; i < ITERS; i++) {
        creds c = make_creds((apr_uint32_t)(k * ITERS + i) * 7u + 1u);
        creds wrong = c;
        unsigned slot;
        apr_uint32_t gen;
        ws_slot_info info;
        apr_status_t rv;
        long spins = 0;

        wrong.bind[0] ^= 0x55;
        while ((rv = ws_table_reserve(t, c.secret, c.bind, c.pubid, 0, 0,
                                      apr_time_now(), apr_time_from_sec(3600),
                                      &slot, &gen)) == APR_ENOSPC) {
            if (++spins > 100000000L) {
                break;
            }
            sched_yield();
        }
        if (rv != APR_SUCCESS || slot >= CONC_CAP) {
            errors++;
            break;
        }
        /* Nobody else may hold this slot now. */
        if (apr_atomic_cas32(&sh->owner[slot], me, 0) != 0) {
            errors++;
        }
        if (ws_table_go_live(t, slot, gen, (pid_t)me) != APR_SUCCESS) {
            errors++;
        }
        if (ws_table_lookup(t, c.secret, c.bind, &info) != APR_SUCCESS
            || info.slot != slot || info.gen != gen
            || info.keeper_pid != (pid_t)me
            || memcmp(info.pubid, c.pubid, WS_PUBID_LEN) != 0) {
            errors++;
        }
        if (ws_table_lookup(t, wrong.secret, wrong.bind, &info) != APR_NOTFOUND) {
            errors++;
        }
        ws_table_mark_attached(t, slot, gen, apr_time_now());
        if ((i & 1) != 0) {
            ws_table_mark_closing(t, slot, gen);
        }
        /* Still ours?  Give it back before the slot is freed. */
        if (apr_atomic_cas32(&sh->owner[slot], 0, me) != me) {
            errors++;
        }
        ws_table_release(t, slot, gen);
        apr_atomic_inc32(&sh->cycles);
    }
    apr_atomic_add32(&sh->errors, (apr_uint32_t)errors);
    return errors ? 1 : 0;
}

static void test_concurrency(void)
{
    apr_size_t tsize = (ws_table_size(CONC_CAP) + 63) & ~(apr_size_t)63;
    apr_size_t size = tsize + sizeof(conc_shared);
    void *map;
    ws_table *t;
    conc_shared *sh;
    pid_t pids[NPROC];
    int k, ok = 1, owners_clear = 1;

    map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
    CHECK(map != MAP_FAILED);
    if (map == MAP_FAILED) {
        return;
    }
    t = ws_table_format(map, CONC_CAP);
    CHECK(t != NULL);
    sh = (conc_shared *)((char *)map + tsize);

    fflush(stdout);
    fflush(stderr);
    for (k = 0; k < NPROC; k++) {
        pids[k] = fork();
        if (pids[k] == 0) {
            /* The child sees the same table through the inherited mapping. */
            ws_table *ct = ws_table_attach(map);

            _exit(ct != NULL ? conc_child(ct, sh, k) : 2);
        }
        CHECK(pids[k] > 0);
    }
    for (k = 0; k < NPROC; k++) {
        int status = 0;

        if (pids[k] <= 0 || waitpid(pids[k], &status, 0) != pids[k]
            || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            ok = 0;
        }
    }
    CHECK(ok);
    CHECK(sh->errors == 0);
    CHECK(sh->cycles == NPROC * ITERS);
    CHECK(ws_table_count(t) == 0);
    for (k = 0; k < CONC_CAP; k++) {
        if (sh->owner[k] != 0) {
            owners_clear = 0;
        }
    }
    CHECK(owners_clear);
    munmap(map, size);
}

/* ---- where a secret lives, and the per-client count ----------------------- */

/* A secret whose home slot is `home` (its first four bytes, little-endian). */
static creds creds_at(apr_uint32_t seed, apr_uint32_t home)
{
    creds c = make_creds(seed);

    c.secret[0] = (unsigned char)home;
    c.secret[1] = (unsigned char)(home >> 8);
    c.secret[2] = (unsigned char)(home >> 16);
    c.secret[3] = (unsigned char)(home >> 24);
    return c;
}

static void test_probe_window(void)
{
    const unsigned cap = 3 * WS_TABLE_PROBE;
    void *mem = new_mem(cap);
    ws_table *t = ws_table_format(mem, cap);
    unsigned i, slot, seen_wrap = 0;
    apr_uint32_t gen;
    ws_slot_info info;
    creds c;

    /* Fill the window of home 10: each lands in the next slot. */
    for (i = 0; i < WS_TABLE_PROBE; i++) {
        c = creds_at(5000 + i, 10);
        CHECK(reserve(t, &c, T0, &slot, &gen) == APR_SUCCESS);
        CHECK(slot == 10 + i);
        CHECK(ws_table_go_live(t, slot, gen, 100 + i) == APR_SUCCESS);
        CHECK(ws_table_lookup(t, c.secret, c.bind, &info) == APR_SUCCESS && info.slot == slot);
    }
    /* The window is full although the table is not: this secret cannot be
     * placed, another one can. */
    c = creds_at(6000, 10);
    CHECK(reserve(t, &c, T0, &slot, &gen) == APR_ENOSPC);
    CHECK(ws_table_count(t) == WS_TABLE_PROBE);
    c = creds_at(6001, 10 + WS_TABLE_PROBE);
    CHECK(reserve(t, &c, T0, &slot, &gen) == APR_SUCCESS && slot == 10 + WS_TABLE_PROBE);
    /* A home near the end wraps around to slot 0. */
    for (i = 0; i < 3; i++) {
        c = creds_at(7000 + i, cap - 2);
        CHECK(reserve(t, &c, T0, &slot, &gen) == APR_SUCCESS);
        CHECK(ws_table_go_live(t, slot, gen, 300 + i) == APR_SUCCESS);
        CHECK(ws_table_lookup(t, c.secret, c.bind, &info) == APR_SUCCESS && info.slot == slot);
        seen_wrap |= slot == 0;
    }
    CHECK(seen_wrap);
    /* A lookup looks only in the secret's window: the same secret bytes
     * with another home are not found. */
    c = creds_at(5003, 10);
    CHECK(ws_table_lookup(t, c.secret, c.bind, NULL) == APR_SUCCESS);
    c = creds_at(5003, 10 + 2 * WS_TABLE_PROBE);
    CHECK(ws_table_lookup(t, c.secret, c.bind, NULL) == APR_NOTFOUND);
    free(mem);
}

static void test_per_client(void)
{
    void *mem = new_mem(8);
    ws_table *t = ws_table_format(mem, 8);
    unsigned slot[8], s2;
    apr_uint32_t gen[8], g2;
    const apr_uint32_t alice = 0x1234, bob = 0x9999;
    creds c;
    int i;

    /* A limit of 3 for alice; bob and uncounted sessions are not held back. */
    for (i = 0; i < 3; i++) {
        c = make_creds(8000 + (apr_uint32_t)i);
        CHECK(ws_table_reserve(t, c.secret, c.bind, c.pubid, alice, 3, T0, STALE,
                               &slot[i], &gen[i]) == APR_SUCCESS);
    }
    CHECK(ws_table_client_count(t, alice) == 3);
    c = make_creds(8010);
    CHECK(ws_table_reserve(t, c.secret, c.bind, c.pubid, alice, 3, T0, STALE,
                           &s2, &g2) == APR_EBUSY);
    CHECK(ws_table_client_count(t, alice) == 3);    /* a refusal counts nothing */
    CHECK(ws_table_reserve(t, c.secret, c.bind, c.pubid, bob, 3, T0, STALE,
                           &slot[3], &gen[3]) == APR_SUCCESS);
    c = make_creds(8011);
    CHECK(ws_table_reserve(t, c.secret, c.bind, c.pubid, 0, 3, T0, STALE,
                           &slot[4], &gen[4]) == APR_SUCCESS);
    CHECK(ws_table_client_count(t, bob) == 1);
    /* 0 as the limit: no limit, still counted. */
    c = make_creds(8012);
    CHECK(ws_table_reserve(t, c.secret, c.bind, c.pubid, alice, 0, T0, STALE,
                           &slot[5], &gen[5]) == APR_SUCCESS);
    CHECK(ws_table_client_count(t, alice) == 4);

    /* Every way a slot is freed gives its count back. */
    ws_table_release(t, slot[0], gen[0]);
    CHECK(ws_table_client_count(t, alice) == 3);
    ws_table_release(t, slot[0], gen[0]);            /* stale pair: no change */
    CHECK(ws_table_client_count(t, alice) == 3);
    CHECK(ws_table_go_live(t, slot[1], gen[1], 4242) == APR_SUCCESS);
    CHECK(ws_table_release_pid(t, 4242) == 1);
    CHECK(ws_table_client_count(t, alice) == 2);
    /* A reservation whose worker died, taken over by bob: alice's count
     * goes, bob's comes. */
    /* Only alice's slot[2] stays a reservation; the others go live. */
    CHECK(ws_table_go_live(t, slot[3], gen[3], 4300) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, slot[4], gen[4], 4301) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, slot[5], gen[5], 4302) == APR_SUCCESS);
    c = make_creds(8013);
    {
        unsigned n = 0;

        for (i = 0; i < 8; i++) {       /* fill the free slots first */
            creds f = make_creds(8100 + (apr_uint32_t)i);
            unsigned s;
            apr_uint32_t g;

            if (ws_table_reserve(t, f.secret, f.bind, f.pubid, 0, 0, T0 + STALE, STALE,
                                 &s, &g) == APR_SUCCESS) {
                n++;
            }
        }
        CHECK(n == 4);
    }
    CHECK(ws_table_reserve(t, c.secret, c.bind, c.pubid, bob, 0, T0 + STALE + 1, STALE,
                           &s2, &g2) == APR_SUCCESS);
    CHECK(s2 == slot[2]);
    CHECK(ws_table_client_count(t, alice) == 1);
    CHECK(ws_table_client_count(t, bob) == 2);
    /* Keys are counted modulo the counter array: same counter, same count. */
    CHECK(ws_table_client_count(t, alice + 0x10000000u) == ws_table_client_count(t, alice));
    free(mem);
}

static apr_uint32_t dead_pid;

static int alive_unless_dead(apr_uint32_t pid)
{
    return pid != dead_pid;
}

static void test_relays(void)
{
    void *mem = new_mem(4);
    ws_table *t = ws_table_format(mem, 4);
    unsigned a, b, c;

    dead_pid = 0;
    CHECK(ws_table_relays(t) == 0);
    CHECK((a = ws_table_relay_take(t, 2, 100, alive_unless_dead)) > 0);
    CHECK((b = ws_table_relay_take(t, 2, 200, alive_unless_dead)) > 0 && b != a);
    CHECK(ws_table_relay_take(t, 2, 300, alive_unless_dead) == 0);     /* both held */
    CHECK(ws_table_relays(t) == 2);
    CHECK(ws_table_relay_take(t, 0, 300, alive_unless_dead) == 0);
    CHECK(ws_table_relay_take(t, 2, 0, alive_unless_dead) == 0);       /* no pid, no place */
    ws_table_relay_give(t, a, 999);             /* not its holder: nothing changes */
    CHECK(ws_table_relays(t) == 2);
    ws_table_relay_give(t, a, 100);
    CHECK(ws_table_relays(t) == 1);
    ws_table_relay_give(t, a, 100);             /* given twice: still one */
    ws_table_relay_give(t, 0, 100);
    ws_table_relay_give(t, WS_RELAY_MAX + 1, 100);
    CHECK(ws_table_relays(t) == 1);
    /* A worker that died holding places: they are taken over, but only
     * when no place is free. */
    CHECK((c = ws_table_relay_take(t, 2, 300, alive_unless_dead)) > 0);
    dead_pid = 300;
    CHECK(ws_table_relay_take(t, 3, 400, alive_unless_dead) == 3);      /* a free one first */
    CHECK(ws_table_relay_take(t, 3, 500, alive_unless_dead) == c);      /* then the dead one */
    CHECK(ws_table_relay_take(t, 3, 600, alive_unless_dead) == 0);
    CHECK(ws_table_relay_take(t, 3, 600, NULL) == 0);
    ws_table_relay_give(t, c, 300);             /* the dead holder's late give: ignored */
    CHECK(ws_table_relays(t) == 3);
    CHECK(ws_table_relay_take(t, WS_RELAY_MAX + 10, 700, NULL) == 4);   /* max is capped */
    free(mem);
}

static void test_status_figures(void)
{
    void *mem = new_mem(4);
    ws_table *t = ws_table_format(mem, 4);
    creds a = make_creds(9001), b = make_creds(9002);
    unsigned sa, sb, s;
    apr_uint32_t ga, gb, g;
    unsigned char secret[WS_SECRET_LEN];
    ws_slot_stats st, got;

    /* counters and a gauge */
    CHECK(ws_table_counter(t, WS_STAT_STARTED) == 0);
    ws_table_note(t, WS_STAT_STARTED);
    ws_table_note(t, WS_STAT_STARTED);
    ws_table_note(t, WS_STAT_END_ADMIN);
    ws_table_note(t, WS_STAT_COUNT);               /* out of range: ignored */
    CHECK(ws_table_counter(t, WS_STAT_STARTED) == 2);
    CHECK(ws_table_counter(t, WS_STAT_END_ADMIN) == 1);
    CHECK(ws_table_counter(t, WS_STAT_COUNT) == 0);
    ws_table_set_gauge(t, WS_STAT_POOL, 7);
    ws_table_set_gauge(t, WS_STAT_POOL, 3);
    CHECK(ws_table_counter(t, WS_STAT_POOL) == 3);

    /* published figures, by (slot, gen) only */
    CHECK(reserve(t, &a, T0, &sa, &ga) == APR_SUCCESS);
    CHECK(ws_table_go_live(t, sa, ga, 555) == APR_SUCCESS);
    memset(&st, 0, sizeof(st));
    strcpy(st.target, "http://h:80 /ws/count");
    strcpy(st.client, "192.0.2.1");
    st.msgs_in = 5;
    st.bytes_out = 99;
    ws_table_publish(t, sa, ga, &st);
    CHECK(ws_table_stats(t, sa, &got) == APR_SUCCESS);
    CHECK(!strcmp(got.target, st.target) && !strcmp(got.client, "192.0.2.1"));
    CHECK(got.msgs_in == 5 && got.bytes_out == 99);
    st.msgs_in = 6;
    ws_table_publish(t, sa, ga + 1, &st);           /* stale pair: ignored */
    CHECK(ws_table_stats(t, sa, &got) == APR_SUCCESS && got.msgs_in == 5);

    /* the public id finds the secret of a live session, nothing else */
    CHECK(ws_table_find_pubid(t, a.pubid, &s, &g, secret) == APR_SUCCESS);
    CHECK(s == sa && g == ga && !memcmp(secret, a.secret, WS_SECRET_LEN));
    CHECK(reserve(t, &b, T0, &sb, &gb) == APR_SUCCESS);
    CHECK(ws_table_find_pubid(t, b.pubid, &s, &g, secret) == APR_NOTFOUND);  /* reserved */
    ws_table_mark_closing(t, sa, ga);
    CHECK(ws_table_find_pubid(t, a.pubid, &s, &g, secret) == APR_SUCCESS);  /* closing */

    /* a freed slot keeps no figures */
    ws_table_release(t, sa, ga);
    CHECK(ws_table_stats(t, sa, &got) == APR_NOTFOUND);
    CHECK(ws_table_find_pubid(t, a.pubid, &s, &g, secret) == APR_NOTFOUND);
    CHECK(!mem_contains(mem, ws_table_size(4), (const unsigned char *)"192.0.2.1", 9));
    free(mem);
}

int main(void)
{
    apr_initialize();

    test_ct_equal();
    test_format_attach();
    test_reserve_full();
    test_capacity_one();
    test_stale_reclaim();
    test_go_live();
    test_lookup();
    test_marks_and_closing();
    test_release_and_reuse();
    test_release_pid();
    test_concurrency();
    test_probe_window();
    test_per_client();
    test_relays();
    test_status_figures();

    apr_terminate();
    return UNIT_DONE("test_session_table");
}
