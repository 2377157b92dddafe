/*
 * The inference steps that are not convolutions: channel copies (concat
 * members, dense twins of strided views), residual adds, SPPF's max pooling
 * and nearest x2 upsampling, on f32, bf16 and int8 tensors whose rows may be
 * strided (a view of channels [off, off + c) of a wider buffer). Rows are
 * shared among OpenMP threads; nothing is allocated.
 */
#include <assert.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "infer/infer_internal.h"

/* Below this many elements a step runs on the calling thread: waking a
 * team costs microseconds. */
#define MIN_PAR_WORK 32768
/* Float staging per row chunk (on the stack). */
#define CHUNK 256

static int team(size_t work, int threads)
{
    if (threads < 2 || work < MIN_PAR_WORK) return 1;
    return threads;
}

uint16_t inf__bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float inf__bf16_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* ---- vectors -----------------------------------------------------------------
 * GCC vector extensions for what compiles well from them (float adds,
 * integer max), as the engine's fast ops; loads and stores go through
 * memcpy and vectors never cross a real call. Type conversions are
 * scalarised by GCC's __builtin_convertvector, so they have AVX2 versions
 * (target attribute, chosen at run time: every build, the debug and
 * sanitizer ones included, runs and tests them on a CPU that has AVX2). */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static int have_avx2(void)
{
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx2") ? 1 : 0;
    return v;
}

/* n multiple of 8. Rounding to nearest even (the default MXCSR mode),
 * saturated by clamping first. */
__attribute__((target("avx2"))) static void q8_avx2(void *dst, const float *src, int n, float inv, int is_s8)
{
    const __m256 k = _mm256_set1_ps(inv), lo = _mm256_set1_ps(is_s8 ? -128.0f : 0.0f),
                 hi = _mm256_set1_ps(is_s8 ? 127.0f : 255.0f);
    for (int i = 0; i < n; i += 8) {
        __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(src + i), k), lo), hi);
        __m256i q = _mm256_cvtps_epi32(x);
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        __m128i b = is_s8 ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
        _mm_storel_epi64((__m128i *)((char *)dst + i), b);
    }
}

__attribute__((target("avx2"))) static void dq8_avx2(float *dst, const void *src, int n, float scale, int is_s8)
{
    const __m256 k = _mm256_set1_ps(scale);
    for (int i = 0; i < n; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)((const char *)src + i));
        __m256i q = is_s8 ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
        _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_cvtepi32_ps(q), k));
    }
}

__attribute__((target("avx2"))) static void to_bf16_avx2(uint16_t *dst, const float *src, int n)
{
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff);
    for (int i = 0; i < n; i += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(src + i));
        u = _mm256_add_epi32(u, _mm256_add_epi32(half, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
        u = _mm256_srli_epi32(u, 16);
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
        _mm_storeu_si128((__m128i *)(dst + i), w);
    }
}

__attribute__((target("avx2"))) static void from_bf16_avx2(float *dst, const uint16_t *src, int n)
{
    for (int i = 0; i < n; i += 8) {
        __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(u, 16));
    }
}

/* o = a * fa + b * fb on int8, rounded to nearest even and saturated. */
__attribute__((target("avx2"))) static void add_s8_avx2(int8_t *o, const int8_t *a, const int8_t *b, int n, float fa,
                                                        float fb)
{
    const __m256 ka = _mm256_set1_ps(fa), kb = _mm256_set1_ps(fb), lo = _mm256_set1_ps(-128.0f),
                 hi = _mm256_set1_ps(127.0f);
    for (int i = 0; i < n; i += 8) {
        __m256 x = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(a + i))));
        __m256 y = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + i))));
        x = _mm256_add_ps(_mm256_mul_ps(x, ka), _mm256_mul_ps(y, kb));
        __m256i q = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(x, lo), hi));
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(o + i), _mm_packs_epi16(w, w));
    }
}

/* rows x bytes from src to dst with the given row strides: short rows
 * (concatenation members of a few channels) are copied with AVX moves
 * inline, where a memcpy call per row costs more than the copy. */
