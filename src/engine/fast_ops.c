/*
 * Fast versions of the engine's non-convolution ops (batch norm, SiLU, the
 * two fused, sigmoid, add, concat, channel slices, max pooling, x2
 * upsampling): the contracts of the _ref functions in op_*.c, vectorised 8
 * floats at a time with GCC's vector extensions and run on OpenMP threads,
 * the runtime oneDNN already uses.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __FMA__
#include <immintrin.h>
#endif

#include "lupe/engine.h"

/* ---- threads ---------------------------------------------------------------
 * One parallel region per call, at most eng_get_threads() threads, fewer for
 * small tensors: a thread is worth waking only for FAST_MIN_WORK elements
 * or more (waking one costs a few microseconds, about what 16k SiLUs take).
 * Without -fopenmp everything runs on the calling thread. */
#define FAST_MAX_THREADS 64
#define FAST_MIN_WORK 16384

static int team_size(size_t work)
{
    int nt = eng_get_threads();
    if (nt > FAST_MAX_THREADS) nt = FAST_MAX_THREADS;
    const size_t most = work / FAST_MIN_WORK;
    if (nt < 1 || most < 1) return 1;
    return (size_t)nt > most ? (int)most : nt;
}

/* fn(ctx, t, nt) on every thread t of a team of nt (the team OpenMP gives,
 * which may be smaller than asked, e.g. 1 when called from a parallel region). */
typedef void (*team_fn)(void *ctx, int t, int nt);

static void run_team(int nt, team_fn fn, void *ctx)
{
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        fn(ctx, omp_get_thread_num(), omp_get_num_threads());
        return;
    }
#endif
    fn(ctx, 0, 1);
}

static void team_barrier(void)
{
#ifdef _OPENMP
#pragma omp barrier
#endif
}

