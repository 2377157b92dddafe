/*
 * Engine benchmark (`make bench`): the machine's fp32 peak measured with an
 * FMA loop, then every convolution shape of YOLOv8n at 480x480, batch 16,
 * timed through the fast (oneDNN) path forward, backward-data and
 * backward-weights, as GFLOP/s and as a fraction of that peak; bf16 too
 * where the CPU has it. It prints figures only: nothing here asserts on time.
 */
#include <immintrin.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lupe/engine.h"

/* ---- options ------------------------------------------------------------ */
typedef struct opts {
    int batch, size, reps, threads, bf16, nc;
} opts;

static void usage(void)
{
    fprintf(stderr, "usage: bench_engine [--batch N] [--size S] [--reps R] [--threads T] [--no-bf16] [--quick]\n"
                    "  defaults: batch 16, size 480, 7 timed runs after one warm-up, all cores\n"
                    "  --quick: batch 2, 3 runs (a smoke test of the program)\n");
}

static int parse_opts(int argc, char **argv, opts *o)
{
    *o = (opts){.batch = 16, .size = 480, .reps = 7, .threads = 0, .bf16 = 1, .nc = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *dst = !strcmp(a, "--batch") ? &o->batch : !strcmp(a, "--size") ? &o->size
                   : !strcmp(a, "--reps") ? &o->reps : !strcmp(a, "--threads") ? &o->threads : NULL;
        if (dst) {
            if (i + 1 >= argc || (*dst = atoi(argv[++i])) < (dst == &o->threads ? 0 : 1)) return -1;
        } else if (!strcmp(a, "--no-bf16")) {
            o->bf16 = 0;
        } else if (!strcmp(a, "--quick")) {
            o->batch = 2, o->reps = 3;
        } else {
            return -1;
        }
    }
    return o->size % 32 ? -1 : 0; /* five stride-2 stages */
}

static double median(double *t, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort: n is small */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1], t[j - 1] = x;
        }
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* ---- peak: independent FMA chains --------------------------------------
 * acc = acc * m + b with m just under 1 converges (no overflow, no
 * denormals); 24 independent accumulators cover 4-cycle latency on two
 * FMA ports with room to spare and still fit the 32 vector registers. */
#define NACC 24
#define FMA24(f)                                                                                                       \
    a0 = f(a0, m, b), a1 = f(a1, m, b), a2 = f(a2, m, b), a3 = f(a3, m, b), a4 = f(a4, m, b), a5 = f(a5, m, b),       \
    a6 = f(a6, m, b), a7 = f(a7, m, b), a8 = f(a8, m, b), a9 = f(a9, m, b), a10 = f(a10, m, b), a11 = f(a11, m, b),   \
    a12 = f(a12, m, b), a13 = f(a13, m, b), a14 = f(a14, m, b), a15 = f(a15, m, b), a16 = f(a16, m, b),               \
    a17 = f(a17, m, b), a18 = f(a18, m, b), a19 = f(a19, m, b), a20 = f(a20, m, b), a21 = f(a21, m, b),               \
    a22 = f(a22, m, b), a23 = f(a23, m, b)
#define SUM24 (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15 + a16 + a17 + \
               a18 + a19 + a20 + a21 + a22 + a23)

static volatile float sink;

