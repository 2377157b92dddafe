/*
 * Benchmark of the fast non-convolution ops against their references on
 * YOLOv8n's activation shapes (batch 8 at 320x320 by default): batch norm
 * forward (training) and backward, SiLU forward and backward, and batch norm
 * + SiLU fused (whose cost compares with the sum of the two ops it
 * replaces), with the fast versions on 1 thread and on all cores. Prints
 * median (--min: fastest) milliseconds and the speedup over the reference
 * (--no-ref skips the slow references); nothing here asserts on time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lupe/engine.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
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

typedef struct {
    size_t m;
    int c;
    float *x, *y, *dy, *dx, *gamma, *beta, *mean, *invstd, *dgamma, *dbeta;
} bufs;

enum { BN_FWD, BN_BWD, SILU_FWD, SILU_BWD, BNSILU_FWD, BNSILU_BWD, BNSILU_BWD_SET, NOPS };
static const char *const op_names[NOPS] = {"bn forward",      "bn backward",      "silu forward",   "silu backward",
                                           "bn+silu forward", "bn+silu backward", "bn+silu bwd set"};

static void run_op(int op, int fast, bufs *b)
{
    const size_t n = b->m * (size_t)b->c;
    switch (op) {
    case BN_FWD:
        (fast ? eng_bn_forward_train_fast : eng_bn_forward_train_ref)(b->y, b->mean, b->invstd, b->x, b->gamma,
                                                                      b->beta, b->m, b->c, 1e-3f);
        break;
    case BN_BWD:
        (fast ? eng_bn_backward_fast : eng_bn_backward_ref)(b->dx, b->dgamma, b->dbeta, b->dy, b->x, b->mean,
                                                            b->invstd, b->gamma, b->m, b->c);
        break;
    case SILU_FWD: (fast ? eng_silu_forward_fast : eng_silu_forward_ref)(b->y, b->x, n); break;
    case SILU_BWD: (fast ? eng_silu_backward_fast : eng_silu_backward_ref)(b->dx, b->dy, b->x, n); break;
    case BNSILU_FWD:
        (fast ? eng_bn_silu_forward_train_fast : eng_bn_silu_forward_train_ref)(b->y, b->mean, b->invstd, b->x,
                                                                                b->gamma, b->beta, b->m, b->c, 1e-3f);
        break;
    case BNSILU_BWD:
        (fast ? eng_bn_silu_backward_fast : eng_bn_silu_backward_ref)(b->dx, b->dgamma, b->dbeta, b->dy, b->x, b->mean,
                                                                      b->invstd, b->gamma, b->beta, b->m, b->c);
        break;
    case BNSILU_BWD_SET: /* the overwriting form graphs use; the reference adds */
        (fast ? eng_bn_silu_backward_set_fast : eng_bn_silu_backward_ref)(
            b->dx, b->dgamma, b->dbeta, b->dy, b->x, b->mean, b->invstd, b->gamma, b->beta, b->m, b->c);
        break;
    }
}

/* Median (or, with use_min, the fastest) of reps timed runs after one
 * warm-up: on cores shared with other busy processes the minimum is the
 * figure that interference does not inflate. */
static int use_min;

static double time_op(int op, int fast, bufs *b, int reps)
{
    double t[64] = {0};
    run_op(op, fast, b);
    for (int i = 0; i < reps; i++) {
        const double t0 = now_ms();
        run_op(op, fast, b);
        t[i] = now_ms() - t0;
    }
    double lo = t[0];
    for (int i = 1; i < reps; i++) lo = t[i] < lo ? t[i] : lo;
    return use_min ? lo : median(t, reps);
}

static float *randf(size_t n, float lo, float hi, unsigned *seed)
{
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_ops: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * (float)rand_r(seed) / (float)RAND_MAX;
    return p;
}

int main(int argc, char **argv)
{
    int batch = 8, size = 320, reps = 7, ref = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) batch = 1, reps = 3;
        else if (!strcmp(argv[i], "--no-ref")) ref = 0;
        else if (!strcmp(argv[i], "--min")) use_min = 1;
        else {
            fprintf(stderr, "usage: bench_ops [--batch N] [--size S] [--reps R (<= 64)] [--quick] [--no-ref] [--min]\n"
                            "  defaults: batch 8, size 320 (YOLOv8n's stride-2..16 activations), 7 runs\n");
            return 2;
        }
    }
    if (batch < 1 || size < 16 || size % 16 || reps < 1 || reps > 64) {
        fprintf(stderr, "bench_ops: bad option value\n");
        return 2;
    }
    const int all = eng_get_threads();
    printf("bench_ops: batch %d, size %d, %s of %d runs, all cores = %d threads\n", batch, size,
           use_min ? "fastest" : "median", reps, all);
    printf("%-22s %-17s %9s %9s %9s %8s %8s\n", "shape (NHWC)", "op", "ref ms", "1t ms", "all ms", "x ref 1t",
           "x ref all");
    /* YOLOv8n's activations at strides 2, 4, 8 and 16 (channels 16..128). */
    for (int s = 0; s < 4; s++) {
        const int h = size >> (s + 1), c = 16 << s;
        unsigned seed = 1234u + (unsigned)s;
        bufs b = {.m = (size_t)batch * h * h, .c = c};
        const size_t n = b.m * (size_t)c;
        b.x = randf(n, -1, 3, &seed), b.y = randf(n, 0, 1, &seed), b.dy = randf(n, -1, 1, &seed);
        b.dx = randf(n, 0, 0, &seed), b.gamma = randf(c, 0.5f, 2, &seed), b.beta = randf(c, -1, 1, &seed);
        b.mean = randf(c, 0, 0, &seed), b.invstd = randf(c, 0, 0, &seed), b.dgamma = randf(c, 0, 0, &seed);
        b.dbeta = randf(c, 0, 0, &seed);
        char shape[48];
        snprintf(shape, sizeof shape, "%dx%dx%dx%d", batch, h, h, c);
        for (int op = 0; op < NOPS; op++) {
            eng_set_threads(1);
            const double tr = ref ? time_op(op, 0, &b, reps) : 0.0, t1 = time_op(op, 1, &b, reps);
            eng_set_threads(0);
            const double ta = time_op(op, 1, &b, reps);
            printf("%-22s %-17s %9.3f %9.3f %9.3f %8.1f %8.1f\n", shape, op_names[op], tr, t1, ta, tr / t1, tr / ta);
        }
        free(b.x), free(b.y), free(b.dy), free(b.dx), free(b.gamma), free(b.beta), free(b.mean), free(b.invstd);
        free(b.dgamma), free(b.dbeta);
    }
    return 0;
}