/* Part t of nt of [0, n), cut at multiples of `align` (cache lines, vectors). */
static void part_of(size_t n, int t, int nt, size_t align, size_t *lo, size_t *hi)
{
    const size_t blocks = (n + align - 1) / align;
    const size_t a = blocks * (size_t)t / (size_t)nt * align, b = blocks * (size_t)(t + 1) / (size_t)nt * align;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

/* ---- 8-float vectors ---------------------------------------------------------
 * GCC vector extensions: one AVX register under -march=x86-64-v3, two SSE
 * registers in the debug builds, the same arithmetic either way. Loads and
 * stores go through memcpy (unaligned, no aliasing assumptions). A vector's
 * calling convention differs with and without AVX, so vectors are returned
 * only by always-inlined helpers (GCC's -Wpsabi warning about that is noise
 * here) and passed by pointer or through macros, never across a real call. */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
/* Halves, for accumulators that must stay in registers: GCC keeps a v8d
 * accumulator in memory across a loop under AVX2 (two registers wide). */
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
#define INL static inline __attribute__((always_inline))

INL v8f ld8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

INL v8d ld8d(const double *p)
{
    v8d v;
    memcpy(&v, p, sizeof v);
    return v;
}

INL v8f splat(float x)
{
    return (v8f){x, x, x, x, x, x, x, x};
}

/* Macros, not functions, where a vector is an argument (see above). */
#define st8(p, v)                                                                                                    \
    do {                                                                                                             \
        const v8f v8_ = (v);                                                                                         \
        memcpy((p), &v8_, sizeof v8_);                                                                               \
    } while (0)
#define st8d(p, v)                                                                                                   \
    do {                                                                                                             \
        const v8d v8_ = (v);                                                                                         \
        memcpy((p), &v8_, sizeof v8_);                                                                               \
    } while (0)
/* a * b + c. Where the target has FMA (release builds: -march=x86-64-v3)
 * as one fused multiply-add, rounded once; elsewhere (debug builds) as a
 * multiply and an add. Written out where it is wanted rather than left to
 * the compiler's contraction, so one expression computes the same bits in
 * every place it is used (the fused batch norm + SiLU computes dy in two
 * passes and relies on that). Results differ between the two kinds of
 * build by an ulp here and there, within every stated tolerance. */
#ifdef __FMA__
#define fma8(a, b, c) ((v8f)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#else
#define fma8(a, b, c) ((a) * (b) + (c))
#endif
#define cvt8d(v) __builtin_convertvector((v), v8d)
#define lo4d(v) __builtin_convertvector((v4f)__builtin_shufflevector((v), (v), 0, 1, 2, 3), v4d)
#define hi4d(v) __builtin_convertvector((v4f)__builtin_shufflevector((v), (v), 4, 5, 6, 7), v4d)
#define cvt8f(v) __builtin_convertvector((v), v8f)
/* mask ? a : b, lane by lane; mask lanes are all ones or all zeros. */
#define seli(mask, a, b) (((a) & (mask)) | ((b) & ~(mask)))
#define sel(mask, a, b) ((v8f)seli((mask), (v8i)(a), (v8i)(b)))

/* ---- exp and the logistic function ---------------------------------------
 * e^t for t <= 0 (the only exponent the logistic function needs): Cephes'
 * expf. t = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n*C1 is exact),
 * e^r from a degree-7 polynomial, 2^n put in the exponent field. Relative
 * error about 1 ulp over [-87.5, 0]; below -87.5 (e^t < 1.1e-38, the edge of
 * the normal range) the result is flushed to 0. A NaN stays a NaN. Measured
 * against the double reference on a dense sweep of [-87.5, 87.5], sigmoid
 * is within 2 ulp and SiLU within 3 ulp. */
INL v8f exp_nonpos(const v8f *pt)
{
    const v8i tiny = *pt < -87.5f;
    const v8f t = sel(tiny, splat(-87.5f), *pt);
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    v8f fn = fma8(t, splat(1.44269504088896341f), splat(magic));
    const v8u n = (v8u)fn - (v8u)splat(magic); /* n mod 2^32, in [-126, 0] */
    fn = fn - magic;
    const v8f r = fma8(fn, splat(2.12194440e-4f), fma8(fn, splat(-0.693359375f), t));
    v8f p = splat(1.9875691500e-4f);
    p = fma8(p, r, splat(1.3981999507e-3f));
    p = fma8(p, r, splat(8.3334519073e-3f));
    p = fma8(p, r, splat(4.1665795894e-2f));
    p = fma8(p, r, splat(1.6666665459e-1f));
    p = fma8(p, r, splat(5.0000001201e-1f));
    p = fma8(p, r * r, r) + 1.0f;
    const v8f scale = (v8f)((n + 127u) << 23);
    return sel(tiny, splat(0.0f), p * scale);
}

/* s = sigmoid(x) and 1 - s, each without cancellation: with e = exp(-|x|),
 * for x >= 0 s = 1/(1+e), 1 - s = e/(1+e); for x < 0 the other way round,
 * as eng__sigmoid does. Neither overflows for any x. */
INL void sigmoid8(const v8f *px, v8f *s, v8f *oms)
{
    const v8i pos = *px >= 0.0f;
    const v8f t = (v8f)((v8i)*px | (v8i)splat(-0.0f)); /* -|x| */
    const v8f e = exp_nonpos(&t);
    const v8f d = 1.0f / (1.0f + e), ed = e * d;
    *s = sel(pos, d, ed);
    *oms = sel(pos, ed, d);
}

/* ---- element-wise ops -----------------------------------------------------
 * Each op is a kernel on 8 elements; a range runs it over whole vectors and
 * then once over a zero-padded copy of the last 1..7 elements, so every
 * element goes through the same arithmetic wherever it lies. */
enum {
    EW_SILU_F, EW_SILU_B, EW_SILU_BS, EW_SIG_F, EW_SIG_B,
    EW_ADD_F, EW_ADD_B, EW_ADD_BS, EW_ADD_BSS, EW_ACC, EW_COPY
};

/* x * sigmoid(x), and dout * silu'(x) with silu'(x) = s (1 + x (1 - s)):
 * on registers, shared by SiLU and the fused batch norm + SiLU. */
INL v8f silu8(const v8f *x)
{
    v8f s, oms;
    sigmoid8(x, &s, &oms);
    return *x * s;
}

INL v8f silu_dy8(const v8f *dout, const v8f *x)
{
    v8f s, oms;
    sigmoid8(x, &s, &oms);
    return *dout * (s * fma8(*x, oms, splat(1.0f)));
}

INL void silu_f8(float *out, const float *in)
{
    const v8f x = ld8(in);
    st8(out, silu8(&x));
}

INL v8f silu_grad8(const float *dout, const float *in)
{
    const v8f x = ld8(in), dy = ld8(dout);
    return silu_dy8(&dy, &x);
}

INL void silu_b8(float *din, const float *dout, const float *in)
{
    st8(din, ld8(din) + silu_grad8(dout, in));
}

/* The overwriting form, for a first writer: din is not read. */
INL void silu_bs8(float *din, const float *dout, const float *in)
{
    st8(din, silu_grad8(dout, in));
}

INL void sig_f8(float *out, const float *in)
{
    const v8f x = ld8(in);
    v8f s, oms;
    sigmoid8(&x, &s, &oms);
    st8(out, s);
}

INL void sig_b8(float *din, const float *dout, const float *out)
{
    const v8f s = ld8(out);
    st8(din, ld8(din) + ld8(dout) * (s * (1.0f - s)));
}

INL void add_f8(float *out, const float *a, const float *b)
{
    st8(out, ld8(a) + ld8(b));
}

/* da += dout and db += dout, da and db distinct. */
INL void add_b8(float *da, float *db, const float *dout)
{
    const v8f d = ld8(dout);
    st8(da, ld8(da) + d);
    st8(db, ld8(db) + d);
}

/* Overwriting forms for first writers: da = dout, db += dout (or =). */
INL void add_bs8(float *da, float *db, const float *dout)
{
    const v8f d = ld8(dout);
    st8(da, d);
    st8(db, ld8(db) + d);
}

INL void add_bss8(float *da, float *db, const float *dout)
{
    const v8f d = ld8(dout);
    st8(da, d);
    st8(db, d);
}

INL void acc8(float *d, const float *s)
{
    st8(d, ld8(d) + ld8(s));
}

/* One kernel applied to elements [lo, hi): o is written (forward) or added
 * into (backward), a and b are read. */
INL void ew_kernel(int op, float *o, float *o2, const float *a, const float *b)
{
    switch (op) {
    case EW_SILU_F: silu_f8(o, a); break;
    case EW_SILU_B: silu_b8(o, a, b); break;
    case EW_SILU_BS: silu_bs8(o, a, b); break;
    case EW_SIG_F: sig_f8(o, a); break;
    case EW_SIG_B: sig_b8(o, a, b); break;
    case EW_ADD_F: add_f8(o, a, b); break;
    case EW_ADD_B: add_b8(o, o2, a); break;
    case EW_ADD_BS: add_bs8(o, o2, a); break;
    case EW_ADD_BSS: add_bss8(o, o2, a); break;
    case EW_ACC: acc8(o, a); break;
    case EW_COPY: st8(o, ld8(a)); break;
    }
}

/* The switch sits outside the loop: each case is its own loop once inlined. */
#define EW_LOOP(OP)                                                                                                  \
    do {                                                                                                             \
        for (; i + 8 <= hi; i += 8) ew_kernel(OP, o + i, o2 ? o2 + i : NULL, a + i, b ? b + i : NULL);               \
    } while (0)

static void ew_range(int op, float *o, float *o2, const float *a, const float *b, size_t lo, size_t hi)
{
    size_t i = lo;
    switch (op) {
    case EW_SILU_F: EW_LOOP(EW_SILU_F); break;
    case EW_SILU_B: EW_LOOP(EW_SILU_B); break;
    case EW_SILU_BS: EW_LOOP(EW_SILU_BS); break;
    case EW_SIG_F: EW_LOOP(EW_SIG_F); break;
    case EW_SIG_B: EW_LOOP(EW_SIG_B); break;
    case EW_ADD_F: EW_LOOP(EW_ADD_F); break;
    case EW_ADD_B: EW_LOOP(EW_ADD_B); break;
    case EW_ADD_BS: EW_LOOP(EW_ADD_BS); break;
    case EW_ADD_BSS: EW_LOOP(EW_ADD_BSS); break;
    case EW_ACC: EW_LOOP(EW_ACC); break;
    case EW_COPY: EW_LOOP(EW_COPY); break;
    }
    if (i == hi) return;
    const size_t k = hi - i;
    float to[8] = {0}, to2[8] = {0}, ta[8] = {0}, tb[8] = {0};
    memcpy(to, o + i, k * sizeof(float)); /* backward passes add into it */
    if (o2) memcpy(to2, o2 + i, k * sizeof(float));
    memcpy(ta, a + i, k * sizeof(float));
    if (b) memcpy(tb, b + i, k * sizeof(float));
    ew_kernel(op, to, to2, ta, tb);
    memcpy(o + i, to, k * sizeof(float));
    if (o2) memcpy(o2 + i, to2, k * sizeof(float));
}

typedef struct {
    int op;
    float *o, *o2;
    const float *a, *b;
    size_t n;
} ew_ctx;

static void ew_team(void *p, int t, int nt)
{
    const ew_ctx *c = p;
    size_t lo, hi;
    part_of(c->n, t, nt, 16, &lo, &hi);
    if (lo < hi) ew_range(c->op, c->o, c->o2, c->a, c->b, lo, hi);
}

static void ew_run(int op, float *o, float *o2, const float *a, const float *b, size_t n)
{
    ew_ctx c = {op, o, o2, a, b, n};
    run_team(team_size(n), ew_team, &c);
}

void eng_silu_forward_fast(float *out, const float *in, size_t n)
{
    assert(n == 0 || (out && in));
    if (n) ew_run(EW_SILU_F, out, NULL, in, NULL, n);
}

void eng_silu_backward_fast(float *din, const float *dout, const float *in, size_t n)
{
    assert(n == 0 || (din && dout && in));
    if (n) ew_run(EW_SILU_B, din, NULL, dout, in, n);
}

void eng_silu_backward_set_fast(float *din, const float *dout, const float *in, size_t n)
{
    assert(n == 0 || (din && dout && in));
    if (n) ew_run(EW_SILU_BS, din, NULL, dout, in, n);
}

void eng_sigmoid_forward_fast(float *out, const float *in, size_t n)
{
    assert(n == 0 || (out && in));
    if (n) ew_run(EW_SIG_F, out, NULL, in, NULL, n);
}

void eng_sigmoid_backward_fast(float *din, const float *dout, const float *out, size_t n)
{
    assert(n == 0 || (din && dout && out));
    if (n) ew_run(EW_SIG_B, din, NULL, dout, out, n);
}

void eng_add_forward_fast(float *out, const float *a, const float *b, size_t n)
{
    assert(n == 0 || (out && a && b));
    if (n) ew_run(EW_ADD_F, out, NULL, a, b, n);
}

/* The same buffer for da and db (x + x) gets dout twice, added one after
 * the other as the reference does, hence two sweeps then. */
void eng_add_backward_fast(float *da, float *db, const float *dout, size_t n)
{
    assert(n == 0 || dout);
    if (!n) return;
    if (da && db && da != db) {
        ew_run(EW_ADD_B, da, db, dout, NULL, n);
        return;
    }
    if (da) ew_run(EW_ACC, da, NULL, dout, NULL, n);
    if (db) ew_run(EW_ACC, db, NULL, dout, NULL, n);
}

/* set bit 0: da = dout, bit 1: db = dout, instead of adding; one sweep
 * for both sides. da == db (x + x) cannot be set: it is written twice. */
void eng_add_backward_set_fast(float *da, float *db, const float *dout, size_t n, unsigned set)
{
    assert(n == 0 || dout);
    assert(!(set && da && da == db));
    if (!n) return;
    if (!da) set &= 2u;
    if (!db) set &= 1u;
    if (!set) {
        eng_add_backward_fast(da, db, dout, n);
    } else if (da && db) {
        if (set == 3u)
            ew_run(EW_ADD_BSS, da, db, dout, NULL, n);
        else if (set == 1u)
            ew_run(EW_ADD_BS, da, db, dout, NULL, n);
        else
            ew_run(EW_ADD_BS, db, da, dout, NULL, n);
    } else {
        ew_run(EW_COPY, da ? da : db, NULL, dout, NULL, n);
    }
}

/* ---- batch normalization ---------------------------------------------------
 * Threads take blocks of rows; each sums its rows per channel in double on
 * its own stack, publishes a pointer to the sums, and after a barrier each
 * thread merges a slice of the channels over all threads in thread order
 * (so the result does not depend on timing). A second barrier, then every
 * thread normalizes its own rows. Channels go in chunks of BN_CHUNK so the
 * per-thread sums stay small (3 * 8 KiB of stack); the chunks run one after
 * the other in the same parallel region.
 *
 * Statistics in one pass, without cancellation: each channel's values are
 * shifted by K, the mean of its first BN_K_ROWS rows rounded to float, and
 * var = (S2 - S1^2/m) / m with S1 = sum (x - K) and S2 = sum (x - K)^2.
 * Cancellation scales the rounding error of S2 by 1 + (mean - K)^2 / var,
 * which with K a mean of 16 values is about 1 + 1/16, not up to m as with K
 * one value far out. That makes float sums good enough for S2: each group
 * of 8 channels is summed in float registers over BN_SUM_ROWS rows
 * (relative error about 1e-7, at worst 32 * 6e-8) and those partials in
 * double. S1, whose error is relative to a mean that may be near 0, is
 * summed in double registers. Both stay in registers across the block
 * rather than going through memory at every row. The reference's two
 * passes need one more read of the input.
 *
 * Batch norm + SiLU (silu = 1 in the contexts) is the same code with SiLU
 * applied to the normalized value in registers before it is stored. Its
 * backward pass recomputes y = (x - mean) * gamma * invstd + beta and
 * dy = dout * silu'(y) in the sums pass, summed as above in float blocks
 * (there is no cancellation to fear in gradient sums); the overwriting form
 * parks dy in din for the second pass, the accumulating form computes it
 * again there. */
#define BN_K_ROWS 16
#define BN_SUM_ROWS 32
#define BN_CHUNK 1024

typedef struct {
    float *out, *mean, *invstd;
    const float *in, *gamma, *beta;
    size_t m;
    int c;
    float eps;
    int silu;
    const double *part[FAST_MAX_THREADS]; /* each thread's S1 then S2 for the chunk */
    /* Per channel of the chunk: mean as float + remainder, gamma * invstd. */
    float mhi[BN_CHUNK], mlo[BN_CHUNK], scale[BN_CHUNK];
} bn_fwd_ctx;

/* The first k (1..7) floats at p in a vector with zeros after them, and the
 * first k lanes of v stored at p: the last partial vector of a row goes
 * through the same arithmetic as the whole ones. */
INL v8f ld_first(const float *p, int k)
{
    float t[8] = {0};
    memcpy(t, p, (size_t)k * sizeof(float));
    return ld8(t);
}

#define st_first(p, v, k)                                                                                            \
    do {                                                                                                             \
        float t_[8];                                                                                                 \
        st8(t_, (v));                                                                                                \
        memcpy((p), t_, (size_t)(k) * sizeof(float));                                                                \
    } while (0)

/* p[0, n) += the lanes of lo then hi (n <= 8). */
INL void add_lanes(double *p, const v4d *lo, const v4d *hi, int n)
{
    if (n == 8) {
        v4d a, b;
        memcpy(&a, p, sizeof a);
        memcpy(&b, p + 4, sizeof b);
        a += *lo, b += *hi;
        memcpy(p, &a, sizeof a);
        memcpy(p + 4, &b, sizeof b);
        return;
    }
    for (int l = 0; l < n; l++) p[l] += l < 4 ? (*lo)[l] : (*hi)[l - 4];
}

/* s[j] += x - k[j], q[j] += (x - k[j])^2 over rows [r0, r1) of channels
 * [c0, c0 + cn) of x[m, c], in float over blocks of BN_SUM_ROWS rows.
 * k is a chunk array (whole vectors can be read). */
INL void bn_shifted_block(double *s, double *q, const float *k, const float *x, size_t c, size_t r0, size_t r1, int n)
{
    const v8f kv = ld8(k);
    const v4d klo = lo4d(kv), khi = hi4d(kv);
    v4d slo = klo - klo, shi = slo;
    v8f qf = splat(0.0f);
    for (size_t r = r0; r < r1; r++) {
        const v8f xv = n == 8 ? ld8(x + r * c) : ld_first(x + r * c, n), d = xv - kv;
        slo += lo4d(xv) - klo; /* exact differences: a float minus a float, in double */
        shi += hi4d(xv) - khi;
        qf = fma8(d, d, qf);
    }
    add_lanes(s, &slo, &shi, n);
    const v4d qlo = lo4d(qf), qhi = hi4d(qf);
    add_lanes(q, &qlo, &qhi, n);
}

static void bn_shifted_sums(double *s, double *q, const float *k, const float *x, int c, int c0, int cn, size_t r0,
                            size_t r1)
{
    const int whole = cn / 8 * 8, tail = cn - whole;
    for (size_t rb = r0; rb < r1; rb += BN_SUM_ROWS) {
        const size_t re = r1 - rb < BN_SUM_ROWS ? r1 : rb + BN_SUM_ROWS;
        for (int j = 0; j < whole; j += 8) bn_shifted_block(s + j, q + j, k + j, x + c0 + j, (size_t)c, rb, re, 8);
        if (tail) bn_shifted_block(s + whole, q + whole, k + whole, x + c0 + whole, (size_t)c, rb, re, tail);
    }
}

/* out = ((x - mhi) - mlo) * scale + beta, or SiLU of it: the mean in two
 * floats keeps x - mean accurate when the mean is large against the spread.
 * mhi, mlo and scale are chunk arrays (BN_CHUNK floats, so whole vectors
 * can be read from them); beta is the caller's, cn floats. */
static void bn_normalize(float *out, const float *x, const float *mhi, const float *mlo, const float *scale,
                         const float *beta, int c, int c0, int cn, size_t r0, size_t r1)
{
    for (size_t r = r0; r < r1; r++) {
        const size_t at = r * (size_t)c + c0;
        int j = 0;
        for (; j + 8 <= cn; j += 8)
            st8(out + at + j, fma8((ld8(x + at + j) - ld8(mhi + j)) - ld8(mlo + j), ld8(scale + j), ld8(beta + j)));
        for (; j < cn; j++) out[at + j] = ((x[at + j] - mhi[j]) - mlo[j]) * scale[j] + beta[j];
    }
}

static void bn_normalize_silu(float *out, const float *x, const float *mhi, const float *mlo, const float *scale,
                              const float *beta, int c, int c0, int cn, size_t r0, size_t r1)
{
    for (size_t r = r0; r < r1; r++) {
        const size_t at = r * (size_t)c + c0;
        int j = 0;
        for (; j + 8 <= cn; j += 8) {
            const v8f y = fma8((ld8(x + at + j) - ld8(mhi + j)) - ld8(mlo + j), ld8(scale + j), ld8(beta + j));
            st8(out + at + j, silu8(&y));
        }
        if (j < cn) {
            const int k = cn - j;
            const v8f y =
                fma8((ld_first(x + at + j, k) - ld8(mhi + j)) - ld8(mlo + j), ld8(scale + j), ld_first(beta + j, k));
            st_first(out + at + j, silu8(&y), k);
        }
    }
}

static void bn_fwd_team(void *p, int t, int nt)
{
    bn_fwd_ctx *cx = p;
    /* S1 in acc[0, BN_CHUNK), S2 in acc[BN_CHUNK, 2 * BN_CHUNK). */
    _Alignas(64) double acc[2 * BN_CHUNK];
    _Alignas(64) float k[BN_CHUNK];
    double *s = acc, *q = acc + BN_CHUNK;
    const double md = (double)cx->m;
    const size_t kr = cx->m < BN_K_ROWS ? cx->m : BN_K_ROWS;
    size_t r0, r1;
    part_of(cx->m, t, nt, 1, &r0, &r1);
    for (int c0 = 0; c0 < cx->c; c0 += BN_CHUNK) {
        const int cn = cx->c - c0 < BN_CHUNK ? cx->c - c0 : BN_CHUNK;
        /* The shift: every thread computes the same K from the same rows. */
        for (int j = 0; j < cn; j++) {
            double sum = 0.0;
            for (size_t r = 0; r < kr; r++) sum += cx->in[r * (size_t)cx->c + c0 + j];
            k[j] = (float)(sum / (double)kr), s[j] = 0.0, q[j] = 0.0;
        }
        for (int j = cn; j < (cn + 7) / 8 * 8; j++) k[j] = 0.0f;
        bn_shifted_sums(s, q, k, cx->in, cx->c, c0, cn, r0, r1);
        cx->part[t] = acc;
        team_barrier();
        size_t j0, j1;
        part_of((size_t)cn, t, nt, 1, &j0, &j1);
        for (size_t j = j0; j < j1; j++) {
            double s1 = 0.0, s2 = 0.0;
            for (int i = 0; i < nt; i++) s1 += cx->part[i][j], s2 += cx->part[i][BN_CHUNK + j];
            double var = (s2 - s1 * s1 / md) / md;
            if (var < 0) var = 0;
            const double mu = (double)k[j] + s1 / md, is = 1.0 / sqrt(var + cx->eps);
            const int ch = c0 + (int)j;
            cx->mean[ch] = (float)mu;
            cx->invstd[ch] = (float)is;
            cx->mhi[j] = (float)mu;
            cx->mlo[j] = (float)(mu - (double)cx->mhi[j]);
            cx->scale[j] = (float)(is * cx->gamma[ch]);
        }
        team_barrier();
        (cx->silu ? bn_normalize_silu : bn_normalize)(cx->out, cx->in, cx->mhi, cx->mlo, cx->scale, cx->beta + c0,
                                                       cx->c, c0, cn, r0, r1);
        /* The next chunk's first barrier keeps its merge from overwriting
         * mhi, mlo and scale while a slower thread still uses them, and
         * every thread's acc from being reset while another merges it. */
    }
}

/* Works in place (out == in), as the reference: a chunk's statistics are
 * complete before any of its outputs is written. */
static void bn_forward_train(float *out, float *mean, float *invstd, const float *in, const float *gamma,
                             const float *beta, size_t m, int c, float eps, int silu)
{
    assert(out && mean && invstd && in && gamma && beta && m > 0 && c > 0);
    bn_fwd_ctx cx = {.out = out, .mean = mean, .invstd = invstd, .in = in, .gamma = gamma, .beta = beta, .m = m,
                     .c = c, .eps = eps, .silu = silu};
    run_team(team_size(m * (size_t)c), bn_fwd_team, &cx);
}

void eng_bn_forward_train_fast(float *out, float *mean, float *invstd, const float *in, const float *gamma,
                               const float *beta, size_t m, int c, float eps)
{
    bn_forward_train(out, mean, invstd, in, gamma, beta, m, c, eps, 0);
}

void eng_bn_silu_forward_train_fast(float *out, float *mean, float *invstd, const float *in, const float *gamma,
                                    const float *beta, size_t m, int c, float eps)
{
    bn_forward_train(out, mean, invstd, in, gamma, beta, m, c, eps, 1);
}

typedef struct {
    float *out;
    const float *in, *beta;
    size_t m;
    int c;
    int silu;
    float mhi[BN_CHUNK], mlo[BN_CHUNK], scale[BN_CHUNK];
} bn_infer_ctx;

static void bn_infer_team(void *p, int t, int nt)
{
    const bn_infer_ctx *cx = p;
    size_t r0, r1;
    part_of(cx->m, t, nt, 1, &r0, &r1);
    (cx->silu ? bn_normalize_silu : bn_normalize)(cx->out, cx->in, cx->mhi, cx->mlo, cx->scale, cx->beta, cx->c, 0,
                                                   cx->c, r0, r1);
}

static void bn_forward_infer(float *out, const float *in, const float *gamma, const float *beta, const float *rmean,
                             const float *rvar, size_t m, int c, float eps, int silu)
{
    assert(out && in && gamma && beta && rmean && rvar && c > 0);
    if (c > BN_CHUNK) { /* wider than any detector layer: not worth a second path */
        (silu ? eng_bn_silu_forward_infer_ref : eng_bn_forward_infer_ref)(out, in, gamma, beta, rmean, rvar, m, c,
                                                                          eps);
        return;
    }
    bn_infer_ctx cx = {.out = out, .in = in, .beta = beta, .m = m, .c = c, .silu = silu};
    for (int j = 0; j < c; j++) {
        cx.mhi[j] = rmean[j];
        cx.mlo[j] = 0.0f;
        cx.scale[j] = (float)(gamma[j] / sqrt((double)rvar[j] + eps));
    }
    run_team(team_size(m * (size_t)c), bn_infer_team, &cx);
}

void eng_bn_forward_infer_fast(float *out, const float *in, const float *gamma, const float *beta, const float *rmean,
                               const float *rvar, size_t m, int c, float eps)
{
    bn_forward_infer(out, in, gamma, beta, rmean, rvar, m, c, eps, 0);
}

void eng_bn_silu_forward_infer_fast(float *out, const float *in, const float *gamma, const float *beta,
                                    const float *rmean, const float *rvar, size_t m, int c, float eps)
{
    bn_forward_infer(out, in, gamma, beta, rmean, rvar, m, c, eps, 1);
}

/* Backward, as the reference: with xh = (x - mean) * invstd,
 *   dbeta += sum dy, dgamma += sum dy * xh,
 *   dx += gamma * invstd * (dy - sum dy / m - (x - mean) * invstd * sum(dy * xh) / m).
 * The sums use the same row blocks, per-thread double partials and ordered
 * merge as the forward pass; sum dy * (x - mean) is exact term by term in
 * double (a float difference times a float) and is scaled by invstd once.
 * With silu, dy = dout * silu'((x - mean) * a + beta), a = gamma * invstd. */
typedef struct {
    float *din, *dgamma, *dbeta;
    const float *dout, *in, *mean, *invstd, *gamma, *beta;
    size_t m;
    int c;
    int set;  /* write din instead of adding to it */
    int silu; /* dout is the gradient of silu(bn(x)) */
    const double *part[FAST_MAX_THREADS];
    /* dx += a * ((dy - b) - (x - mean) * g), per channel of the chunk. */
    float a[BN_CHUNK], b[BN_CHUNK], g[BN_CHUNK];
} bn_bwd_ctx;

static void bn_grad_sums(double *s, double *p, const float *mean, const float *dout, const float *x, int c, int c0,
                         int cn, size_t r0, size_t r1)
{
    for (size_t r = r0; r < r1; r++) {
        const size_t at = r * (size_t)c + c0;
        int j = 0;
        for (; j + 8 <= cn; j += 8) {
            const v8d dy = cvt8d(ld8(dout + at + j));
            st8d(s + j, ld8d(s + j) + dy);
            st8d(p + j, ld8d(p + j) + dy * (cvt8d(ld8(x + at + j)) - cvt8d(ld8(mean + j))));
        }
        for (; j < cn; j++) {
            const double dy = dout[at + j];
            s[j] += dy;
            p[j] += dy * ((double)x[at + j] - mean[j]);
        }
    }
}

/* dout * silu'(y), y = (x - mean) * a + beta, on 8 channels. */
INL v8f bn_silu_dy8(const v8f *dout, const v8f *x, const v8f *mean, const v8f *a, const v8f *beta)
{
    const v8f y = fma8(*x - *mean, *a, *beta);
    return silu_dy8(dout, &y);
}

/* The sums above of dy = dout * silu'(y), for rows [r0, r1) of channels
 * [c0, c0 + cn). mean and a are chunk arrays (whole vectors can be read),
 * beta the caller's (cn floats). dys, if not NULL, receives dy (the
 * overwriting backward keeps it in din for its second pass instead of
 * computing it again).
 *
 * Each group of 8 channels is summed in float registers over BN_SUM_ROWS
 * rows, then added to the double sums, as the forward statistics. */

INL void bn_silu_sums_block(double *s, double *p, float *dys, const float *mean, const float *a, const float *beta,
                            const float *dout, const float *x, size_t c, size_t r0, size_t r1, int k)
{
    const v8f mv = ld8(mean), av = ld8(a), bv = k == 8 ? ld8(beta) : ld_first(beta, k);
    v8f sf = splat(0.0f), pf = splat(0.0f);
    for (size_t r = r0; r < r1; r++) {
        const v8f xv = k == 8 ? ld8(x + r * c) : ld_first(x + r * c, k);
        const v8f dv = k == 8 ? ld8(dout + r * c) : ld_first(dout + r * c, k);
        const v8f dy = bn_silu_dy8(&dv, &xv, &mv, &av, &bv);
        sf += dy;
        pf += dy * (xv - mv);
        if (dys) {
            if (k == 8)
                st8(dys + r * c, dy);
            else
                st_first(dys + r * c, dy, k);
        }
    }
    const v4d slo = lo4d(sf), shi = hi4d(sf), plo = lo4d(pf), phi = hi4d(pf);
    add_lanes(s, &slo, &shi, k);
    add_lanes(p, &plo, &phi, k);
}

static void bn_silu_grad_sums(double *s, double *p, float *dys, const float *mean, const float *a, const float *beta,
                              const float *dout, const float *x, int c, int c0, int cn, size_t r0, size_t r1)
{
    const int whole = cn / 8 * 8, k = cn - whole;
    const size_t cs = (size_t)c;
    for (size_t rb = r0; rb < r1; rb += BN_SUM_ROWS) {
        const size_t re = r1 - rb < BN_SUM_ROWS ? r1 : rb + BN_SUM_ROWS;
        for (int j = 0; j < whole; j += 8)
            bn_silu_sums_block(s + j, p + j, dys ? dys + c0 + j : NULL, mean + j, a + j, beta + j, dout + c0 + j,
                               x + c0 + j, cs, rb, re, 8);
        if (k)
            bn_silu_sums_block(s + whole, p + whole, dys ? dys + c0 + whole : NULL, mean + whole, a + whole,
                               beta + whole, dout + c0 + whole, x + c0 + whole, cs, rb, re, k);
    }
}

static void bn_grad_apply(float *din, const float *dout, const float *x, const float *mean, const float *a,
                          const float *b, const float *g, int c, int c0, int cn, size_t r0, size_t r1, int set)
{
    for (size_t r = r0; r < r1; r++) {
        const size_t at = r * (size_t)c + c0;
        int j = 0;
        for (; j + 8 <= cn; j += 8) {
            const v8f t = ld8(a + j) * ((ld8(dout + at + j) - ld8(b + j)) - (ld8(x + at + j) - ld8(mean + j)) * ld8(g + j));
            st8(din + at + j, set ? t : ld8(din + at + j) + t);
        }
        for (; j < cn; j++) {
            const float t = a[j] * ((dout[at + j] - b[j]) - (x[at + j] - mean[j]) * g[j]);
            din[at + j] = set ? t : din[at + j] + t;
        }
    }
}

/* din = or += a * ((dy - b) - (x - mean) * g), dy recomputed; with set,
 * din holds dy from the sums pass and is overwritten, which is then
 * bn_grad_apply with din as dout. */
INL void bn_silu_apply8(float *din, const v8f *xv, const v8f *dv, const v8f *mv, const v8f *av, const v8f *bv,
                        const float *b, const float *g, int k)
{
    const v8f dy = bn_silu_dy8(dv, xv, mv, av, bv);
    const v8f t = *av * ((dy - ld8(b)) - (*xv - *mv) * ld8(g));
    if (k == 8)
        st8(din, ld8(din) + t);
    else
        st_first(din, ld_first(din, k) + t, k);
}

static void bn_silu_grad_apply(float *din, const float *dout, const float *x, const float *mean, const float *beta,
                               const float *a, const float *b, const float *g, int c, int c0, int cn, size_t r0,
                               size_t r1, int set)
{
    if (set) {
        bn_grad_apply(din, din, x, mean, a, b, g, c, c0, cn, r0, r1, 1);
        return;
    }
    const int whole = cn / 8 * 8, k = cn - whole;
    for (size_t r = r0; r < r1; r++) {
        const size_t at = r * (size_t)c + c0;
        for (int j = 0; j < whole; j += 8) {
            const v8f xv = ld8(x + at + j), dv = ld8(dout + at + j), bv = ld8(beta + j);
            const v8f mv = ld8(mean + j), av = ld8(a + j);
            bn_silu_apply8(din + at + j, &xv, &dv, &mv, &av, &bv, b + j, g + j, 8);
        }
        if (k) {
            const v8f xv = ld_first(x + at + whole, k), dv = ld_first(dout + at + whole, k);
            const v8f bv = ld_first(beta + whole, k), mv = ld8(mean + whole), av = ld8(a + whole);
            bn_silu_apply8(din + at + whole, &xv, &dv, &mv, &av, &bv, b + whole, g + whole, k);
        }
    }
}

static void bn_bwd_team(void *p, int t, int nt)
{
    bn_bwd_ctx *cx = p;
    _Alignas(64) double acc[2 * BN_CHUNK]; /* sum dy, then sum dy * (x - mean) */
    /* For silu, the chunk's mean and gamma * invstd as whole vectors; every
     * thread computes the same values (a[] is written during the merge). */
    _Alignas(64) float mean[BN_CHUNK], sc[BN_CHUNK];
    double *s = acc, *q = acc + BN_CHUNK;
    const double md = (double)cx->m;
    size_t r0, r1;
    part_of(cx->m, t, nt, 1, &r0, &r1);
    for (int c0 = 0; c0 < cx->c; c0 += BN_CHUNK) {
        const int cn = cx->c - c0 < BN_CHUNK ? cx->c - c0 : BN_CHUNK;
        for (int j = 0; j < cn; j++) s[j] = 0.0, q[j] = 0.0;
        if (cx->silu) {
            for (int j = 0; j < cn; j++)
                mean[j] = cx->mean[c0 + j], sc[j] = (float)(cx->gamma[c0 + j] * (double)cx->invstd[c0 + j]);
            for (int j = cn; j < (cn + 7) / 8 * 8; j++) mean[j] = 0.0f, sc[j] = 0.0f;
            bn_silu_grad_sums(s, q, cx->set ? cx->din : NULL, mean, sc, cx->beta + c0, cx->dout, cx->in, cx->c, c0,
                              cn, r0, r1);
        } else {
            bn_grad_sums(s, q, cx->mean + c0, cx->dout, cx->in, cx->c, c0, cn, r0, r1);
        }
        cx->part[t] = acc;
        team_barrier();
        size_t j0, j1;
        part_of((size_t)cn, t, nt, 1, &j0, &j1);
        for (size_t j = j0; j < j1; j++) {
            double sdy = 0.0, sdx = 0.0;
            for (int i = 0; i < nt; i++) sdy += cx->part[i][j], sdx += cx->part[i][BN_CHUNK + j];
            const int ch = c0 + (int)j;
            const double is = cx->invstd[ch], sdyxh = sdx * is;
            if (cx->dbeta) cx->dbeta[ch] += (float)sdy;
            if (cx->dgamma) cx->dgamma[ch] += (float)sdyxh;
            cx->a[j] = (float)(cx->gamma[ch] * is);
            cx->b[j] = (float)(sdy / md);
            cx->g[j] = (float)(sdyxh * is / md);
        }
        /* Also without din: no thread may reset its sums for the next chunk
         * while another still merges them. */
        team_barrier();
        if (!cx->din) continue;
        if (cx->silu)
            bn_silu_grad_apply(cx->din, cx->dout, cx->in, mean, cx->beta + c0, cx->a, cx->b, cx->g, cx->c, c0, cn, r0,
                               r1, cx->set);
        else
            bn_grad_apply(cx->din, cx->dout, cx->in, cx->mean + c0, cx->a, cx->b, cx->g, cx->c, c0, cn, r0, r1,
                          cx->set);
    }
}

static void bn_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                        const float *mean, const float *invstd, const float *gamma, const float *beta, size_t m, int c,
                        int set, int silu)
{
    assert(dout && in && mean && invstd && gamma && (beta || !silu) && m > 0 && c > 0);
    if (!din && !dgamma && !dbeta) return;
    bn_bwd_ctx cx = {.din = din, .dgamma = dgamma, .dbeta = dbeta, .dout = dout, .in = in, .mean = mean,
                     .invstd = invstd, .gamma = gamma, .beta = beta, .m = m, .c = c, .set = set, .silu = silu};
    run_team(team_size(m * (size_t)c), bn_bwd_team, &cx);
}