__attribute__((target("avx2"))) static void copy_rows_avx2(char *dst, size_t dstride, const char *src, size_t sstride,
                                                           long rows, size_t bytes)
{
    const size_t v = bytes / 32 * 32;
    for (long r = 0; r < rows; r++, dst += dstride, src += sstride) {
        size_t i = 0;
        for (; i < v; i += 32) _mm256_storeu_si256((__m256i *)(dst + i), _mm256_loadu_si256((const __m256i *)(src + i)));
        for (; i < bytes; i++) dst[i] = src[i];
    }
}

static void copy_rows(char *dst, size_t dstride, const char *src, size_t sstride, long rows, size_t bytes)
{
    if (bytes <= 512 && have_avx2()) {
        copy_rows_avx2(dst, dstride, src, sstride, rows, bytes);
        return;
    }
    for (long r = 0; r < rows; r++) memcpy(dst + (size_t)r * dstride, src + (size_t)r * sstride, bytes);
}

static void add_s8(int8_t *o, const int8_t *a, const int8_t *b, int n, float fa, float fb)
{
    int k = 0;
    if (have_avx2()) {
        k = n / 8 * 8;
        add_s8_avx2(o, a, b, k, fa, fb);
    }
    for (; k < n; k++) {
        float q = rintf(a[k] * fa + b[k] * fb);
        o[k] = (int8_t)(q < -128.0f ? -128.0f : q > 127.0f ? 127.0f : q);
    }
}

void inf__to_f32(float *dst, const void *src, int dt, float scale, int n)
{
    const int v = have_avx2() ? n / 8 * 8 : 0;
    int i = v;
    switch (dt) {
    case INF__F32: memcpy(dst, src, (size_t)n * 4); return;
    case INF__BF16: {
        const uint16_t *s = src;
        if (v) from_bf16_avx2(dst, s, v);
        for (; i < n; i++) dst[i] = inf__bf16_f32(s[i]);
        return;
    }
    case INF__S8: {
        const int8_t *s = src;
        if (v) dq8_avx2(dst, s, v, scale, 1);
        for (; i < n; i++) dst[i] = (float)s[i] * scale;
        return;
    }
    case INF__U8: {
        const uint8_t *s = src;
        if (v) dq8_avx2(dst, s, v, scale, 0);
        for (; i < n; i++) dst[i] = (float)s[i] * scale;
        return;
    }
    default: assert(0);
    }
}

void inf__from_f32(void *dst, const float *src, int dt, float scale, int n)
{
    const int v = have_avx2() ? n / 8 * 8 : 0;
    int i = v;
    switch (dt) {
    case INF__F32: memcpy(dst, src, (size_t)n * 4); return;
    case INF__BF16: {
        uint16_t *d = dst;
        if (v) to_bf16_avx2(d, src, v);
        for (; i < n; i++) d[i] = inf__bf16(src[i]);
        return;
    }
    case INF__S8:
    case INF__U8: {
        const float inv = 1.0f / scale, lo = dt == INF__S8 ? -128.0f : 0.0f, hi = dt == INF__S8 ? 127.0f : 255.0f;
        if (v) q8_avx2(dst, src, v, inv, dt == INF__S8);
        for (; i < n; i++) {
            float q = rintf(src[i] * inv);
            q = q < lo ? lo : q > hi ? hi : q;
            if (dt == INF__S8) ((int8_t *)dst)[i] = (int8_t)q;
            else ((uint8_t *)dst)[i] = (uint8_t)q;
        }
        return;
    }
    default: assert(0);
    }
}

static char *pix(const inf__view *v, size_t row)
{
    return (char *)v->p + row * (size_t)v->ld * inf__dsize(v->dt);
}

static int same_repr(const inf__view *a, const inf__view *b)
{
    return a->dt == b->dt && (a->dt == INF__F32 || a->dt == INF__BF16 || a->scale == b->scale);
}