__attribute__((target("avx512f"))) static void fma_loop_512(long iters)
{
    __m512 m = _mm512_set1_ps(0.9999999f), b = _mm512_set1_ps(1e-7f);
    /* Distinct starting values: equal ones would let the compiler merge
     * the chains into one (it did: 4x the true peak). */
#define S(i) _mm512_set1_ps(0.5f + 0.01f * (i))
    __m512 a0 = S(0), a1 = S(1), a2 = S(2), a3 = S(3), a4 = S(4), a5 = S(5), a6 = S(6), a7 = S(7), a8 = S(8),
           a9 = S(9), a10 = S(10), a11 = S(11), a12 = S(12), a13 = S(13), a14 = S(14), a15 = S(15), a16 = S(16),
           a17 = S(17), a18 = S(18), a19 = S(19), a20 = S(20), a21 = S(21), a22 = S(22), a23 = S(23);
#undef S
    for (long i = 0; i < iters; i++) FMA24(_mm512_fmadd_ps);
    __m512 s = SUM24;
    sink = _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static void fma_loop_256(long iters)
{
    /* 16 registers only: 12 accumulators, still 6 per port. */
    __m256 m = _mm256_set1_ps(0.9999999f), b = _mm256_set1_ps(1e-7f);
#define S(i) _mm256_set1_ps(0.5f + 0.01f * (i))
    __m256 a0 = S(0), a1 = S(1), a2 = S(2), a3 = S(3), a4 = S(4), a5 = S(5), a6 = S(6), a7 = S(7), a8 = S(8),
           a9 = S(9), a10 = S(10), a11 = S(11);
#undef S
    for (long i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, b), a1 = _mm256_fmadd_ps(a1, m, b), a2 = _mm256_fmadd_ps(a2, m, b);
        a3 = _mm256_fmadd_ps(a3, m, b), a4 = _mm256_fmadd_ps(a4, m, b), a5 = _mm256_fmadd_ps(a5, m, b);
        a6 = _mm256_fmadd_ps(a6, m, b), a7 = _mm256_fmadd_ps(a7, m, b), a8 = _mm256_fmadd_ps(a8, m, b);
        a9 = _mm256_fmadd_ps(a9, m, b), a10 = _mm256_fmadd_ps(a10, m, b), a11 = _mm256_fmadd_ps(a11, m, b);
    }
    __m256 s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    float v[8];
    _mm256_storeu_ps(v, s);
    sink = v[0] + v[7];
}

static int have_avx512;

/* FLOPs of one loop call with iters iterations. */
static double loop_flops(long iters)
{
    return have_avx512 ? (double)iters * NACC * 16 * 2 : (double)iters * 12 * 8 * 2;
}

typedef struct peak_arg {
    long iters;
    pthread_barrier_t *start;
} peak_arg;

static void *peak_thread(void *p)
{
    peak_arg *a = p;
    pthread_barrier_wait(a->start);
    if (have_avx512) fma_loop_512(a->iters);
    else fma_loop_256(a->iters);
    return NULL;
}

/* GFLOP/s of nthr threads running the loop at once; best of five. */
static double peak_gflops(int nthr)
{
    const long iters = have_avx512 ? 20000000 : 40000000; /* ~0.3 s at 3 GHz */
    double best = 0;
    pthread_t th[256];
    peak_arg a;
    pthread_barrier_t start;
    if (nthr > 256) nthr = 256;
    for (int rep = 0; rep < 5; rep++) {
        pthread_barrier_init(&start, NULL, (unsigned)nthr + 1);
        a = (peak_arg){iters, &start};
        for (int i = 0; i < nthr; i++) pthread_create(&th[i], NULL, peak_thread, &a);
        pthread_barrier_wait(&start);
        double t0 = lupe_time_mono();
        for (int i = 0; i < nthr; i++) pthread_join(th[i], NULL);
        double g = loop_flops(iters) * nthr / (lupe_time_mono() - t0) / 1e9;
        if (g > best) best = g;
        pthread_barrier_destroy(&start);
    }
    return best;
}

/* ---- YOLOv8n's convolutions -------------------------------------------
 * Width 0.25, depth 0.33, one class (lupe's scratch detector), at S x S:
 * every convolution of the backbone, the PAN neck and the detect head,
 * grouped by shape. h is the input size as a fraction S/div. The DFL's
 * fixed 1x1 convolution is left out (no weights to learn, 16 -> 1). */
typedef struct cshape {
    const char *name;
    int div, c, o, k, s, count, bias;
} cshape;

