/*
 * Checkpoints: named float32 tensors and a JSON text of training state in
 * lupe's own format (see engine.h and docs/formats.md). The reader trusts
 * nothing: the checksum is verified before any field is used, and every
 * length is checked against the bytes that remain, so a truncated or
 * damaged file is an error naming where it went wrong, never a crash.
 */
#include <string.h>

#include "lupe/engine.h"

#define MAGIC "LUPECKPT"
#define VERSION 1
#define MAX_NAME 1024
#define MAX_TENSORS (1u << 20)
#define MAX_META (64u << 20)
#define MAX_FILE ((size_t)16 << 30)

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} wbuf;

static void put(wbuf *b, const void *src, size_t n)
{
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = lupe_realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

/* Little-endian writers; x86-64 is little-endian, but the format must not
 * depend on the host, so bytes are placed one at a time. */
static void put_u(wbuf *b, uint64_t v, int bytes)
{
    uint8_t t[8];
    for (int i = 0; i < bytes; i++) t[i] = (uint8_t)(v >> (8 * i));
    put(b, t, (size_t)bytes);
}

static void put_f32s(wbuf *b, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_u(b, u, 4);
    }
}

lupe_status eng_ckpt_save(const char *path, const char *meta, const eng_tensor_rec *t, size_t nt)
{
    if (!meta) meta = "{}";
    wbuf b = {0};
    put(&b, MAGIC, 8);
    put_u(&b, VERSION, 4);
    put_u(&b, 0, 4);
    put_u(&b, nt, 8);
    put_u(&b, strlen(meta), 8);
    put(&b, meta, strlen(meta));
    for (size_t i = 0; i < nt; i++) {
        size_t nl = strlen(t[i].name), n = 1;
        if (nl == 0 || nl > MAX_NAME || t[i].ndim < 1 || t[i].ndim > ENG_CKPT_MAX_DIMS) {
            lupe_free(b.p);
            return lupe_err(LUPE_EARG, "%s: tensor %zu ('%s') has a bad name or dimension count", path, i, t[i].name);
        }
        put_u(&b, nl, 2);
        put(&b, t[i].name, nl);
        put_u(&b, 0, 1);
        put_u(&b, (uint64_t)t[i].ndim, 1);
        for (int d = 0; d < t[i].ndim; d++) {
            put_u(&b, (uint64_t)t[i].dims[d], 8);
            n *= (size_t)t[i].dims[d];
        }
        if (n != t[i].n) {
            lupe_free(b.p);
            return lupe_err(LUPE_EARG, "%s: tensor '%s': dims give %zu values, not %zu", path, t[i].name, n, t[i].n);
        }
        put_f32s(&b, t[i].data, n);
    }
    uint8_t d[LUPE_SHA256_BYTES];
    if (!b.oom) {
        lupe_sha256(b.p, b.len, d);
        put(&b, d, sizeof d);
    }
    if (b.oom) {
        lupe_free(b.p);
        return lupe_err(LUPE_ENOMEM, "%s: out of memory encoding the checkpoint", path);
    }
    lupe_status st = lupe_file_write_atomic(path, b.p, b.len);
    lupe_free(b.p);
    return st;
}

typedef struct rbuf {
    const uint8_t *p;
    size_t len, off;
    const char *src;
} rbuf;

static lupe_status need(rbuf *r, size_t n, const char *what)
{
    if (n > r->len - r->off)
        return lupe_err(LUPE_EFORMAT, "%s: truncated at byte %zu: %s needs %zu bytes, %zu remain", r->src, r->off, what,
                        n, r->len - r->off);
    return LUPE_OK;
}

static uint64_t get_u(rbuf *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)r->p[r->off + (size_t)i] << (8 * i);
    r->off += (size_t)bytes;
    return v;
}

void eng_ckpt_free(eng_ckpt *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nt; i++) {
        lupe_free(c->t[i].name);
        lupe_free(c->t[i].data);
    }
    lupe_free(c->t);
    lupe_free(c->meta);
    lupe_free(c);
}