/* A dense view seen as one row of all its elements, so that the element
 * loops run long (a 3-channel image has rows of 3). */
static inf__view flat(const inf__view *v)
{
    inf__view f = *v;
    if (v->ld == v->c) {
        f.c = f.ld = v->n * v->h * v->w * v->c;
        f.n = f.h = f.w = 1;
    }
    return f;
}

/* fn(ctx, row, c0, m) over rows x chunks of CHUNK channels: rows shared
 * among the threads, or a single long row's chunks. */
typedef void (*chunk_fn)(void *ctx, long r, int c0, int m);

static void for_chunks(long rows, int c, int nt, chunk_fn fn, void *ctx)
{
    if (rows == 1) {
        const long chunks = (c + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (long j = 0; j < chunks; j++) fn(ctx, 0, (int)j * CHUNK, c - (int)j * CHUNK < CHUNK ? c - (int)j * CHUNK : CHUNK);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < rows; r++)
        for (int c0 = 0; c0 < c; c0 += CHUNK) fn(ctx, r, c0, c - c0 < CHUNK ? c - c0 : CHUNK);
}

static void copy_chunk(void *ctx, long r, int c0, int m)
{
    const inf__view *dst = ((const inf__view **)ctx)[0], *src = ((const inf__view **)ctx)[1];
    const char *sp = pix(src, (size_t)r) + (size_t)c0 * inf__dsize(src->dt);
    char *dp = pix(dst, (size_t)r) + (size_t)c0 * inf__dsize(dst->dt);
    if (src->dt == INF__F32) {
        inf__from_f32(dp, (const float *)(const void *)sp, dst->dt, dst->scale, m);
    } else if (dst->dt == INF__F32) {
        inf__to_f32((float *)(void *)dp, sp, src->dt, src->scale, m);
    } else {
        float t[CHUNK];
        inf__to_f32(t, sp, src->dt, src->scale, m);
        inf__from_f32(dp, t, dst->dt, dst->scale, m);
    }
}

void inf__copy(const inf__view *dst0, const inf__view *src0, int threads)
{
    assert(dst0->n == src0->n && dst0->h == src0->h && dst0->w == src0->w && dst0->c == src0->c);
    const int dense = dst0->ld == dst0->c && src0->ld == src0->c;
    const inf__view d = dense ? flat(dst0) : *dst0, s = dense ? flat(src0) : *src0;
    const inf__view *dst = &d, *src = &s;
    const long rows = (long)src->n * src->h * src->w;
    const int c = src->c;
    const int nt = team((size_t)rows * c, threads);
    if (same_repr(dst, src)) {
        const size_t es = inf__dsize(src->dt);
        if (dense) {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (long i = 0; i < nt; i++) {
                size_t lo = (size_t)c * i / nt, hi = (size_t)c * (i + 1) / nt;
                memcpy((char *)dst->p + lo * es, (const char *)src->p + lo * es, (hi - lo) * es);
            }
            return;
        }
        const size_t ds = (size_t)dst->ld * es, ss = (size_t)src->ld * es;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (long i = 0; i < nt; i++) {
            long lo = rows * i / nt, hi = rows * (i + 1) / nt;
            copy_rows(pix(dst, (size_t)lo), ds, pix(src, (size_t)lo), ss, hi - lo, (size_t)c * es);
        }
        return;
    }
    /* Element conversions, a chunk at a time. */
    const inf__view *vs[2] = {dst, src};
    for_chunks(rows, c, nt, copy_chunk, vs);
}

static void add_f32(float *o, const float *x, const float *y, int n)
{
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        v8f a, b;
        memcpy(&a, x + k, 32), memcpy(&b, y + k, 32);
        a += b;
        memcpy(o + k, &a, 32);
    }
    for (; k < n; k++) o[k] = x[k] + y[k];
}

typedef struct add_ctx {
    const inf__view *dst, *a, *b;
    float fa, fb;
} add_ctx;

