/*
 * A small string-keyed hash map (open addressing, linear probing, FNV-1a)
 * for the readers' and writers' lookups: class names, COCO ids, YOLO image
 * stems and export names. Keys are copied; nothing is ever removed.
 */
#include <string.h>

#include "formats/internal.h"

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

void fmt__map_cleanup(fmt__map *m)
{
    for (size_t i = 0; i < m->cap; i++) lupe_free(m->keys[i]);
    lupe_free(m->keys);
    lupe_free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t slot(const fmt__map *m, const char *key)
{
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & (m->cap - 1);
    return i;
}

int fmt__map_get(const fmt__map *m, const char *key, size_t *val)
{
    if (!m->cap) return 0;
    size_t i = slot(m, key);
    if (!m->keys[i]) return 0;
    *val = m->vals[i];
    return 1;
}

/* Doubles the table; keys move, not copied again. */
static lupe_status rehash(fmt__map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    fmt__map n = {lupe_calloc(ncap, sizeof(char *)), lupe_calloc(ncap, sizeof(size_t)), ncap, m->count};
    if (!n.keys || !n.vals) {
        lupe_free(n.keys);
        lupe_free(n.vals);
        return LUPE_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = slot(&n, m->keys[i]);
        n.keys[j] = m->keys[i];
        n.vals[j] = m->vals[i];
    }
    lupe_free(m->keys);
    lupe_free(m->vals);
    *m = n;
    return LUPE_OK;
}

lupe_status fmt__map_put(fmt__map *m, const char *key, size_t val)
{
    /* Keep the load under 1/2 so probes stay short. */
    if ((m->count + 1) * 2 > m->cap && rehash(m)) return LUPE_ENOMEM;
    size_t i = slot(m, key);
    if (!m->keys[i]) {
        char *k = lupe_strdup(key);
        if (!k) return LUPE_ENOMEM;
        m->keys[i] = k;
        m->count++;
    }
    m->vals[i] = val;
    return LUPE_OK;
}
