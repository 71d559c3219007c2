/* session_table.c -- the lock-free table of sessions in shared memory.
 *
 * Layout: a header (magic, version, capacity, slot size) followed by
 * `capacity` fixed-size slots.  The memory is the caller's; nothing here
 * allocates or does I/O.
 *
 * Every slot has one 32-bit state word, changed only with APR atomics:
 *
 *     bits 0-2   state (FREE, RESERVED, LIVE, CLOSING, or the private WIPING)
 *     bits 3-31  generation (29 bits), bumped by every reserve
 *
 * so a compare-and-swap on the word checks the (slot, generation) pair and
 * the state at once, and cannot be fooled by a slot that was freed and
 * taken again in between (ABA).  The other fields of a slot are written
 * only by whoever won the CAS that made it theirs: the reserver fills them
 * while the slot is RESERVED, and lookups only ever match LIVE slots, so a
 * session is visible only once go_live has published it with a CAS (a full
 * barrier).  Release moves the slot to WIPING first, so that exactly one
 * process wipes the secret before the slot can be taken again.
 *
 * Readers that are not the owner (lookup, get) read the state word before
 * and after copying the fields and discard the copy if the word changed.
 *
 * Where a session lives: its secret's home slot (first four bytes modulo
 * the capacity) and the WS_TABLE_PROBE - 1 slots after it, wrapping.  A
 * reserve takes the first free one of those; a lookup examines all of them.
 *
 * After the slots: one 32-bit counter per client key bucket (a power of
 * two, at least the capacity), incremented atomically by a reserve that
 * counts a client and decremented when the slot is wiped.
 */

#include <stddef.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_time.h>

#include "session_table.h"

#define WS_TABLE_MAGIC    0x57535442u   /* "WSTB" */
#define WS_TABLE_VERSION  4u

#define ST_BITS   3u
#define ST_MASK   ((1u << ST_BITS) - 1u)
#define GEN_MAX   (0xFFFFFFFFu >> ST_BITS)

/* Private state: being released; its fields are being wiped by the one
 * process that won the CAS into it.  Never matched, never reclaimed as
 * stale, reported as free by ws_table_get but still counted. */
#define WS_SLOT_WIPING  4u

typedef struct {
    volatile apr_uint32_t state;
    /* Generation whose `created` (the reserve time) has been written;
     * set last by the reserver, so the stale check never judges a
     * reservation by its predecessor's time. */
    volatile apr_uint32_t stamp_gen;
    volatile apr_uint32_t attaches;
    apr_uint32_t client;        /* counter index + 1, 0 if not counted */
    pid_t keeper_pid;
    apr_time_t created;
    apr_time_t attached;
    apr_time_t detached;
    unsigned char secret[WS_SECRET_LEN];
    unsigned char bind[WS_BIND_LEN];
    unsigned char pubid[WS_PUBID_LEN];
    ws_slot_stats stats;
} ws_slot;

struct ws_table {
    volatile apr_uint32_t magic;
    apr_uint32_t version;
    apr_uint32_t capacity;
    apr_uint32_t slot_size;
    apr_uint32_t buckets;       /* client counters after the slots, a power of two */
    apr_uint32_t pad;
    volatile apr_uint32_t relay_pid[WS_RELAY_MAX];  /* relayed connections: holder, or 0 */
    volatile apr_uint64_t stat[WS_STAT_COUNT];
    ws_slot slots[];
};

/* Client counters for a capacity: a power of two, at least the capacity. */
static apr_uint32_t buckets_for(unsigned capacity)
{
    apr_uint32_t b = 64;

    while (b < capacity && b < 0x80000000u) {
        b <<= 1;
    }
    return b;
}

static volatile apr_uint32_t *counters(const ws_table *t)
{
    return (volatile apr_uint32_t *)(void *)((char *)(void *)(apr_uintptr_t)t->slots
                                             + (apr_size_t)t->capacity * sizeof(ws_slot));
}

/* The first slot a secret may occupy, and how many it may. */
static unsigned home_of(const ws_table *t, const unsigned char *secret)
{
    apr_uint32_t h = (apr_uint32_t)secret[0] | (apr_uint32_t)secret[1] << 8
                     | (apr_uint32_t)secret[2] << 16 | (apr_uint32_t)secret[3] << 24;

    return h % t->capacity;
}