static void add_chunk_f32(void *ctx, long r, int c0, int m)
{
    const add_ctx *x = ctx;
    add_f32((float *)pix(x->dst, (size_t)r) + c0, (const float *)pix(x->a, (size_t)r) + c0,
            (const float *)pix(x->b, (size_t)r) + c0, m);
}

static void add_chunk_s8(void *ctx, long r, int c0, int m)
{
    const add_ctx *x = ctx;
    add_s8((int8_t *)pix(x->dst, (size_t)r) + c0, (const int8_t *)pix(x->a, (size_t)r) + c0,
           (const int8_t *)pix(x->b, (size_t)r) + c0, m, x->fa, x->fb);
}

static void add_chunk_any(void *ctx, long r, int c0, int m)
{
    const add_ctx *x = ctx;
    const inf__view *a = x->a, *b = x->b, *dst = x->dst;
    float u[CHUNK], w[CHUNK];
    inf__to_f32(u, pix(a, (size_t)r) + (size_t)c0 * inf__dsize(a->dt), a->dt, a->scale, m);
    inf__to_f32(w, pix(b, (size_t)r) + (size_t)c0 * inf__dsize(b->dt), b->dt, b->scale, m);
    add_f32(u, u, w, m);
    inf__from_f32(pix(dst, (size_t)r) + (size_t)c0 * inf__dsize(dst->dt), u, dst->dt, dst->scale, m);
}

void inf__add(const inf__view *dst0, const inf__view *a0, const inf__view *b0, int threads)
{
    assert(a0->n == b0->n && a0->h == b0->h && a0->w == b0->w && a0->c == b0->c && dst0->c == a0->c);
    const int dense = dst0->ld == dst0->c && a0->ld == a0->c && b0->ld == b0->c;
    const inf__view d = dense ? flat(dst0) : *dst0, av = dense ? flat(a0) : *a0, bv = dense ? flat(b0) : *b0;
    const long rows = (long)av.n * av.h * av.w;
    const int nt = team((size_t)rows * av.c, threads);
    add_ctx x = {.dst = &d, .a = &av, .b = &bv};
    if (av.dt == INF__F32 && bv.dt == INF__F32 && d.dt == INF__F32) {
        for_chunks(rows, av.c, nt, add_chunk_f32, &x);
    } else if (av.dt == INF__S8 && bv.dt == INF__S8 && d.dt == INF__S8) {
        x.fa = av.scale / d.scale, x.fb = bv.scale / d.scale;
        for_chunks(rows, av.c, nt, add_chunk_s8, &x);
    } else {
        for_chunks(rows, av.c, nt, add_chunk_any, &x);
    }
}

/* Max pooling k x k, stride 1, padding k/2 that never wins (only in-bounds
 * positions compete), as the engine's. The maximum of quantized values is
 * the quantized maximum when input and output share a scale, and a float
 * or bf16 maximum is exact, so every type is pooled as stored, on integer
 * keys that order as the values do: floats and bf16 are sign-magnitude, so
 * a negative one's magnitude bits are flipped (x ^ ((x >> top) & mask), its
 * own inverse). A NaN orders above infinity or below -infinity by its sign
 * bit, unlike the engine's NaN-wins rule; inference does not rely on it.
 * T: element type, V: a vector of them (32 bytes), KEY: the key transform. */
typedef int8_t v32s8 __attribute__((vector_size(32)));
typedef uint8_t v32u8 __attribute__((vector_size(32)));
typedef int16_t v16s16 __attribute__((vector_size(32)));

#define KEY_NONE(x) (x)
#define KEY16(x) ((x) ^ (((x) >> 15) & 0x7fff))
#define KEY32(x) ((x) ^ (((x) >> 31) & 0x7fffffff))