static const cshape yolo[] = {
    {"stem", 1, 3, 16, 3, 2, 1, 0},
    {"down 16->32", 2, 16, 32, 3, 2, 1, 0},
    {"c2f@120 cv1", 4, 32, 32, 1, 1, 1, 0},
    {"c2f@120 3x3", 4, 16, 16, 3, 1, 2, 0},
    {"c2f@120 cv2", 4, 48, 32, 1, 1, 1, 0},
    {"down 32->64", 4, 32, 64, 3, 2, 1, 0},
    {"c2f@60 cv1", 8, 64, 64, 1, 1, 1, 0},
    {"c2f@60 3x3", 8, 32, 32, 3, 1, 6, 0}, /* 4 backbone, 2 neck */
    {"c2f@60 cv2", 8, 128, 64, 1, 1, 1, 0},
    {"down 64->128", 8, 64, 128, 3, 2, 1, 0},
    {"c2f@30 cv1", 16, 128, 128, 1, 1, 1, 0},
    {"c2f@30 3x3", 16, 64, 64, 3, 1, 10, 0}, /* 4 backbone, 4 neck, 2 head */
    {"c2f@30 cv2", 16, 256, 128, 1, 1, 1, 0},
    {"down 128->256", 16, 128, 256, 3, 2, 1, 0},
    {"c2f@15 cv1", 32, 256, 256, 1, 1, 1, 0},
    {"c2f@15 3x3", 32, 128, 128, 3, 1, 4, 0},
    {"c2f@15 1x1 384->256", 32, 384, 256, 1, 1, 3, 0},
    {"sppf cv1", 32, 256, 128, 1, 1, 1, 0},
    {"sppf cv2", 32, 512, 256, 1, 1, 1, 0},
    {"neck@30 cv1 384->128", 16, 384, 128, 1, 1, 1, 0},
    {"neck@30 1x1 192->128", 16, 192, 128, 1, 1, 3, 0},
    {"neck@60 cv1 192->64", 8, 192, 64, 1, 1, 1, 0},
    {"neck@60 cv2 96->64", 8, 96, 64, 1, 1, 1, 0},
    {"neck down@60", 8, 64, 64, 3, 2, 1, 0},
    {"neck down@30", 16, 128, 128, 3, 2, 1, 0},
    {"head@60 3x3", 8, 64, 64, 3, 1, 4, 0},
    {"head@60 box 1x1", 8, 64, 64, 1, 1, 1, 1},
    {"head@60 cls 1x1", 8, 64, 1, 1, 1, 1, 1},
    {"head@30 3x3 128->64", 16, 128, 64, 3, 1, 2, 0},
    {"head@30 box 1x1", 16, 64, 64, 1, 1, 1, 1},
    {"head@30 cls 1x1", 16, 64, 1, 1, 1, 1, 1},
    {"head@15 3x3 256->64", 32, 256, 64, 3, 1, 2, 0},
    {"head@15 3x3", 32, 64, 64, 3, 1, 2, 0},
    {"head@15 box 1x1", 32, 64, 64, 1, 1, 1, 1},
    {"head@15 cls 1x1", 32, 64, 1, 1, 1, 1, 1},
};
#define NYOLO ((int)(sizeof yolo / sizeof yolo[0]))

static eng_conv_dims yolo_dims(const cshape *s, const opts *o)
{
    eng_conv_dims d;
    const int h = o->size / s->div;
    if (eng_conv_dims_init(&d, o->batch, h, h, s->c, s->o, s->k, s->k, s->s, s->k / 2, 1)) {
        fprintf(stderr, "bench: %s: %s\n", s->name, lupe_errmsg());
        exit(1);
    }
    return d;
}

/* Multiply-adds count 2 FLOPs; each of the three passes does the same number. */
static double conv_flops(const eng_conv_dims *d)
{
    return 2.0 * d->n * d->oh * d->ow * d->o * (double)(d->c / d->groups) * d->kh * d->kw;
}

/* A 64-byte aligned buffer from the funnel, filled with values in [-1, 1). */
static float *fbuf(size_t n, void **keep, uint64_t *seed)
{
    *keep = lupe_malloc(n * sizeof(float) + 64);
    if (!*keep) {
        fprintf(stderr, "bench: %s\n", lupe_errmsg());
        exit(1);
    }
    float *p = (float *)(((uintptr_t)*keep + 63) & ~(uintptr_t)63);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)(*seed >> 40) / 8388608.0f - 1.0f;
    }
    return p;
}

typedef struct result {
    double ms[4]; /* median per call: forward, backward data, backward weights, backward data overwriting */
    char impl[3][64];
} result;