void eng_bn_backward_fast(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                          const float *mean, const float *invstd, const float *gamma, size_t m, int c)
{
    bn_backward(din, dgamma, dbeta, dout, in, mean, invstd, gamma, NULL, m, c, 0, 0);
}

void eng_bn_backward_set_fast(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                              const float *mean, const float *invstd, const float *gamma, size_t m, int c)
{
    bn_backward(din, dgamma, dbeta, dout, in, mean, invstd, gamma, NULL, m, c, 1, 0);
}

void eng_bn_silu_backward_fast(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                               const float *mean, const float *invstd, const float *gamma, const float *beta, size_t m,
                               int c)
{
    bn_backward(din, dgamma, dbeta, dout, in, mean, invstd, gamma, beta, m, c, 0, 1);
}

void eng_bn_silu_backward_set_fast(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                                   const float *mean, const float *invstd, const float *gamma, const float *beta,
                                   size_t m, int c)
{
    bn_backward(din, dgamma, dbeta, dout, in, mean, invstd, gamma, beta, m, c, 1, 1);
}

/* ---- concat ----------------------------------------------------------------
 * Threads take blocks of rows; each row is k copies (or additions). A row of
 * one input is often 16 to 64 floats: copied inline, 8 at a time, since a
 * call to memcpy per row costs as much as the copy. */