#define POOL_FN(NAME, T, V, KEY)                                                                                           static void NAME(const inf__view *dst, const inf__view *src, int k, long r)                                            {                                                                                                                          enum { W = 32 / sizeof(T) };                                                                                           const int h = src->h, w = src->w, c = src->c;                                                                          const int n = (int)(r / h), y = (int)(r % h);                                                                          const int y0 = y - k / 2 < 0 ? 0 : y - k / 2, y1 = y + k / 2 >= h ? h - 1 : y + k / 2;                                 for (int x = 0; x < w; x++) {                                                                                              const int x0 = x - k / 2 < 0 ? 0 : x - k / 2, x1 = x + k / 2 >= w ? w - 1 : x + k / 2;                                 T *o = (T *)pix(dst, ((size_t)n * h + y) * w + x);                                                                     int q = 0;                                                                                                             for (; q + W <= c; q += W) {                                                                                               V acc, t;                                                                                                              memcpy(&acc, (const T *)pix(src, ((size_t)n * h + y0) * w + x0) + q, 32);                                              acc = KEY(acc);                                                                                                        for (int yy = y0; yy <= y1; yy++)                                                                                          for (int xx = x0; xx <= x1; xx++) {                                                                                        memcpy(&t, (const T *)pix(src, ((size_t)n * h + yy) * w + xx) + q, 32);                                                t = KEY(t);                                                                                                            V m = (V)(t > acc);                                                                                                    acc = (t & m) | (acc & ~m);                                                                                        }                                                                                                                  acc = KEY(acc);                                                                                                        memcpy(o + q, &acc, 32);                                                                                           }                                                                                                                      for (; q < c; q++) {                                                                                                       T acc = KEY(((const T *)pix(src, ((size_t)n * h + y0) * w + x0))[q]);                                                  for (int yy = y0; yy <= y1; yy++)                                                                                          for (int xx = x0; xx <= x1; xx++) {                                                                                        T t = KEY(((const T *)pix(src, ((size_t)n * h + yy) * w + xx))[q]);                                                    if (t > acc) acc = t;                                                                                              }                                                                                                                  o[q] = KEY(acc);                                                                                                   }                                                                                                                  }                                                                                                                  }

POOL_FN(pool_s8, int8_t, v32s8, KEY_NONE)
POOL_FN(pool_u8, uint8_t, v32u8, KEY_NONE)
POOL_FN(pool_16, int16_t, v16s16, KEY16)
POOL_FN(pool_32, int32_t, v8i, KEY32)

void inf__maxpool(const inf__view *dst, const inf__view *src, int k, int threads)
{
    assert(same_repr(dst, src) && dst->c == src->c && k % 2 == 1);
    const long rows = (long)src->n * src->h;
    const int nt = team((size_t)rows * src->w * src->c * (size_t)k, threads);
    void (*fn)(const inf__view *, const inf__view *, int, long) = src->dt == INF__F32    ? pool_32
                                                                   : src->dt == INF__BF16 ? pool_16
                                                                   : src->dt == INF__S8   ? pool_s8
                                                                                          : pool_u8;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < rows; r++) fn(dst, src, k, r);
}

void inf__upsample2(const inf__view *dst, const inf__view *src, int threads)
{
    assert(same_repr(dst, src) && dst->h == 2 * src->h && dst->w == 2 * src->w && dst->c == src->c);
    const int h = src->h, w = src->w;
    const size_t bytes = (size_t)src->c * inf__dsize(src->dt);
    const long rows = (long)src->n * h;
    const int nt = team((size_t)rows * w * src->c * 4, threads);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / h), y = (int)(r % h);
        const size_t ds = (size_t)dst->ld * inf__dsize(dst->dt), ss = (size_t)src->ld * inf__dsize(src->dt);
        for (int dy = 0; dy < 2; dy++) {
            const size_t orow = ((size_t)n * 2 * h + 2 * y + dy) * 2 * w;
            /* even and odd output pixels of the row: each input pixel twice */
            copy_rows(pix(dst, orow), 2 * ds, pix(src, (size_t)r * w), ss, w, bytes);
            copy_rows(pix(dst, orow + 1), 2 * ds, pix(src, (size_t)r * w), ss, w, bytes);
        }
    }
}