static void die_st(lupe_status st, const char *what)
{
    fprintf(stderr, "bench: %s: %s: %s\n", what, lupe_strerror(st), lupe_errmsg());
    exit(1);
}

/* Times the three passes of one shape through eng_conv_fast. Backward data
 * includes its add into din, backward weights the reorder-add into dw:
 * those are part of what a training step pays. A fourth pass times the
 * overwriting backward data, to show what the add costs. */
static void time_fp32(const cshape *s, const opts *o, result *r)
{
    eng_conv_dims d = yolo_dims(s, o);
    uint64_t seed = 12345;
    void *k[8];
    const size_t nin = (size_t)d.n * d.h * d.w * d.c, nout = (size_t)d.n * d.oh * d.ow * d.o;
    const size_t nw = (size_t)d.o * d.kh * d.kw * d.c;
    float *in = fbuf(nin, &k[0], &seed), *out = fbuf(nout, &k[1], &seed), *w = fbuf(nw, &k[2], &seed);
    float *dout = fbuf(nout, &k[3], &seed), *din = fbuf(nin, &k[4], &seed), *dw = fbuf(nw, &k[5], &seed);
    float *b = fbuf((size_t)d.o, &k[6], &seed), *db = b; /* values do not matter here */
    eng_conv_fast *c = NULL;
    lupe_status st = eng_conv_fast_new(&d, s->bias, &c);
    if (st) die_st(st, s->name);
    void *scratch = lupe_malloc(eng_conv_fast_scratch(c));
    if (!scratch) die_st(LUPE_ENOMEM, "scratch");
    double t[64];
    const int reps = o->reps < 64 ? o->reps : 64;
    for (int pass = 0; pass < 4; pass++) {
        for (int i = -1; i < reps; i++) { /* i = -1: warm-up */
            double t0 = lupe_time_mono();
            if (pass == 0) st = eng_conv_fast_forward(c, out, in, w, s->bias ? b : NULL, scratch);
            else if (pass == 1) st = eng_conv_fast_backward_data(c, din, dout, w, scratch);
            else if (pass == 2) st = eng_conv_fast_backward_weights(c, dw, s->bias ? db : NULL, dout, in, scratch);
            else st = eng_conv_fast_backward_data_set(c, din, dout, w, scratch);
            if (st) die_st(st, s->name);
            if (i >= 0) t[i] = lupe_time_mono() - t0;
        }
        r->ms[pass] = 1e3 * median(t, reps);
        if (pass < 3) snprintf(r->impl[pass], sizeof r->impl[pass], "%s", eng_conv_fast_impl(c, (eng_conv_pass)pass));
    }
    eng_conv_fast_free(c);
    lupe_free(scratch);
    for (int i = 0; i < 7; i++) lupe_free(k[i]);
}

/* ---- bf16: oneDNN directly --------------------------------------------
 * bf16 activations, weights and output gradients, f32 accumulation inside
 * the kernels, f32 weight gradients (what mixed-precision training keeps).
 * Only the three convolution primitives are timed: weights are already in
 * the layout, and there is no accumulation pass, so this is the kernels'
 * speed, an upper bound on a bf16 fast path. */
static int dn_ok(dnnl_status_t s, const char *what)
{
    if (s == dnnl_success) return 1;
    fprintf(stderr, "bench: bf16 %s: oneDNN status %d\n", what, (int)s);
    return 0;
}

static void fill_mem(dnnl_memory_t m)
{
    const dnnl_memory_desc_t *md = NULL;
    void *p = NULL;
    dnnl_memory_get_memory_desc(m, &md);
    dnnl_memory_get_data_handle(m, &p);
    /* bf16 values near 0.25 (0x3e80); read as f32 (the bias), pairs of them
     * are near 0.25 too. Any normal value will do. */
    size_t n = dnnl_memory_desc_get_size(md) / 2;
    uint16_t *u = p;
    for (size_t i = 0; i < n; i++) u[i] = (uint16_t)(0x3e80 + (i % 7));
}

