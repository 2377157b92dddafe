/*
 * The kernels of imported ONNX graphs other than convolution: strided
 * copies (layout changes, Transpose, Slice, Split, Concat, Expand),
 * broadcasting element-wise arithmetic, activations, per-channel affine
 * (batch norm), softmax, max pooling and nearest resizing. Each works on
 * any layout through per-axis strides; shapes and strides are fixed at
 * load, so a call is loops only. OpenMP splits the outer loops when the
 * work is large enough to pay for waking threads.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "onnx/net_internal.h"

#define MIN_WORK 16384 /* elements per thread below which one thread does it all */

static int team(int threads, int64_t work)
{
    const int64_t most = work / MIN_WORK;
    if (threads < 2 || most < 2) return 1;
    return most < threads ? (int)most : threads;
}

/* Rows [lo, hi) of `rows` for thread t of nt. */
static void part(int64_t rows, int t, int nt, int64_t *lo, int64_t *hi)
{
    *lo = rows * t / nt;
    *hi = rows * (t + 1) / nt;
}

#ifdef _OPENMP
#define TEAM(nt) _Pragma("omp parallel num_threads(nt)")
#define TEAM_T omp_get_thread_num()
#define TEAM_N omp_get_num_threads()
#else
#define TEAM(nt)
#define TEAM_T 0
#define TEAM_N 1
#endif

/* ---- strided copies --------------------------------------------------------- */
/* Orders axes by decreasing destination stride (the destination is then
 * written in memory order), drops axes of size 1 and merges neighbours
 * that are contiguous in every tensor. Returns the rank; a tensor of no
 * elements keeps one axis of size 0. */
static int normalise(int rank, int64_t *dims, int64_t *s0, int64_t *s1, int64_t *s2)
{
    int64_t d[OX_MAXR], a[OX_MAXR], b[OX_MAXR], c[OX_MAXR];
    int r = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0) {
            dims[0] = 0, s0[0] = s1[0] = 1;
            if (s2) s2[0] = 1;
            return 1;
        }
        if (dims[i] == 1) continue;
        /* insertion by |destination stride|, stable */
        int j = r++;
        const int64_t key = s0[i] < 0 ? -s0[i] : s0[i];
        while (j > 0 && (a[j - 1] < 0 ? -a[j - 1] : a[j - 1]) < key) {
            d[j] = d[j - 1], a[j] = a[j - 1], b[j] = b[j - 1], c[j] = c[j - 1];
            j--;
        }
        d[j] = dims[i], a[j] = s0[i], b[j] = s1[i], c[j] = s2 ? s2[i] : 0;
    }
    if (!r) {
        dims[0] = 1, s0[0] = s1[0] = 1;
        if (s2) s2[0] = 1;
        return 1;
    }
    int k = 0;
    dims[0] = d[0], s0[0] = a[0], s1[0] = b[0];
    if (s2) s2[0] = c[0];
    for (int i = 1; i < r; i++) {
        if (s0[k] == a[i] * d[i] && s1[k] == b[i] * d[i] && (!s2 || s2[k] == c[i] * d[i])) {
            dims[k] *= d[i], s0[k] = a[i], s1[k] = b[i];
            if (s2) s2[k] = c[i];
            continue;
        }
        k++;
        dims[k] = d[i], s0[k] = a[i], s1[k] = b[i];
        if (s2) s2[k] = c[i];
    }
    return k + 1;
}

void ox__cpy_make(ox_cpy *c, int rank, const int64_t *dims, const int64_t *ds, const int64_t *ss)
{
    memset(c, 0, sizeof *c);
    memcpy(c->dims, dims, (size_t)rank * sizeof *dims);
    memcpy(c->ds, ds, (size_t)rank * sizeof *ds);
    memcpy(c->ss, ss, (size_t)rank * sizeof *ss);
    c->rank = normalise(rank, c->dims, c->ds, c->ss, NULL);
}