INL void copy_row(float *dst, const float *src, size_t n)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8) st8(dst + j, ld8(src + j));
    if (j < n) memcpy(dst + j, src + j, (n - j) * sizeof(float));
}

typedef struct {
    float *out;
    const float *dout;
    const float *const *ins;
    float *const *dins;
    const int *cs;
    int k;
    unsigned set; /* bit i: overwrite dins[i] instead of adding */
    size_t m, ct;
} cat_ctx;

static void cat_fwd_team(void *p, int t, int nt)
{
    const cat_ctx *cx = p;
    size_t r0, r1;
    part_of(cx->m, t, nt, 1, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        size_t off = 0;
        for (int i = 0; i < cx->k; i++) {
            const size_t ci = (size_t)cx->cs[i];
            copy_row(cx->out + r * cx->ct + off, cx->ins[i] + r * ci, ci);
            off += ci;
        }
    }
}

static void cat_bwd_team(void *p, int t, int nt)
{
    const cat_ctx *cx = p;
    size_t r0, r1;
    part_of(cx->m, t, nt, 1, &r0, &r1);
    size_t off = 0;
    for (int i = 0; i < cx->k; i++) {
        const size_t ci = (size_t)cx->cs[i];
        if (cx->dins[i] && ci && (cx->set >> i & 1u))
            for (size_t r = r0; r < r1; r++)
                copy_row(cx->dins[i] + r * ci, cx->dout + r * cx->ct + off, ci);
        else if (cx->dins[i] && ci)
            for (size_t r = r0; r < r1; r++) /* rows of one input follow each other: one range */
                ew_range(EW_ACC, cx->dins[i] + r * ci, NULL, cx->dout + r * cx->ct + off, NULL, 0, ci);
        off += ci;
    }
}