static int time_bf16(const cshape *s, const opts *o, dnnl_engine_t eng, dnnl_stream_t strm, result *r)
{
    eng_conv_dims d = yolo_dims(s, o);
    int ok = 0;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    dnnl_primitive_t p[3] = {NULL, NULL, NULL};
    dnnl_memory_t src = NULL, wei = NULL, weib = NULL, dst = NULL, dsrc = NULL, ddst = NULL, dwei = NULL, bias = NULL,
                  dbias = NULL;
    dnnl_memory_desc_t smd, dmd, wmd, bmd;
    dnnl_dims_t sd = {d.n, d.c, d.h, d.w}, dd = {d.n, d.o, d.oh, d.ow}, wd = {d.o, d.c, d.kh, d.kw}, bd = {d.o};
    dnnl_dims_t str = {d.sh, d.sw}, pl = {d.ph, d.pw};
    dnnl_dims_t pr = {(d.oh - 1) * d.sh + d.kh - d.h - d.ph, (d.ow - 1) * d.sw + d.kw - d.w - d.pw};
    if (pr[0] < 0) pr[0] = 0;
    if (pr[1] < 0) pr[1] = 0;
    dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_bf16, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_bf16, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&wmd, 4, wd, dnnl_bf16, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_a);
    dnnl_memory_desc_t wmd_f32 = wmd;
    dnnl_memory_desc_init_by_tag(&wmd_f32, 4, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_convolution_desc_t cd;
    const dnnl_memory_desc_t *bp = s->bias ? &bmd : NULL;
    if (!dn_ok(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &smd, &wmd, bp,
                                                  &dmd, str, pl, pr), "forward") ||
        !dn_ok(dnnl_primitive_desc_create(&fpd, &cd, NULL, eng, NULL), "forward") ||
        !dn_ok(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &smd, &wmd, &dmd, str, pl, pr),
               "backward data") ||
        !dn_ok(dnnl_primitive_desc_create(&dpd, &cd, NULL, eng, fpd), "backward data") ||
        !dn_ok(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &smd, &wmd_f32, bp, &dmd, str,
                                                           pl, pr), "backward weights") ||
        !dn_ok(dnnl_primitive_desc_create(&wpd, &cd, NULL, eng, fpd), "backward weights"))
        goto out;
    const dnnl_primitive_desc_t pds[3] = {fpd, dpd, wpd};
    for (int i = 0; i < 3; i++) {
        const char *impl = "?";
        dnnl_primitive_desc_query(pds[i], dnnl_query_impl_info_str, 0, &impl);
        snprintf(r->impl[i], sizeof r->impl[i], "%s", impl);
        if (!dn_ok(dnnl_primitive_create(&p[i], pds[i]), "primitive")) goto out;
    }
    dnnl_memory_create(&src, &smd, eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&dst, &dmd, eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&dsrc, &smd, eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&ddst, &dmd, eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&wei, dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0), eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&weib, dnnl_primitive_desc_query_md(dpd, dnnl_query_weights_md, 0), eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&dwei, dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0), eng,
                       DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&bias, &bmd, eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&dbias, &bmd, eng, DNNL_MEMORY_ALLOCATE);
    if (!src || !dst || !dsrc || !ddst || !wei || !weib || !dwei || !bias || !dbias) goto out;
    fill_mem(src), fill_mem(ddst), fill_mem(wei), fill_mem(weib), fill_mem(bias);
    dnnl_exec_arg_t fa[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_BIAS, bias}};
    dnnl_exec_arg_t da[] = {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, weib}, {DNNL_ARG_DIFF_SRC, dsrc}};
    dnnl_exec_arg_t wa[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, dwei},
                            {DNNL_ARG_DIFF_BIAS, dbias}};
    const dnnl_exec_arg_t *args[3] = {fa, da, wa};
    const int nargs[3] = {s->bias ? 4 : 3, 3, s->bias ? 4 : 3};
    double t[64];
    const int reps = o->reps < 64 ? o->reps : 64;
    for (int pass = 0; pass < 3; pass++) {
        for (int i = -1; i < reps; i++) {
            double t0 = lupe_time_mono();
            if (!dn_ok(dnnl_primitive_execute(p[pass], strm, nargs[pass], args[pass]), "execute")) goto out;
            dnnl_stream_wait(strm);
            if (i >= 0) t[i] = lupe_time_mono() - t0;
        }
        r->ms[pass] = 1e3 * median(t, reps);
    }
    ok = 1;