static unsigned probe_of(const ws_table *t)
{
    return t->capacity < WS_TABLE_PROBE ? t->capacity : WS_TABLE_PROBE;
}

static apr_uint32_t pack(apr_uint32_t gen, apr_uint32_t state)
{
    return ((gen & GEN_MAX) << ST_BITS) | (state & ST_MASK);
}

static apr_uint32_t word_state(apr_uint32_t w)
{
    return w & ST_MASK;
}

static apr_uint32_t word_gen(apr_uint32_t w)
{
    return w >> ST_BITS;
}

/* The APR atomics take non-const pointers; readers of a const table
 * still only read. */
static apr_uint32_t load_state(const ws_slot *s)
{
    return apr_atomic_read32((volatile apr_uint32_t *)&s->state);
}

/* 1 if x == 0, else 0, without a branch. */
static apr_uint32_t ct_is_zero32(apr_uint32_t x)
{
    return ((x | (0u - x)) >> 31) ^ 1u;
}

static void wipe(void *p, apr_size_t n)
{
    volatile unsigned char *v = p;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        v[i] = 0;
    }
}

/* Does (slot, gen) name a slot of this table at all? */
static int pair_in_range(const ws_table *t, unsigned slot, apr_uint32_t gen)
{
    return t != NULL && slot < t->capacity && gen <= GEN_MAX;
}

apr_size_t ws_table_size(unsigned capacity)
{
    const apr_size_t head = offsetof(struct ws_table, slots);
    apr_size_t counts;

    if (capacity == 0 || capacity > 0x40000000u
        || (apr_size_t)capacity > (APR_SIZE_MAX - head) / sizeof(ws_slot) / 2) {
        return 0;
    }
    counts = (apr_size_t)buckets_for(capacity) * sizeof(apr_uint32_t);
    return head + (apr_size_t)capacity * sizeof(ws_slot) + counts;
}

ws_table *ws_table_format(void *mem, unsigned capacity)
{
    ws_table *t = mem;
    apr_size_t size = ws_table_size(capacity);

    if (mem == NULL || size == 0
        || ((apr_uintptr_t)mem % _Alignof(struct ws_table)) != 0) {
        return NULL;
    }
    /* Clear the magic first so nobody attaches to a half-formatted table,
     * and publish it last with a full barrier. */
    apr_atomic_set32(&t->magic, 0);
    memset((char *)mem + sizeof(t->magic), 0, size - sizeof(t->magic));
    t->version = WS_TABLE_VERSION;
    t->capacity = capacity;
    t->slot_size = (apr_uint32_t)sizeof(ws_slot);
    t->buckets = buckets_for(capacity);
    apr_atomic_set32(&t->magic, WS_TABLE_MAGIC);
    return t;
}

ws_table *ws_table_attach(void *mem)
{
    ws_table *t = mem;

    if (mem == NULL
        || ((apr_uintptr_t)mem % _Alignof(struct ws_table)) != 0
        || apr_atomic_read32(&t->magic) != WS_TABLE_MAGIC
        || t->version != WS_TABLE_VERSION
        || t->slot_size != sizeof(ws_slot)
        || t->capacity == 0
        || t->buckets != buckets_for(t->capacity)) {
        return NULL;
    }
    return t;
}

unsigned ws_table_capacity(const ws_table *t)
{
    return t->capacity;
}

unsigned ws_table_count(const ws_table *t)
{
    unsigned i, n = 0;

    for (i = 0; i < t->capacity; i++) {
        if (word_state(load_state(&t->slots[i])) != WS_SLOT_FREE) {
            n++;
        }
    }
    return n;
}

/* Fill a slot we have just taken (state RESERVED, generation gen). */
static void fill_reserved(ws_slot *s, apr_uint32_t gen,
                          const unsigned char *secret,
                          const unsigned char *bind,
                          const unsigned char *pubid, apr_uint32_t client, apr_time_t now)
{
    s->client = client;
    memset(&s->stats, 0, sizeof(s->stats));
    memcpy(s->secret, secret, WS_SECRET_LEN);
    memcpy(s->bind, bind, WS_BIND_LEN);
    memcpy(s->pubid, pubid, WS_PUBID_LEN);
    s->keeper_pid = 0;
    s->created = now;
    s->attached = 0;
    s->detached = now;          /* no client yet */
    apr_atomic_set32(&s->attaches, 0);
    /* Last: from here on the stale check may judge this reservation. */
    apr_atomic_set32(&s->stamp_gen, gen);
}