static size_t cat_channels(const int *cs, int k)
{
    size_t t = 0;
    for (int i = 0; i < k; i++) {
        assert(cs[i] >= 0);
        t += (size_t)cs[i];
    }
    return t;
}

void eng_concat_forward_fast(float *out, const float *const *ins, const int *cs, int k, size_t m)
{
    assert(out && ins && cs && k > 0);
    cat_ctx cx = {.out = out, .ins = ins, .cs = cs, .k = k, .m = m, .ct = cat_channels(cs, k)};
    run_team(team_size(m * cx.ct), cat_fwd_team, &cx);
}

void eng_concat_backward_fast(float *const *dins, const int *cs, int k, const float *dout, size_t m)
{
    eng_concat_backward_set_fast(dins, 0u, cs, k, dout, m);
}

void eng_concat_backward_set_fast(float *const *dins, unsigned set, const int *cs, int k, const float *dout, size_t m)
{
    assert(dins && cs && dout && k > 0 && (k <= 32 || !set));
    cat_ctx cx = {.dout = dout, .dins = dins, .cs = cs, .k = k, .set = set, .m = m, .ct = cat_channels(cs, k)};
    run_team(team_size(m * cx.ct), cat_bwd_team, &cx);
}

/* ---- channel slices ----------------------------------------------------------
 * Threads take blocks of rows; a row is one copy or one vector addition. */