out:
    for (int i = 0; i < 3; i++)
        if (p[i]) dnnl_primitive_destroy(p[i]);
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    dnnl_memory_t ms[] = {src, wei, weib, dst, dsrc, ddst, dwei, bias, dbias};
    for (int i = 0; i < 9; i++)
        if (ms[i]) dnnl_memory_destroy(ms[i]);
    return ok;
}

/* ---- report ------------------------------------------------------------- */
/* Other processes on the cores stall oneDNN's OpenMP barriers (a thread
 * that is descheduled holds up the rest until the next time slice), so a
 * busy machine gives low, noisy figures. This samples the number of tasks
 * running now (the fourth field of /proc/loadavg, which counts this one)
 * ten times over 0.2 s and returns the mean of the others, or -1. */
static double others_running(void)
{
    double sum = 0;
    int n = 0;
    for (int i = 0; i < 10; i++) {
        FILE *f = fopen("/proc/loadavg", "r");
        int run = 0, total = 0;
        if (f) {
            if (fscanf(f, "%*f %*f %*f %d/%d", &run, &total) == 2) sum += run - 1, n++;
            fclose(f);
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    return n ? sum / n : -1;
}

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx (AMX)";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "other";
    }
}

static int cpu_has_bf16(void)
{
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}

static const char *const pass_names[3] = {"forward", "backward-data", "backward-weights"};

/* Prints the per-shape table and the FLOP-weighted totals; returns the
 * time of all passes of all convolutions of one training step in ms. */