/* Offsets of row `row` (the index over all axes but the last). */
static void row_offsets(int rank, const int64_t *dims, int64_t row, const int64_t *s0, const int64_t *s1,
                        const int64_t *s2, int64_t *o0, int64_t *o1, int64_t *o2)
{
    *o0 = *o1 = 0;
    if (o2) *o2 = 0;
    for (int k = rank - 2; k >= 0; k--) {
        const int64_t j = row % dims[k];
        row /= dims[k];
        *o0 += j * s0[k], *o1 += j * s1[k];
        if (o2) *o2 += j * s2[k];
    }
}

void ox__copy(float *dst, const float *src, const ox_cpy *c, int threads)
{
    const int r = c->rank;
    const int64_t len = c->dims[r - 1], ds = c->ds[r - 1], ss = c->ss[r - 1];
    int64_t rows = 1;
    for (int k = 0; k < r - 1; k++) rows *= c->dims[k];
    if (!len) return;
    const int nt = team(threads, rows * len);
    TEAM(nt)
    {
        int64_t lo, hi;
        part(rows, TEAM_T, TEAM_N, &lo, &hi);
        for (int64_t row = lo; row < hi; row++) {
            int64_t od, os;
            row_offsets(r, c->dims, row, c->ds, c->ss, NULL, &od, &os, NULL);
            float *d = dst + od;
            const float *s = src + os;
            if (ds == 1 && ss == 1)
                memcpy(d, s, (size_t)len * sizeof(float));
            else
                for (int64_t i = 0; i < len; i++) d[i * ds] = s[i * ss];
        }
    }
}

/* ---- element-wise ------------------------------------------------------------ */
void ox__bin_make(ox_bin *b, ox_binop op, int rank, const int64_t *dims, const int64_t *os, const int64_t *as,
                 const int64_t *bs)
{
    memset(b, 0, sizeof *b);
    b->op = op;
    memcpy(b->dims, dims, (size_t)rank * sizeof *dims);
    memcpy(b->os, os, (size_t)rank * sizeof *os);
    memcpy(b->as, as, (size_t)rank * sizeof *as);
    memcpy(b->bs, bs, (size_t)rank * sizeof *bs);
    b->rank = normalise(rank, b->dims, b->os, b->as, b->bs);
}

/* One row: out[i*os] = a[i*as] op b[i*bs]; the common cases (contiguous,
 * a scalar or a per-row constant on one side) as plain loops the compiler
 * vectorises. */
#define ROW(EXPR)                                                                                                      \
    do {                                                                                                               \
        if (os == 1 && as == 1 && bs == 1)                                                                             \
            for (int64_t i = 0; i < n; i++) {                                                                          \
                const float x = a[i], y = b[i];                                                                        \
                o[i] = EXPR;                                                                                           \
            }                                                                                                          \
        else if (os == 1 && as == 1 && bs == 0) {                                                                      \
            const float y = b[0];                                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                                          \
                const float x = a[i];                                                                                  \
                o[i] = EXPR;                                                                                           \
            }                                                                                                          \
        } else if (os == 1 && as == 0 && bs == 1) {                                                                    \
            const float x = a[0];                                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                                          \
                const float y = b[i];                                                                                  \
                o[i] = EXPR;                                                                                           \
            }                                                                                                          \
        } else                                                                                                         \
            for (int64_t i = 0; i < n; i++) {                                                                          \
                const float x = a[i * as], y = b[i * bs];                                                              \
                o[i * os] = EXPR;                                                                                      \
            }                                                                                                          \
    } while (0)

static void bin_row(ox_binop op, float *o, const float *a, const float *b, int64_t n, int64_t os, int64_t as,
                    int64_t bs)
{
    switch (op) {
    case B_ADD: ROW(x + y); break;
    case B_SUB: ROW(x - y); break;
    case B_MUL: ROW(x * y); break;
    case B_DIV: ROW(x / y); break;
    }
}

void ox__binary(float *out, const float *a, const float *b, const ox_bin *p, int threads)
{
    const int r = p->rank;
    const int64_t len = p->dims[r - 1];
    int64_t rows = 1;
    for (int k = 0; k < r - 1; k++) rows *= p->dims[k];
    if (!len) return;
    const int nt = team(threads, rows * len);
    TEAM(nt)
    {
        int64_t lo, hi;
        part(rows, TEAM_T, TEAM_N, &lo, &hi);
        for (int64_t row = lo; row < hi; row++) {
            int64_t oo, ao, bo;
            row_offsets(r, p->dims, row, p->os, p->as, p->bs, &oo, &ao, &bo);
            bin_row(p->op, out + oo, a + ao, b + bo, len, p->os[r - 1], p->as[r - 1], p->bs[r - 1]);
        }
    }
}