typedef struct {
    float *o;
    const float *i;
    size_t m, ci, c0, co;
    int op; /* 0: forward copy, 1: backward add, 2: backward set */
} slice_ctx;

static void slice_team(void *p, int t, int nt)
{
    const slice_ctx *cx = p;
    size_t r0, r1;
    part_of(cx->m, t, nt, 1, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        if (cx->op == 0)
            copy_row(cx->o + r * cx->co, cx->i + r * cx->ci + cx->c0, cx->co);
        else if (cx->op == 2)
            copy_row(cx->o + r * cx->ci + cx->c0, cx->i + r * cx->co, cx->co);
        else
            ew_range(EW_ACC, cx->o + r * cx->ci + cx->c0, NULL, cx->i + r * cx->co, NULL, 0, cx->co);
    }
}

static void slice_run(int op, float *o, const float *i, size_t m, int ci, int c0, int co)
{
    assert(o && i && ci > 0 && c0 >= 0 && co > 0 && c0 + co <= ci);
    slice_ctx cx = {.o = o, .i = i, .m = m, .ci = (size_t)ci, .c0 = (size_t)c0, .co = (size_t)co, .op = op};
    run_team(team_size(m * (size_t)co), slice_team, &cx);
}

void eng_slice_forward_fast(float *out, const float *in, size_t m, int ci, int c0, int co)
{
    slice_run(0, out, in, m, ci, c0, co);
}