static double report(const char *title, const result *res, const opts *o, double peak)
{
    double flops[3] = {0}, ms[3] = {0};
    printf("\n%s\n", title);
    printf("%-22s %5s %-15s %7s | %8s %7s %5s | %8s %7s %5s | %8s %7s %5s\n", "shape", "count", "h c->o k/s",
           "GFLOP", "fwd ms", "GFLOP/s", "peak", "bwd-d ms", "GFLOP/s", "peak", "bwd-w ms", "GFLOP/s", "peak");
    for (int i = 0; i < NYOLO; i++) {
        const cshape *s = &yolo[i];
        eng_conv_dims d = yolo_dims(s, o);
        const double f = conv_flops(&d);
        char geo[32];
        snprintf(geo, sizeof geo, "%d %d->%d %d/%d", d.h, d.c, d.o, d.kh, d.sh);
        printf("%-22s %5d %-15s %7.2f", s->name, s->count, geo, f / 1e9);
        for (int p = 0; p < 3; p++) {
            const double g = f / (res[i].ms[p] * 1e-3) / 1e9;
            printf(" | %8.2f %7.1f %4.0f%%", res[i].ms[p], g, 100 * g / peak);
            flops[p] += f * s->count;
            ms[p] += res[i].ms[p] * s->count;
        }
        printf("\n");
    }
    printf("kernels (first shape, last shape): ");
    for (int p = 0; p < 3; p++)
        printf("%s %s, %s%s", pass_names[p], res[0].impl[p], res[NYOLO - 1].impl[p], p < 2 ? "; " : "\n");
    double tf = 0, tm = 0;
    printf("FLOP-weighted over the network (%d threads, peak %.1f GFLOP/s):\n", eng_get_threads(), peak);
    for (int p = 0; p < 3; p++) {
        const double g = flops[p] / (ms[p] * 1e-3) / 1e9;
        printf("  %-17s %8.1f ms %8.1f GFLOP/s  %5.1f%% of peak\n", pass_names[p], ms[p], g, 100 * g / peak);
        tf += flops[p], tm += ms[p];
    }
    printf("  %-17s %8.1f ms %8.1f GFLOP/s  %5.1f%% of peak  (%.1f GFLOP per step)\n", "all three", tm,
           tf / (tm * 1e-3) / 1e9, 100 * tf / (tm * 1e-3) / 1e9 / peak, tf / 1e9);
    if (res[0].ms[3] > 0) {
        double ms3 = 0;
        for (int i = 0; i < NYOLO; i++) ms3 += res[i].ms[3] * yolo[i].count;
        const double g = flops[1] / (ms3 * 1e-3) / 1e9;
        printf("  backward-data overwriting din (no add pass): %.1f ms, %.1f GFLOP/s, %.1f%% of peak; the add is "
               "%.0f%% of backward-data\n",
               ms3, g, 100 * g / peak, 100 * (ms[1] - ms3) / ms[1]);
    }
    return tm;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_opts(argc, argv, &o)) {
        usage();
        return 2;
    }
    if (lupe_base_init()) {
        fprintf(stderr, "bench: %s\n", lupe_errmsg());
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    eng_set_threads(o.threads);
    const int nthr = eng_get_threads();
    have_avx512 = __builtin_cpu_supports("avx512f");
    const dnnl_version_t *v = dnnl_version();
    printf("lupe engine benchmark: oneDNN %d.%d.%d, ISA %s, %d threads\n", v->major, v->minor, v->patch,
           isa_name(dnnl_get_effective_cpu_isa()), nthr);

    const double busy = others_running();
    if (busy > 0.3)
        printf("warning: %.1f other tasks running on average: they share these cores, so the figures below are "
               "low and noisy\n",
               busy);
    double t0 = lupe_time_mono();
    const double peak1 = peak_gflops(1), peakn = nthr > 1 ? peak_gflops(nthr) : peak1;
    printf("fp32 peak (%s FMA loop, %d independent accumulators): 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s "
           "(%.2fx)\n",
           have_avx512 ? "AVX-512" : "AVX2", have_avx512 ? NACC : 12, peak1, nthr, peakn, peakn / peak1);
    if (peakn / peak1 < 0.8 * nthr)
        printf("warning: %d threads reach only %.2fx one thread's peak: the cores are shared (another process, or "
               "hyper-threads of one core)\n",
               nthr, peakn / peak1);

    int total = 0;
    double fwd1 = 0;
    for (int i = 0; i < NYOLO; i++) {
        eng_conv_dims d = yolo_dims(&yolo[i], &o);
        total += yolo[i].count;
        fwd1 += conv_flops(&d) * yolo[i].count / o.batch;
    }
    printf("YOLOv8n (1 class) at %dx%d, batch %d: %d convolutions in %d distinct shapes, %.2f GFLOP per image "
           "forward; median of %d runs after one warm-up%s\n",
           o.size, o.size, o.batch, total, NYOLO, fwd1 / 1e9, o.reps,
           o.batch != 16 || o.size != 480 ? " (reduced: not the default batch 16 at 480)" : "");

    result *res = lupe_calloc(NYOLO, sizeof *res);
    if (!res) die_st(LUPE_ENOMEM, "results");
    for (int i = 0; i < NYOLO; i++) time_fp32(&yolo[i], &o, &res[i]);
    double step = report("fp32 through eng_conv_fast (backward passes include their accumulate step)", res, &o, peakn);

    if (o.bf16 && cpu_has_bf16()) {
        dnnl_engine_t eng = NULL;
        dnnl_stream_t strm = NULL;
        int ok = dn_ok(dnnl_engine_create(&eng, dnnl_cpu, 0), "engine") &&
                 dn_ok(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags), "stream");
        for (int i = 0; ok && i < NYOLO; i++) res[i].ms[3] = 0, ok = time_bf16(&yolo[i], &o, eng, strm, &res[i]);
        if (ok) {
            double sb = report("bf16 oneDNN primitives (f32 accumulation and weight gradients; 'peak' is still the "
                               "fp32 peak)", res, &o, peakn);
            printf("  bf16 / fp32 time for all passes: %.2f (%.2fx faster)\n", sb / step, step / sb);
        } else {
            printf("\nbf16: skipped, oneDNN could not build the primitives\n");
        }
        if (strm) dnnl_stream_destroy(strm);
        if (eng) dnnl_engine_destroy(eng);
    } else {
        printf("\nbf16: skipped (%s)\n", o.bf16 ? "the CPU has no AVX512_BF16" : "--no-bf16");
    }
    lupe_free(res);
    printf("\nbenchmark took %.0f s (other tasks running at the end: %.1f)\n", lupe_time_mono() - t0,
           others_running());
    return 0;
}