void ox__unary_run(float *out, const float *in, int64_t n, ox_unary op, float alpha, int threads)
{
    switch (op) {
    case U_SIGMOID: eng_sigmoid_forward_fast(out, in, (size_t)n); return;
    case U_SILU: eng_silu_forward_fast(out, in, (size_t)n); return;
    default: break;
    }
    const int nt = team(threads, n);
    TEAM(nt)
    {
        int64_t lo, hi;
        part(n, TEAM_T, TEAM_N, &lo, &hi);
        if (op == U_RELU)
            for (int64_t i = lo; i < hi; i++) out[i] = in[i] > 0 ? in[i] : 0.0f;
        else
            for (int64_t i = lo; i < hi; i++) out[i] = in[i] >= 0 ? in[i] : in[i] * alpha;
    }
}

void ox__affine(float *out, const float *in, const float *scale, const float *shift, int64_t outer, int64_t c,
               int64_t inner, int threads)
{
    const int nt = team(threads, outer * c * inner);
    TEAM(nt)
    {
        int64_t lo, hi;
        part(outer, TEAM_T, TEAM_N, &lo, &hi);
        for (int64_t u = lo; u < hi; u++)
            if (inner == 1) {
                const float *x = in + u * c;
                float *y = out + u * c;
                for (int64_t k = 0; k < c; k++) y[k] = x[k] * scale[k] + shift[k];
            } else {
                for (int64_t k = 0; k < c; k++) {
                    const float *x = in + (u * c + k) * inner;
                    float *y = out + (u * c + k) * inner;
                    const float s = scale[k], t = shift[k];
                    for (int64_t i = 0; i < inner; i++) y[i] = x[i] * s + t;
                }
            }
    }
}

/* Softmax over n values spaced `inner` apart, for each of outer * inner
 * such vectors. Columns are done SOFTMAX_BLOCK at a time so that the inner
 * loops run over consecutive memory. exp is taken once per value, in
 * double, and summed in double: each result is then within about one float
 * rounding of the exact value. Float arithmetic (expf, float sums and
 * reciprocal) was measurably worse for YOLOv8's DFL, whose expectation over
 * 16 bins, times the stride, turns each probability's error into pixels:
 * the test detector's largest error against PyTorch's float64 output grew
 * from 4.6e-5 to 6.1e-5 pixels. */
#define SOFTMAX_BLOCK 16

static void softmax_block(float *y, const float *x, int64_t n, int64_t inner, int nb)
{
    float m[SOFTMAX_BLOCK];
    double s[SOFTMAX_BLOCK];
    for (int j = 0; j < nb; j++) m[j] = -INFINITY, s[j] = 0;
    for (int64_t k = 0; k < n; k++)
        for (int j = 0; j < nb; j++) m[j] = x[k * inner + j] > m[j] ? x[k * inner + j] : m[j];
    for (int64_t k = 0; k < n; k++) {
        const float *xk = x + k * inner;
        float *yk = y + k * inner;
        for (int j = 0; j < nb; j++) {
            const double e = exp((double)xk[j] - m[j]);
            yk[j] = (float)e;
            s[j] += e;
        }
    }
    for (int j = 0; j < nb; j++) s[j] = 1.0 / s[j];
    for (int64_t k = 0; k < n; k++)
        for (int j = 0; j < nb; j++) y[k * inner + j] = (float)(y[k * inner + j] * s[j]);
}

static void softmax_row(float *y, const float *x, int64_t n)
{
    float m = -INFINITY;
    double s = 0;
    for (int64_t k = 0; k < n; k++) m = x[k] > m ? x[k] : m;
    for (int64_t k = 0; k < n; k++) {
        const double e = exp((double)x[k] - m);
        y[k] = (float)e;
        s += e;
    }
    const double r = 1.0 / s;
    for (int64_t k = 0; k < n; k++) y[k] = (float)(y[k] * r);
}