void eng_slice_backward_fast(float *din, const float *dout, size_t m, int ci, int c0, int co)
{
    slice_run(1, din, dout, m, ci, c0, co);
}

void eng_slice_backward_set_fast(float *din, const float *dout, size_t m, int ci, int c0, int co)
{
    slice_run(2, din, dout, m, ci, c0, co);
}

/* ---- max pooling -------------------------------------------------------------
 * Work items are (image, group of 8 channels): channels never share an
 * input element, so the backward pass's scatter-adds of different items
 * never meet and need no atomics. Within an item every output runs the
 * reference's scan (ky, then kx; first maximum wins; a NaN wins and stays)
 * on 8 channels at once, so outputs and gradients are bit-identical to it.
 * The last group of c % 8 channels goes through the same code on lanes
 * padded with copies of its first channel, whose results are dropped. */
typedef struct {
    float *out, *din;
    const float *in, *dout;
    int n, h, w, c, k;
} pool_ctx;

/* Channels ch .. ch + 7 of pixel at (8 loaded, the lanes past c repeating
 * lane 0: they are dropped by the caller). */
INL v8f ld_lanes(const float *p, int lanes)
{
    if (lanes == 8) return ld8(p);
    float t[8];
    for (int l = 0; l < 8; l++) t[l] = p[l < lanes ? l : 0];
    return ld8(t);
}

