/*
 * The allocation funnel. Every block carries a 16-byte header holding its
 * requested size, so frees can be counted exactly without a side table. The
 * counters are atomics: the funnel is called from worker threads.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lupe/base.h"

#define HDR 16 /* keeps the user pointer 16-byte aligned */

static atomic_size_t live_bytes;
static atomic_size_t peak_bytes;
static atomic_size_t limit_bytes;
static atomic_uint_fast64_t n_allocs, n_frees, n_failures;
static atomic_uint_fast64_t fail_countdown; /* 0 = off */

/* Decides whether an allocation of n more bytes may go ahead and, if so,
 * books it. Returns 0 when it must fail. */
static int book(size_t n)
{
    uint_fast64_t c = atomic_load(&fail_countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1)) {
            if (c == 1) goto fail;
            break;
        }
    }
    size_t lim = atomic_load(&limit_bytes);
    size_t now = atomic_fetch_add(&live_bytes, n) + n;
    if (lim && now > lim) {
        atomic_fetch_sub(&live_bytes, n);
        goto fail;
    }
    size_t peak = atomic_load(&peak_bytes);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {
    }
    atomic_fetch_add(&n_allocs, 1);
    return 1;
fail:
    atomic_fetch_add(&n_failures, 1);
    lupe_err(LUPE_ENOMEM, "out of memory allocating %zu bytes", n);
    return 0;
}

void *lupe_malloc(size_t n)
{
    if (n > SIZE_MAX - HDR) {
        lupe_err(LUPE_ENOMEM, "allocation of %zu bytes is too large", n);
        return NULL;
    }
    if (!book(n)) return NULL;
    unsigned char *p = malloc(n + HDR);
    if (!p) {
        atomic_fetch_sub(&live_bytes, n);
        atomic_fetch_add(&n_failures, 1);
        lupe_err(LUPE_ENOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    memcpy(p, &n, sizeof n);
    return p + HDR;
}

void *lupe_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) {
        lupe_err(LUPE_ENOMEM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = lupe_malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

size_t lupe_alloc_size(const void *p)
{
    size_t n = 0;
    if (p) memcpy(&n, (const unsigned char *)p - HDR, sizeof n);
    return n;
}

void lupe_free(void *p)
{
    if (!p) return;
    size_t n = lupe_alloc_size(p);
    atomic_fetch_sub(&live_bytes, n);
    atomic_fetch_add(&n_frees, 1);
    free((unsigned char *)p - HDR);
}

void *lupe_realloc(void *p, size_t n)
{
    if (!p) return lupe_malloc(n);
    if (n == 0) {
        lupe_free(p);
        return NULL;
    }
    size_t old = lupe_alloc_size(p);
    if (n > SIZE_MAX - HDR) {
        lupe_err(LUPE_ENOMEM, "allocation of %zu bytes is too large", n);
        return NULL;
    }
    /* Book the growth first so the limit and the fail-Nth switch apply. */
    if (n > old && !book(n - old)) return NULL;
    unsigned char *q = realloc((unsigned char *)p - HDR, n + HDR);
    if (!q) {
        if (n > old) atomic_fetch_sub(&live_bytes, n - old);
        atomic_fetch_add(&n_failures, 1);
        lupe_err(LUPE_ENOMEM, "out of memory growing a block to %zu bytes", n);
        return NULL;
    }
    if (n < old) atomic_fetch_sub(&live_bytes, old - n);
    memcpy(q, &n, sizeof n);
    return q + HDR;
}

char *lupe_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = lupe_malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

char *lupe_strdup(const char *s)
{
    return lupe_strndup(s, SIZE_MAX);
}

char *lupe_asprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = NULL;
    if (n >= 0 && (s = lupe_malloc((size_t)n + 1))) vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

void lupe_alloc_get_stats(lupe_alloc_stats *out)
{
    out->live_bytes = atomic_load(&live_bytes);
    out->peak_bytes = atomic_load(&peak_bytes);
    out->limit_bytes = atomic_load(&limit_bytes);
    out->allocs = atomic_load(&n_allocs);
    out->frees = atomic_load(&n_frees);
    out->failures = atomic_load(&n_failures);
}

void lupe_alloc_set_limit(size_t bytes)
{
    atomic_store(&limit_bytes, bytes);
}

void lupe_alloc_fail_nth(uint64_t nth)
{
    atomic_store(&fail_countdown, nth);
}

void lupe_alloc_reset_peak(void)
{
    atomic_store(&peak_bytes, atomic_load(&live_bytes));
}