/* Give back a client's count (index + 1 in c; 0: none), never below 0:
 * a count cut short by a crash may stay one too high, never wrap around. */
static void uncount(const ws_table *t, apr_uint32_t c)
{
    volatile apr_uint32_t *n;
    apr_uint32_t v;

    if (!c || c > t->buckets) {
        return;
    }
    n = &counters(t)[c - 1];
    while ((v = apr_atomic_read32(n)) != 0 && apr_atomic_cas32(n, v - 1, v) != v) {
    }
}

unsigned ws_table_client_count(const ws_table *t, apr_uint32_t client)
{
    return apr_atomic_read32(&counters(t)[client & (t->buckets - 1)]);
}

apr_status_t ws_table_reserve(ws_table *t, const unsigned char secret[WS_SECRET_LEN],
                              const unsigned char bind[WS_BIND_LEN],
                              const unsigned char pubid[WS_PUBID_LEN],
                              apr_uint32_t client, unsigned max_per_client,
                              apr_time_t now, apr_interval_time_t stale_after,
                              unsigned *slot, apr_uint32_t *gen)
{
    unsigned home = home_of(t, secret), probe = probe_of(t), k;
    apr_uint32_t counted = 0;
    int pass;

    if (client) {
        apr_uint32_t b = client & (t->buckets - 1);

        /* Count first, so that racing reserves of one client cannot all
         * pass the limit; give it back if no slot is taken. */
        if (apr_atomic_inc32(&counters(t)[b]) >= max_per_client && max_per_client) {
            apr_atomic_dec32(&counters(t)[b]);
            return APR_EBUSY;
        }
        counted = b + 1;
    }
    /* Pass 0: a free slot.  Pass 1: a reservation older than stale_after
     * whose worker evidently died before go_live; stale_after <= 0 turns
     * reclaiming off rather than stealing reservations in progress. */
    for (pass = 0; pass < 2; pass++) {
        if (pass == 1 && stale_after <= 0) {
            break;
        }
        for (k = 0; k < probe; k++) {
            unsigned i = (home + k) % t->capacity;
            ws_slot *s = &t->slots[i];
            apr_uint32_t w = load_state(s);
            apr_uint32_t next;

            if (pass == 0) {
                if (word_state(w) != WS_SLOT_FREE) {
                    continue;
                }
            }
            else {
                if (word_state(w) != WS_SLOT_RESERVED) {
                    continue;
                }
                /* The reserver writes its time, then stamp_gen; until
                 * stamp_gen names this generation the time is not yet its
                 * own and the reservation counts as fresh. */
                if (apr_atomic_read32(&s->stamp_gen) != word_gen(w)
                    || !(s->created < now - stale_after)
                    || load_state(s) != w) {
                    continue;
                }
            }
            next = pack(word_gen(w) + 1, WS_SLOT_RESERVED);
            if (apr_atomic_cas32(&s->state, next, w) != w) {
                continue;       /* someone else took it; try the next one */
            }
            {
                apr_uint32_t dead = pass == 1 ? s->client : 0;  /* the dead reservation's */

                fill_reserved(s, word_gen(next), secret, bind, pubid, counted, now);
                uncount(t, dead);
            }
            *slot = i;
            *gen = word_gen(next);
            return APR_SUCCESS;
        }
    }
    uncount(t, counted);
    return APR_ENOSPC;
}