lupe_status eng_ckpt_parse(const uint8_t *buf, size_t len, const char *src, eng_ckpt **out)
{
    rbuf r = {buf, len, 0, src};
    lupe_status st;
    if (len < 8 + 4 + 4 + 8 + 8 + LUPE_SHA256_BYTES || memcmp(buf, MAGIC, 8) != 0)
        return lupe_err(LUPE_EFORMAT, "%s: not a lupe checkpoint (%zu bytes; expected the magic LUPECKPT)", src, len);
    /* The checksum first: nothing in a damaged file is used. */
    uint8_t d[LUPE_SHA256_BYTES];
    r.len = len - LUPE_SHA256_BYTES;
    lupe_sha256(buf, r.len, d);
    if (memcmp(d, buf + r.len, sizeof d) != 0)
        return lupe_err(LUPE_ECORRUPT, "%s: checksum mismatch (the file is damaged or truncated)", src);
    r.off = 8;
    uint64_t version = get_u(&r, 4), flags = get_u(&r, 4), nt = get_u(&r, 8), ml = get_u(&r, 8);
    if (version != VERSION) return lupe_err(LUPE_EUNSUPPORTED, "%s: checkpoint version %llu, this lupe reads %d", src,
                                            (unsigned long long)version, VERSION);
    if (flags) return lupe_err(LUPE_EUNSUPPORTED, "%s: unknown checkpoint flags %#llx", src, (unsigned long long)flags);
    if (nt > MAX_TENSORS) return lupe_err(LUPE_ELIMIT, "%s: %llu tensors is over the limit", src, (unsigned long long)nt);
    if (ml > MAX_META) return lupe_err(LUPE_ELIMIT, "%s: metadata of %llu bytes is over the limit", src, (unsigned long long)ml);
    if ((st = need(&r, (size_t)ml, "the metadata"))) return st;
    eng_ckpt *c = lupe_calloc(1, sizeof *c);
    if (!c) return LUPE_ENOMEM;
    c->meta = lupe_strndup((const char *)buf + r.off, (size_t)ml);
    c->t = lupe_calloc((size_t)nt + 1, sizeof *c->t);
    if (!c->meta || !c->t) {
        st = LUPE_ENOMEM;
        goto fail;
    }
    r.off += (size_t)ml;
    for (uint64_t i = 0; i < nt; i++) {
        eng_tensor_rec *t = &c->t[i];
        char what[64];
        snprintf(what, sizeof what, "tensor %llu's header", (unsigned long long)i);
        if ((st = need(&r, 2, what))) goto fail;
        size_t nl = (size_t)get_u(&r, 2);
        if (nl == 0 || nl > MAX_NAME) {
            st = lupe_err(LUPE_EFORMAT, "%s: byte %zu: tensor %llu has a name of %zu bytes", src, r.off - 2,
                          (unsigned long long)i, nl);
            goto fail;
        }
        if ((st = need(&r, nl + 2, what))) goto fail;
        if (!(t->name = lupe_strndup((const char *)buf + r.off, nl))) {
            st = LUPE_ENOMEM;
            goto fail;
        }
        c->nt = i + 1; /* from here on freed by eng_ckpt_free */
        r.off += nl;
        unsigned dtype = (unsigned)get_u(&r, 1), ndim = (unsigned)get_u(&r, 1);
        if (dtype != 0 || ndim < 1 || ndim > ENG_CKPT_MAX_DIMS) {
            st = lupe_err(LUPE_EFORMAT, "%s: byte %zu: tensor '%s' has dtype %u and %u dimensions (expected f32, 1 to %d)",
                          src, r.off - 2, t->name, dtype, ndim, ENG_CKPT_MAX_DIMS);
            goto fail;
        }
        if ((st = need(&r, 8 * (size_t)ndim, what))) goto fail;
        t->ndim = (int)ndim;
        size_t n = 1;
        for (unsigned k = 0; k < ndim; k++) {
            uint64_t v = get_u(&r, 8);
            /* Bound each factor by the bytes left so the product cannot overflow. */
            if (v == 0 || v > (r.len - r.off) / 4 || n > ((r.len - r.off) / 4) / v) {
                st = lupe_err(LUPE_EFORMAT, "%s: tensor '%s': dimension %u is %llu, more than the file holds", src,
                              t->name, k, (unsigned long long)v);
                goto fail;
            }
            t->dims[k] = (int64_t)v;
            n *= (size_t)v;
        }
        t->n = n;
        snprintf(what, sizeof what, "the data of tensor '%.40s'", t->name);
        if ((st = need(&r, 4 * n, what))) goto fail;
        if (!(t->data = lupe_malloc(4 * n))) {
            st = LUPE_ENOMEM;
            goto fail;
        }
        for (size_t k = 0; k < n; k++) {
            uint32_t u = (uint32_t)get_u(&r, 4);
            memcpy(&t->data[k], &u, 4);
        }
    }
    if (r.off != r.len) {
        st = lupe_err(LUPE_EFORMAT, "%s: %zu unexpected bytes after the last tensor at byte %zu", src, r.len - r.off, r.off);
        goto fail;
    }
    *out = c;
    return LUPE_OK;
fail:
    eng_ckpt_free(c);
    return st;
}

lupe_status eng_ckpt_load(const char *path, eng_ckpt **out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    lupe_status st = lupe_file_read(path, MAX_FILE, &buf, &len);
    if (st) return st;
    st = eng_ckpt_parse(buf, len, path, out);
    lupe_free(buf);
    return st;
}

const eng_tensor_rec *eng_ckpt_find(const eng_ckpt *c, const char *name)
{
    for (size_t i = 0; i < c->nt; i++)
        if (strcmp(c->t[i].name, name) == 0) return &c->t[i];
    return NULL;
}