void ox__softmax(float *out, const float *in, int64_t outer, int64_t n, int64_t inner, int threads)
{
    const int64_t blocks = inner == 1 ? 1 : (inner + SOFTMAX_BLOCK - 1) / SOFTMAX_BLOCK;
    const int nt = team(threads, outer * n * inner);
    TEAM(nt)
    {
        int64_t lo, hi;
        part(outer * blocks, TEAM_T, TEAM_N, &lo, &hi);
        for (int64_t q = lo; q < hi; q++) {
            const int64_t u = q / blocks, b = q % blocks;
            if (inner == 1) {
                softmax_row(out + u * n, in + u * n, n);
                continue;
            }
            const int64_t w = b * SOFTMAX_BLOCK;
            const int nb = (int)(inner - w < SOFTMAX_BLOCK ? inner - w : SOFTMAX_BLOCK);
            softmax_block(out + u * n * inner + w, in + u * n * inner + w, n, inner, nb);
        }
    }
}

/* ---- pooling and resizing ------------------------------------------------------- */
/* Max over each window's positions inside the input (padding never wins;
 * a window entirely in the padding, possible with ceil_mode, gives -inf).
 * Strides say the layout: s[0..3] for N, C, H, W. */
void ox__maxpool(float *out, const float *in, const ox_step *s, int threads)
{
    const int N = s->p.mp.n, C = s->p.mp.c, H = s->p.mp.h, W = s->p.mp.w, OH = s->p.mp.oh, OW = s->p.mp.ow;
    const int64_t *is = s->p.mp.is, *os = s->p.mp.os;
    const int nt = team(threads, (int64_t)N * OH * OW * C * s->p.mp.kh * s->p.mp.kw);
    TEAM(nt)
    {
        int64_t lo, hi;
        part((int64_t)N * OH, TEAM_T, TEAM_N, &lo, &hi);
        for (int64_t r = lo; r < hi; r++) {
            const int n = (int)(r / OH), oy = (int)(r % OH);
            const int y0 = oy * s->p.mp.sh - s->p.mp.pt;
            const int ya = y0 < 0 ? 0 : y0, yb = y0 + s->p.mp.kh > H ? H : y0 + s->p.mp.kh;
            for (int ox = 0; ox < OW; ox++) {
                const int x0 = ox * s->p.mp.sw - s->p.mp.pl;
                const int xa = x0 < 0 ? 0 : x0, xb = x0 + s->p.mp.kw > W ? W : x0 + s->p.mp.kw;
                for (int c = 0; c < C; c++) {
                    float m = -INFINITY;
                    const float *p = in + n * is[0] + c * is[1];
                    for (int y = ya; y < yb; y++)
                        for (int x = xa; x < xb; x++) {
                            const float v = p[y * is[2] + x * is[3]];
                            if (v > m || v != v) m = v;
                        }
                    out[n * os[0] + c * os[1] + oy * os[2] + ox * os[3]] = m;
                }
            }
        }
    }
}

void ox__resize_nearest(float *out, const float *in, const ox_step *s, int threads)
{
    const int N = s->p.rs.n, C = s->p.rs.c, OH = s->p.rs.oh, OW = s->p.rs.ow;
    const int64_t *is = s->p.rs.is, *os = s->p.rs.os;
    const int nt = team(threads, (int64_t)N * OH * OW * C);
    TEAM(nt)
    {
        int64_t lo, hi;
        part((int64_t)N * OH, TEAM_T, TEAM_N, &lo, &hi);
        for (int64_t r = lo; r < hi; r++) {
            const int n = (int)(r / OH), oy = (int)(r % OH);
            const float *src = in + n * is[0] + s->p.rs.ymap[oy] * is[2];
            float *dst = out + n * os[0] + oy * os[2];
            for (int ox = 0; ox < OW; ox++) {
                const float *p = src + s->p.rs.xmap[ox] * is[3];
                float *q = dst + ox * os[3];
                if (is[1] == 1 && os[1] == 1)
                    memcpy(q, p, (size_t)C * sizeof(float));
                else
                    for (int c = 0; c < C; c++) q[c * os[1]] = p[c * is[1]];
            }
        }
    }
}