apr_status_t ws_table_go_live(ws_table *t, unsigned slot, apr_uint32_t gen,
                              pid_t keeper_pid)
{
    ws_slot *s;
    apr_uint32_t want;

    if (!pair_in_range(t, slot, gen) || keeper_pid <= 0) {
        return APR_EINVAL;
    }
    s = &t->slots[slot];
    want = pack(gen, WS_SLOT_RESERVED);
    if (load_state(s) != want) {
        return APR_EINVAL;
    }
    /* Still ours while RESERVED; the CAS publishes it with a barrier. */
    s->keeper_pid = keeper_pid;
    if (apr_atomic_cas32(&s->state, pack(gen, WS_SLOT_LIVE), want) != want) {
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t ws_table_lookup(const ws_table *t, const unsigned char secret[WS_SECRET_LEN],
                             const unsigned char bind[WS_BIND_LEN],
                             ws_slot_info *info)
{
    /* Every slot the secret may occupy is examined and every comparison
     * result only ever feeds masks, so the time taken does not depend on
     * which slot (if any) matches, nor on how much of a secret or binding
     * is right. */
    apr_uint32_t found = 0, acc_slot = 0, acc_gen = 0, acc_pid = 0;
    apr_uint32_t acc_attaches = 0;
    apr_uint64_t acc_created = 0, acc_attached = 0, acc_detached = 0;
    unsigned char acc_pubid[WS_PUBID_LEN];
    unsigned i, j;

    unsigned home = home_of(t, secret), probe = probe_of(t), k;

    memset(acc_pubid, 0, sizeof(acc_pubid));
    for (k = 0; k < probe; k++) {
        const ws_slot *s;

        i = (home + k) % t->capacity;
        s = &t->slots[i];
        apr_uint32_t w1, w2, eq, live, m;
        apr_uint64_t m64;
        apr_uint32_t pid, attaches;
        apr_uint64_t created, attached, detached;
        unsigned char pubid[WS_PUBID_LEN];

        w1 = load_state(s);
        eq = (apr_uint32_t)ws_ct_equal(s->secret, secret, WS_SECRET_LEN)
             & (apr_uint32_t)ws_ct_equal(s->bind, bind, WS_BIND_LEN);
        pid = (apr_uint32_t)s->keeper_pid;
        attaches = apr_atomic_read32((volatile apr_uint32_t *)&s->attaches);
        created = (apr_uint64_t)s->created;
        attached = (apr_uint64_t)s->attached;
        detached = (apr_uint64_t)s->detached;
        memcpy(pubid, s->pubid, WS_PUBID_LEN);
        w2 = load_state(s);

        live = ct_is_zero32(word_state(w1) ^ WS_SLOT_LIVE)
               & ct_is_zero32(w1 ^ w2);
        m = 0u - (eq & live);
        m64 = (apr_uint64_t)0 - (apr_uint64_t)(eq & live);

        found |= m & 1u;
        acc_slot |= (apr_uint32_t)i & m;
        acc_gen |= word_gen(w1) & m;
        acc_pid |= pid & m;
        acc_attaches |= attaches & m;
        acc_created |= created & m64;
        acc_attached |= attached & m64;
        acc_detached |= detached & m64;
        for (j = 0; j < WS_PUBID_LEN; j++) {
            acc_pubid[j] |= (unsigned char)(pubid[j] & (unsigned char)m);
        }
    }

    if (!found) {
        return APR_NOTFOUND;
    }
    if (info != NULL) {
        info->slot = acc_slot;
        info->gen = acc_gen;
        info->state = WS_SLOT_LIVE;
        info->keeper_pid = (pid_t)acc_pid;
        memcpy(info->pubid, acc_pubid, WS_PUBID_LEN);
        info->created = (apr_time_t)acc_created;
        info->attached = (apr_time_t)acc_attached;
        info->detached = (apr_time_t)acc_detached;
        info->attaches = acc_attaches;
    }
    return APR_SUCCESS;
}

apr_status_t ws_table_get(const ws_table *t, unsigned slot, ws_slot_info *info)
{
    const ws_slot *s;
    apr_uint32_t w1, w2;

    if (t == NULL || slot >= t->capacity) {
        return APR_EINVAL;
    }
    s = &t->slots[slot];
    do {
        w1 = load_state(s);
        if (word_state(w1) == WS_SLOT_FREE || word_state(w1) == WS_SLOT_WIPING) {
            return APR_NOTFOUND;
        }
        info->slot = slot;
        info->gen = word_gen(w1);
        info->state = (ws_slot_state)word_state(w1);
        info->keeper_pid = s->keeper_pid;
        memcpy(info->pubid, s->pubid, WS_PUBID_LEN);
        info->created = s->created;
        info->attached = s->attached;
        info->detached = s->detached;
        info->attaches = apr_atomic_read32((volatile apr_uint32_t *)&s->attaches);
        w2 = load_state(s);
    } while (w1 != w2);
    return APR_SUCCESS;
}

/* The slot if (slot, gen) names a LIVE slot, else NULL.  Only the keeper
 * that owns the session calls the mark_* functions, so the slot cannot be
 * freed and reused between this check and its writes. */
static ws_slot *live_slot(ws_table *t, unsigned slot, apr_uint32_t gen)
{
    ws_slot *s;

    if (!pair_in_range(t, slot, gen)) {
        return NULL;
    }
    s = &t->slots[slot];
    return load_state(s) == pack(gen, WS_SLOT_LIVE) ? s : NULL;
}

void ws_table_mark_attached(ws_table *t, unsigned slot, apr_uint32_t gen, apr_time_t now)
{
    ws_slot *s = live_slot(t, slot, gen);

    if (s != NULL) {
        s->attached = now;
        s->detached = 0;
        apr_atomic_inc32(&s->attaches);
    }
}

void ws_table_mark_detached(ws_table *t, unsigned slot, apr_uint32_t gen, apr_time_t now)
{
    ws_slot *s = live_slot(t, slot, gen);

    if (s != NULL) {
        s->detached = now;
    }
}

void ws_table_mark_closing(ws_table *t, unsigned slot, apr_uint32_t gen)
{
    if (pair_in_range(t, slot, gen)) {
        apr_atomic_cas32(&t->slots[slot].state, pack(gen, WS_SLOT_CLOSING),
                         pack(gen, WS_SLOT_LIVE));
    }
}

/* We own the slot in state (gen, WIPING): wipe it and make it FREE with the
 * same generation (the next reserve bumps it).  keeper_pid goes last so
 * that release_pid can still recognise a release cut short by a crash. */
static void wipe_and_free(const ws_table *t, ws_slot *s, apr_uint32_t gen)
{
    apr_uint32_t c = s->client;

    s->client = 0;
    uncount(t, c);
    wipe(s->secret, sizeof(s->secret));
    wipe(s->bind, sizeof(s->bind));
    wipe(s->pubid, sizeof(s->pubid));
    wipe(&s->stats, sizeof(s->stats));
    s->created = 0;
    s->attached = 0;
    s->detached = 0;
    apr_atomic_set32(&s->attaches, 0);
    s->keeper_pid = 0;
    apr_atomic_set32(&s->state, pack(gen, WS_SLOT_FREE));
}

/* Move a slot in word w to WIPING; nonzero if we won it. */
static int claim_for_wipe(ws_slot *s, apr_uint32_t w)
{
    return apr_atomic_cas32(&s->state, pack(word_gen(w), WS_SLOT_WIPING), w) == w;
}

void ws_table_release(ws_table *t, unsigned slot, apr_uint32_t gen)
{
    ws_slot *s;
    apr_uint32_t w, st;

    if (!pair_in_range(t, slot, gen)) {
        return;
    }
    s = &t->slots[slot];
    for (;;) {
        w = load_state(s);
        st = word_state(w);
        if (word_gen(w) != gen || st == WS_SLOT_FREE || st == WS_SLOT_WIPING) {
            return;             /* stale pair, or already being freed */
        }
        if (claim_for_wipe(s, w)) {
            wipe_and_free(t, s, gen);
            return;
        }
        /* The word changed under us (e.g. LIVE -> CLOSING); look again. */
    }
}

unsigned ws_table_release_pid(ws_table *t, pid_t pid)
{
    unsigned i, n = 0;

    if (pid <= 0) {
        return 0;               /* would match every unclaimed reservation */
    }
    for (i = 0; i < t->capacity; i++) {
        ws_slot *s = &t->slots[i];
        apr_uint32_t w = load_state(s);
        apr_uint32_t st = word_state(w);

        if (st == WS_SLOT_FREE || s->keeper_pid != pid) {
            continue;
        }
        if (st == WS_SLOT_WIPING) {
            /* The keeper died in the middle of its own release; nobody
             * else will finish it. */
            if (load_state(s) == w) {
                wipe_and_free(t, s, word_gen(w));
                n++;
            }
        }
        else if (claim_for_wipe(s, w)) {
            wipe_and_free(t, s, word_gen(w));
            n++;
        }
    }
    return n;
}

void ws_table_note(ws_table *t, ws_stat what)
{
    if (what < WS_STAT_COUNT) {
        apr_atomic_inc64(&t->stat[what]);
    }
}

void ws_table_set_gauge(ws_table *t, ws_stat what, apr_uint64_t value)
{
    if (what < WS_STAT_COUNT) {
        apr_atomic_set64(&t->stat[what], value);
    }
}

apr_uint64_t ws_table_counter(const ws_table *t, ws_stat what)
{
    return what < WS_STAT_COUNT
           ? apr_atomic_read64((volatile apr_uint64_t *)&t->stat[what]) : 0;
}

void ws_table_publish(ws_table *t, unsigned slot, apr_uint32_t gen,
                      const ws_slot_stats *stats)
{
    ws_slot *s;

    if (!pair_in_range(t, slot, gen)) {
        return;
    }
    s = &t->slots[slot];
    if (word_gen(load_state(s)) == gen) {
        s->stats = *stats;
    }
}

apr_status_t ws_table_stats(const ws_table *t, unsigned slot, ws_slot_stats *stats)
{
    const ws_slot *s;
    apr_uint32_t w;

    if (t == NULL || slot >= t->capacity) {
        return APR_EINVAL;
    }
    s = &t->slots[slot];
    w = load_state(s);
    if (word_state(w) == WS_SLOT_FREE || word_state(w) == WS_SLOT_WIPING) {
        return APR_NOTFOUND;
    }
    *stats = s->stats;
    stats->target[sizeof(stats->target) - 1] = '\0';
    stats->client[sizeof(stats->client) - 1] = '\0';
    return load_state(s) == w ? APR_SUCCESS : APR_NOTFOUND;
}

apr_status_t ws_table_find_pubid(const ws_table *t, const unsigned char pubid[WS_PUBID_LEN],
                                 unsigned *slot, apr_uint32_t *gen,
                                 unsigned char secret[WS_SECRET_LEN])
{
    for (unsigned i = 0; i < t->capacity; i++) {
        const ws_slot *s = &t->slots[i];
        apr_uint32_t w = load_state(s), st = word_state(w);

        if ((st != WS_SLOT_LIVE && st != WS_SLOT_CLOSING)
            || memcmp(s->pubid, pubid, WS_PUBID_LEN) != 0) {
            continue;
        }
        memcpy(secret, s->secret, WS_SECRET_LEN);
        if (load_state(s) != w) {
            continue;               /* changed while copied: not this one */
        }
        *slot = i;
        *gen = word_gen(w);
        return APR_SUCCESS;
    }
    return APR_NOTFOUND;
}

unsigned ws_table_relay_take(ws_table *t, unsigned max, apr_uint32_t pid, ws_alive_fn alive)
{
    if (max > WS_RELAY_MAX) {
        max = WS_RELAY_MAX;
    }
    if (!pid) {
        return 0;
    }
    for (unsigned i = 0; i < max; i++) {
        if (apr_atomic_read32(&t->relay_pid[i]) == 0
            && apr_atomic_cas32(&t->relay_pid[i], pid, 0) == 0) {
            return i + 1;
        }
    }
    for (unsigned i = 0; alive && i < max; i++) {
        apr_uint32_t holder = apr_atomic_read32(&t->relay_pid[i]);

        if (holder && !alive(holder)
            && apr_atomic_cas32(&t->relay_pid[i], pid, holder) == holder) {
            return i + 1;
        }
    }
    return 0;
}

void ws_table_relay_give(ws_table *t, unsigned token, apr_uint32_t pid)
{
    if (token >= 1 && token <= WS_RELAY_MAX) {
        apr_atomic_cas32(&t->relay_pid[token - 1], 0, pid);
    }
}

unsigned ws_table_relays(const ws_table *t)
{
    unsigned n = 0;

    for (unsigned i = 0; i < WS_RELAY_MAX; i++) {
        n += apr_atomic_read32((volatile apr_uint32_t *)&t->relay_pid[i]) != 0;
    }
    return n;
}

int ws_ct_equal(const unsigned char *a, const unsigned char *b, apr_size_t n)
{
    volatile unsigned char acc = 0;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        acc |= (unsigned char)(a[i] ^ b[i]);
    }
    /* acc - 1 underflows (sets bit 8) only when acc is 0. */
    return (int)((((unsigned)acc - 1u) >> 8) & 1u);
}