static void pool_item(const pool_ctx *cx, int b, int ch, int lanes)
{
    const int h = cx->h, w = cx->w, c = cx->c, r = cx->k / 2;
    const size_t img = (size_t)b * h * w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const int y0 = y - r < 0 ? 0 : y - r, y1 = y + r >= h ? h - 1 : y + r;
            const int x0 = x - r < 0 ? 0 : x - r, x1 = x + r >= w ? w - 1 : x + r;
            v8f best = ld_lanes(cx->in + (img + (size_t)y0 * w + x0) * c + ch, lanes);
            v8i at = {0};
            at += y0 * w + x0;
            for (int iy = y0; iy <= y1; iy++)
                for (int ix = x0; ix <= x1; ix++) {
                    const v8f v = ld_lanes(cx->in + (img + (size_t)iy * w + ix) * c + ch, lanes);
                    const v8i take = ((v > best) | (v != v)) & (best == best);
                    best = sel(take, v, best);
                    at = seli(take, (v8i){0} + (iy * w + ix), at);
                }
            const size_t o = (img + (size_t)y * w + x) * c + ch;
            if (cx->out) {
                if (lanes == 8) {
                    st8(cx->out + o, best);
                } else {
                    for (int l = 0; l < lanes; l++) cx->out[o + l] = best[l];
                }
            } else {
                for (int l = 0; l < lanes; l++) cx->din[(img + (size_t)at[l]) * c + ch + l] += cx->dout[o + l];
            }
        }
}

static void pool_team(void *p, int t, int nt)
{
    const pool_ctx *cx = p;
    const int groups = (cx->c + 7) / 8;
    size_t i0, i1;
    part_of((size_t)cx->n * groups, t, nt, 1, &i0, &i1);
    for (size_t i = i0; i < i1; i++) {
        const int b = (int)(i / groups), ch = (int)(i % groups) * 8;
        pool_item(cx, b, ch, cx->c - ch < 8 ? cx->c - ch : 8);
    }
}

void eng_maxpool_forward_fast(float *out, const float *in, int n, int h, int w, int c, int k)
{
    assert(out && in && n > 0 && h > 0 && w > 0 && c > 0 && k > 0 && k % 2 == 1);
    pool_ctx cx = {.out = out, .in = in, .n = n, .h = h, .w = w, .c = c, .k = k};
    run_team(team_size((size_t)n * h * w * c * k), pool_team, &cx);
}

void eng_maxpool_backward_fast(float *din, const float *dout, const float *in, int n, int h, int w, int c, int k)
{
    assert(din && dout && in && n > 0 && h > 0 && w > 0 && c > 0 && k > 0 && k % 2 == 1);
    pool_ctx cx = {.din = din, .in = in, .dout = dout, .n = n, .h = h, .w = w, .c = c, .k = k};
    run_team(team_size((size_t)n * h * w * c * k), pool_team, &cx);
}

/* ---- nearest x2 upsampling -------------------------------------------------
 * Threads take blocks of input rows (image, y). Forward: each input pixel
 * is copied twice into output row 2y, which is then copied to row 2y + 1.
 * Backward: each input pixel gets the sum of its 2x2 block, added in double
 * in the reference's order, so the result is bit-identical to it. */
typedef struct {
    float *out;
    const float *in;
    int n, h, w, c;
    int set; /* backward: overwrite din */
} up_ctx;

static void up_fwd_team(void *p, int t, int nt)
{
    const up_ctx *cx = p;
    const size_t c = (size_t)cx->c, ow = 2 * (size_t)cx->w, orow = ow * c;
    size_t i0, i1;
    part_of((size_t)cx->n * cx->h, t, nt, 1, &i0, &i1);
    for (size_t i = i0; i < i1; i++) { /* i = b * h + y; output rows 2i and 2i + 1 */
        const float *src = cx->in + i * cx->w * c;
        float *dst = cx->out + 2 * i * orow;
        for (int x = 0; x < cx->w; x++) {
            memcpy(dst + 2 * x * c, src + x * c, c * sizeof(float));
            memcpy(dst + (2 * x + 1) * c, src + x * c, c * sizeof(float));
        }
        memcpy(dst + orow, dst, orow * sizeof(float));
    }
}

static void up_bwd_team(void *p, int t, int nt)
{
    const up_ctx *cx = p; /* out is din, in is dout here */
    const size_t c = (size_t)cx->c, orow = 2 * (size_t)cx->w * c;
    size_t i0, i1;
    part_of((size_t)cx->n * cx->h, t, nt, 1, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        for (int x = 0; x < cx->w; x++) {
            float *d = cx->out + (i * cx->w + x) * c;
            const float *t0 = cx->in + 2 * i * orow + 2 * x * c, *t1 = t0 + orow;
            size_t j = 0;
            for (; j + 8 <= c; j += 8) {
                /* 0.0 + first term, as the reference's s = 0.0; s += ...: a
                 * -0.0 gradient then gives the same zero. */
                const v8d s = (((0.0 + cvt8d(ld8(t0 + j))) + cvt8d(ld8(t0 + c + j))) + cvt8d(ld8(t1 + j))) +
                              cvt8d(ld8(t1 + c + j));
                st8(d + j, cx->set ? cvt8f(s) : ld8(d + j) + cvt8f(s));
            }
            for (; j < c; j++) {
                const float s = (float)((((0.0 + t0[j]) + t0[c + j]) + t1[j]) + t1[c + j]);
                d[j] = cx->set ? s : d[j] + s;
            }
        }
}

void eng_upsample2_forward_fast(float *out, const float *in, int n, int h, int w, int c)
{
    assert(out && in && n > 0 && h > 0 && w > 0 && c > 0);
    up_ctx cx = {.out = out, .in = in, .n = n, .h = h, .w = w, .c = c};
    run_team(team_size((size_t)n * h * w * c * 4), up_fwd_team, &cx);
}

static void up_backward(float *din, const float *dout, int n, int h, int w, int c, int set)
{
    assert(din && dout && n > 0 && h > 0 && w > 0 && c > 0);
    up_ctx cx = {.out = din, .in = dout, .n = n, .h = h, .w = w, .c = c, .set = set};
    run_team(team_size((size_t)n * h * w * c * 4), up_bwd_team, &cx);
}

void eng_upsample2_backward_fast(float *din, const float *dout, int n, int h, int w, int c)
{
    up_backward(din, dout, n, h, w, c, 0);
}

void eng_upsample2_backward_set_fast(float *din, const float *dout, int n, int h, int w, int c)
{
    up_backward(din, dout, n, h, w, c, 1);
}
