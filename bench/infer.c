/*
 * bench_infer: YOLOv8 inference, lupe in f32, bf16 and int8 next to ONNX
 * Runtime running the ONNX export of the same weights, in the same run and
 * at the same thread counts: latency (median, p90, p99) at batch 1,
 * images/s at a larger batch, and each configuration's peak memory.
 *
 *   build/release/bin/bench_infer [--model CKPT|RUN] [--onnx FILE | --no-export] [--imgsz 480] [--runs 60]
 *                                 [--rounds 3] [--batch 8] [--threads 1,2] [--calib FILE]
 *                                 [--precisions f32,bf16,int8]
 *
 * Every configuration runs in a child process (this program executed
 * again with --child), one after the other, so that its peak resident set
 * (getrusage's ru_maxrss, the kernel's high-water mark of the process's
 * RSS) is its own: program, libraries, model and buffers, nothing of the
 * others. Each child runs 3 untimed warm-up passes, then timed ones. Batch 1
 * is measured in --rounds rounds of --runs / --rounds runs, ONNX Runtime
 * and the precisions taking turns within each round, and the times pooled:
 * on a shared machine a slow spell then falls on every configuration
 * rather than on one (the per-round ratios' range is printed too). The
 * larger batch runs once per configuration, --runs / 4 runs (at least 5).
 *
 * Without --model the weights are random from a fixed seed (latency does
 * not depend on them), saved as a checkpoint in build/bench-infer/. The
 * ONNX file ONNX Runtime runs is lupe's export of the same checkpoint
 * (onnx_export_det, into build/bench-infer/), unless --onnx names another
 * (--no-export: none); a check compares the two engines' outputs on one
 * image first. lupe's export takes one image at a time, so ONNX Runtime's
 * larger batch is that many single runs. int8 needs a calibration: --calib,
 * the model's own (CKPT.calib), or one made here from random images (valid
 * for timing only). ONNX Runtime comes from scripts/ort through
 * tests/lib/ort.c (dlopen); without the library its rows say why they are
 * empty.
 * Prints figures and ratios; nothing is asserted.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/ort.h"
#include "lupe/infer.h"
#include "lupe/onnx.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(const double *sorted, int n, double q)
{
    int i = (int)ceil(q * n) - 1;
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void fill_random(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)(seed >> 40) / 16777216.0f;
    }
}

/* ---- the child: one configuration ------------------------------------------ */

/* --child KIND PREC THREADS BATCH RUNS IMGSZ MODEL ONNX CALIB
 * prints "RESULT median p90 p99 min maxrss_kb" or "SKIP reason". */
static int child(char **av)
{
    const char *kind = av[0], *prec = av[1], *model = av[6], *onnx = av[7], *calib = av[8];
    const int threads = atoi(av[2]), batch = atoi(av[3]), runs = atoi(av[4]), imgsz = atoi(av[5]);
    const size_t n = (size_t)batch * imgsz * imgsz * 3;
    double *t = calloc((size_t)runs, sizeof *t);
    if (!t) return 1;
    if (!strcmp(kind, "ort")) {
        char why[512];
        ort_session *s = ort_open(onnx, threads, why, sizeof why);
        if (!s) {
            printf("SKIP %s\n", why);
            return 0;
        }
        float *in = malloc(n * sizeof *in); /* NCHW: random either way */
        fill_random(in, n, 1);
        int64_t shape[4] = {batch, 3, imgsz, imgsz}, osh[8];
        int orank, per = 1;
        float *out = NULL;
        if (batch > 1 && ort_run(s, in, shape, 4, &out, osh, &orank, why, sizeof why)) {
            /* A model with a fixed batch of 1 (lupe's export): the batch as
             * that many single-image runs, timed together. */
            printf("NOTE the ONNX model takes one image: batch %d timed as %d runs\n", batch, batch);
            shape[0] = 1, per = batch;
        }
        free(out);
        for (int i = -3; i < runs; i++) {
            double a = now_ms();
            for (int k = 0; k < per; k++) {
                out = NULL;
                if (ort_run(s, in + (size_t)k * 3 * imgsz * imgsz, shape, 4, &out, osh, &orank, why, sizeof why)) {
                    printf("SKIP %s\n", why);
                    return 0;
                }
                free(out);
            }
            double b = now_ms();
            if (i >= 0) t[i] = b - a;
        }
        printf("VERSION %s\n", ort_version());
        ort_close(s);
        free(in);
    } else {
        if (lupe_base_init()) return 1;
        if (getenv("BENCH_FTZ")) {
            unsigned csr;
            __asm__ volatile("stmxcsr %0" : "=m"(csr));
            csr |= 0x8040;
            __asm__ volatile("ldmxcsr %0" : : "m"(csr));
        }
        inf_opts o;
        inf_opts_default(&o);
        if (inf_precision_parse(prec, &o.precision)) return 2;
        o.threads = threads, o.batch = batch, o.imgsz = imgsz;
        o.calib = *calib ? calib : NULL;
        inf_model *m = NULL;
        if (inf_model_open(model, &o, &m)) {
            printf("SKIP %s\n", lupe_errmsg());
            return 0;
        }
        if (inf_model_ref_kernels(m)) printf("NOTE %d convolutions on oneDNN's reference kernels\n", inf_model_ref_kernels(m));
        fill_random(inf_model_input(m), n, 1);
        for (int i = -3; i < runs; i++) {
            double a = now_ms();
            if (inf_model_run(m)) {
                printf("SKIP %s\n", lupe_errmsg());
                return 0;
            }
            if (i >= 0) t[i] = now_ms() - a;
            fill_random(inf_model_input(m), n, 1); /* the plan reuses the input's memory */
        }
        if (getenv("BENCH_PROFILE")) inf_model_profile(m, runs, stderr);
        if (getenv("BENCH_DESCRIBE")) inf_model_describe(m, stderr);
        inf_model_free(m);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_d);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("TIMES");
    for (int i = 0; i < runs; i++) printf(" %.4f", t[i]);
    printf("\n");
    printf("RESULT %.3f %.3f %.3f %.3f %ld\n", quantile(t, runs, 0.5), quantile(t, runs, 0.9), quantile(t, runs, 0.99),
           t[0], ru.ru_maxrss);
    free(t);
    return 0;
}

/* ---- same weights? ---------------------------------------------------------
 * lupe f32 and ONNX Runtime on one image; lupe's head outputs decoded into
 * Ultralytics' [4 + nc, N] layout (DFL expectation, boxes as centre and size
 * in pixels, sigmoid scores) and compared. Prints "CHECK boxdiff scorediff". */
static int check(const char *model, const char *onnx, int imgsz)
{
    char why[512];
    if (lupe_base_init()) return 1;
    inf_opts o;
    inf_opts_default(&o);
    o.imgsz = imgsz, o.threads = 1;
    inf_model *m = NULL;
    if (inf_model_open(model, &o, &m)) {
        printf("SKIP %s\n", lupe_errmsg());
        return 0;
    }
    ort_session *s = ort_open(onnx, 1, why, sizeof why);
    if (!s) {
        printf("SKIP %s\n", why);
        return 0;
    }
    const int S = imgsz, nc = inf_model_arch(m)->nc;
    float *nhwc = inf_model_input(m), *nchw = malloc(sizeof(float) * 3 * S * S);
    fill_random(nchw, (size_t)3 * S * S, 5);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < S * S; i++) nhwc[(size_t)i * 3 + c] = nchw[(size_t)c * S * S + i];
    float *out = NULL;
    int64_t shape[4] = {1, 3, S, S}, osh[8];
    int orank = 0;
    if (inf_model_run(m) || ort_run(s, nchw, shape, 4, &out, osh, &orank, why, sizeof why)) {
        printf("SKIP %s\n", why);
        return 0;
    }
    int N = 0;
    for (int l = 0; l < DET_LEVELS; l++) N += (S >> (3 + l)) * (S >> (3 + l));
    if (orank != 3 || osh[1] != 4 + nc || osh[2] != N) {
        printf("SKIP the ONNX output is not [1, %d, %d]\n", 4 + nc, N);
        return 0;
    }
    double db = 0, ds = 0;
    int j = 0;
    for (int l = 0; l < DET_LEVELS; l++) {
        const int g = S >> (3 + l), C = 4 * DET_REG_MAX + nc;
        const float *o8 = inf_model_output(m, l), stride = (float)(8 << l);
        for (int y = 0; y < g; y++)
            for (int x = 0; x < g; x++, j++) {
                const float *a = o8 + ((size_t)y * g + x) * C;
                float d[4];
                for (int side = 0; side < 4; side++) {
                    const float *b = a + side * DET_REG_MAX;
                    float mx = b[0], e = 0, w = 0;
                    for (int k = 1; k < DET_REG_MAX; k++) mx = b[k] > mx ? b[k] : mx;
                    for (int k = 0; k < DET_REG_MAX; k++) w += expf(b[k] - mx), e += k * expf(b[k] - mx);
                    d[side] = e / w;
                }
                const float ax = x + 0.5f, ay = y + 0.5f;
                const float mine[4] = {(ax - d[0] + ax + d[2]) / 2 * stride, (ay - d[1] + ay + d[3]) / 2 * stride,
                                       (d[0] + d[2]) * stride, (d[1] + d[3]) * stride};
                for (int r = 0; r < 4; r++) db = fmax(db, fabs(mine[r] - out[(size_t)r * N + j]));
                for (int c = 0; c < nc; c++)
                    ds = fmax(ds, fabs(1 / (1 + expf(-a[4 * DET_REG_MAX + c])) - out[(size_t)(4 + c) * N + j]));
            }
    }
    printf("CHECK %.3g %.3g\n", db, ds);
    free(out);
    free(nchw);
    ort_close(s);
    inf_model_free(m);
    return 0;
}

/* ---- the parent ------------------------------------------------------------- */

#define MAX_SAMPLES 4096
#define MAX_ROUNDS 20

typedef struct result {
    int ok;
    double med, p90, p99, min;
    long rss_kb;
    char why[512];
    int n;                   /* the child's run times (ms), pooled over rounds */
    double t[MAX_SAMPLES];
} result;

static char self[4096], ort_ver[64];

static result run_child(const char *kind, const char *prec, int threads, int batch, int runs, int imgsz,
                        const char *model, const char *onnx, const char *calib)
{
    result r = {0};
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' --child %s %s %d %d %d %d '%s' '%s' '%s' 2>&1", self, kind, prec, threads, batch,
             runs, imgsz, model, onnx, calib);
    FILE *p = popen(cmd, "r");
    static char line[65536];
    snprintf(r.why, sizeof r.why, "the child printed nothing");
    while (p && fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "TIMES", 5)) {
            char *q = line + 5, *end;
            for (double v; r.n < MAX_SAMPLES && (v = strtod(q, &end), end != q); q = end) r.t[r.n++] = v;
        } else if (sscanf(line, "RESULT %lf %lf %lf %lf %ld", &r.med, &r.p90, &r.p99, &r.min, &r.rss_kb) == 5) r.ok = 1;
        else if (!strncmp(line, "SKIP ", 5)) snprintf(r.why, sizeof r.why, "%.500s", line + 5);
        else if (!strncmp(line, "VERSION ", 8)) snprintf(ort_ver, sizeof ort_ver, "%.60s", line + 8);
        else if (line[0]) fprintf(stderr, "  (%s %s, %d threads, batch %d) %s\n", kind, prec, threads, batch, line);
    }
    if (p) pclose(p);
    return r;
}

/* Random weights with a fixed seed (the graph's initialisation), saved as
 * a lupe checkpoint. */
static int random_model(const char *path, int imgsz)
{
    det_arch a;
    eng_graph *g = eng_graph_new("bench");
    int x, outs[DET_LEVELS];
    eng_graph_set_fast(g, 0);
    if (det_arch_init(&a, "n", 1, imgsz, 1) || det_build(g, &a, &x, outs) || eng_graph_plan(g, 0) ||
        det_init_bias(g, &a))
        return -1;
    eng_tensor_rec t[1024];
    int nt = eng_graph_state(g, t, 1024);
    char meta[256];
    snprintf(meta, sizeof meta,
             "{\"format\": \"lupe-detector\", \"arch\": {\"family\": \"yolov8\", \"scale\": \"n\", \"nc\": 1, "
             "\"imgsz\": %d}, \"classes\": [\"defect\"], \"note\": \"random weights, bench_infer\"}",
             imgsz);
    int rc = lupe_mkdirs("build/bench-infer") || eng_ckpt_save(path, meta, t, (size_t)nt) ? -1 : 0;
    eng_graph_free(g);
    return rc;
}

/* A calibration from random images: right for timing, not for accuracy. */
static int random_calib(const char *model, const char *path, int imgsz)
{
    inf_opts o;
    inf_opts_default(&o);
    o.imgsz = imgsz;
    inf_model *m = NULL;
    inf_calib *c = NULL;
    int rc = -1;
    if (inf_model_open(model, &o, &m) || inf_calib_new(m, &c)) goto out;
    for (int i = 0; i < 8; i++) {
        fill_random(inf_model_input(m), (size_t)imgsz * imgsz * 3, (uint64_t)i + 7);
        if (inf_calib_add(c, 1)) goto out;
    }
    rc = inf_calib_save(c, path, "bench_infer: 8 random images (for timing only)") ? -1 : 0;
out:
    inf_calib_free(c);
    inf_model_free(m);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_infer [--model CKPT|RUN] [--onnx FILE | --no-export] [--imgsz N] [--runs N] [--rounds N]\n"
                    "                   [--batch N] [--threads 1,2] [--calib FILE] [--precisions f32,bf16,int8]\n");
}

int main(int argc, char **argv)
{
    if (argc >= 11 && !strcmp(argv[1], "--child")) return child(argv + 2);
    if (argc == 5 && !strcmp(argv[1], "--check")) return check(argv[2], argv[3], atoi(argv[4]));
    const char *model = NULL, *onnx = "", *calib = NULL, *threads_s = "1,2", *precs = "f32,bf16,int8";
    int imgsz = 480, runs = 60, batch = 8, noexport = 0, rounds = 3;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v && strcmp(argv[i], "--no-export")) {
            usage();
            return 2;
        }
        if (!strcmp(argv[i], "--model")) model = v;
        else if (!strcmp(argv[i], "--onnx")) onnx = v;
        else if (!strcmp(argv[i], "--calib")) calib = v;
        else if (!strcmp(argv[i], "--imgsz")) imgsz = atoi(v);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(v);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(v);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(v);
        else if (!strcmp(argv[i], "--threads")) threads_s = v;
        else if (!strcmp(argv[i], "--precisions")) precs = v;
        else if (!strcmp(argv[i], "--no-export")) noexport = 1, i--;
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (imgsz < 32 || imgsz % 32 || runs < 1 || batch < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
        usage();
        return 2;
    }
    if (lupe_base_init()) return 1;
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) return 1;
    self[sl] = 0;

    char mpath[512], cpath[600];
    if (!model) {
        snprintf(mpath, sizeof mpath, "build/bench-infer/random-n-%d.ckpt", imgsz);
        if (random_model(mpath, imgsz)) {
            fprintf(stderr, "bench_infer: %s\n", lupe_errmsg());
            return 1;
        }
        model = mpath;
        printf("model:   YOLOv8n, 1 class, random weights (fixed seed) saved as %s\n", mpath);
    } else {
        printf("model:   %s\n", model);
    }
    if (strstr(precs, "int8")) {
        char *ck = inf_model_resolve(model), *own = ck ? inf_calib_path(ck) : NULL;
        if (calib) {
            snprintf(cpath, sizeof cpath, "%s", calib);
        } else if (own && lupe_path_exists(own)) {
            snprintf(cpath, sizeof cpath, "%s", own);
        } else {
            snprintf(cpath, sizeof cpath, "build/bench-infer/random-calib-%d.calib", imgsz);
            if (lupe_mkdirs("build/bench-infer") || random_calib(model, cpath, imgsz)) {
                fprintf(stderr, "bench_infer: calibrating: %s\n", lupe_errmsg());
                return 1;
            }
            printf("int8:    calibrated on 8 random images into %s (right for timing only)\n", cpath);
        }
        lupe_free(own);
        lupe_free(ck);
    } else {
        cpath[0] = 0;
    }
    printf("method:  each configuration in its own process, 3 warm-up runs, then timed ones: batch 1 in %d rounds\n"
           "         of %d runs, the configurations taking turns (figures pooled; '(rounds)' gives the\n"
           "         range of the per-round ratios), batch %d once (%d runs);\n"
           "         peak memory = that process's peak RSS (getrusage ru_maxrss)\n",
           rounds, runs / rounds > 3 ? runs / rounds : 3, batch, runs / 4 > 5 ? runs / 4 : 5);
    char opath[600];
    if (!*onnx && !noexport) {
        /* The ONNX file of the same weights, by lupe's exporter. */
        char *ck = inf_model_resolve(model);
        const char *base = ck ? strrchr(ck, '/') : NULL;
        snprintf(opath, sizeof opath, "build/bench-infer/%.*s.onnx",
                 base ? (int)(strcspn(base + 1, ".")) : 5, base ? base + 1 : "model");
        onnx_export_info ei;
        if (!ck || lupe_mkdirs("build/bench-infer") || onnx_export_det(ck, opath, imgsz, &ei))
            printf("onnx:    exporting %s failed: %s\n", ck ? ck : model, lupe_errmsg());
        else
            onnx = opath;
        lupe_free(ck);
    }
    printf("onnx:    %s\n", *onnx ? onnx : "none (--onnx FILE, or the export failed): ONNX Runtime not measured");
    fflush(stdout);

    if (*onnx) {
        char cmd[9000], line[1024];
        snprintf(cmd, sizeof cmd, "'%s' --check '%s' '%s' %d 2>&1", self, model, onnx, imgsz);
        FILE *p = popen(cmd, "r");
        double db = -1, ds = -1;
        while (p && fgets(line, sizeof line, p))
            if (sscanf(line, "CHECK %lf %lf", &db, &ds) != 2 && !strncmp(line, "SKIP ", 5))
                printf("check:   not made: %s", line + 5);
        if (p) pclose(p);
        if (db >= 0)
            printf("check:   lupe f32 and ONNX Runtime on one random image: boxes within %.3g px, scores within %.3g\n"
                   "         (the same weights; larger differences mean --onnx is another model)\n",
                   db, ds);
    }
    int nth = 0, th[8];
    for (const char *p = threads_s; *p && nth < 8;) {
        th[nth++] = atoi(p);
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    const char *kinds[4] = {"ort", "f32", "bf16", "int8"};
    const int per_round = runs / rounds > 3 ? runs / rounds : 3;
    static result pool[4], one;
    double rmed[4][MAX_ROUNDS];
    printf("\n%-8s %-7s %9s %9s %9s %9s %8s %13s %11s %9s %9s\n", "threads", "engine", "median", "p90", "p99", "min",
           "vs ORT", "(rounds)", "img/s (b)", "RSS b1", "RSS b");
    for (int ti = 0; ti < nth; ti++) {
        int want[4];
        for (int k = 0; k < 4; k++) {
            want[k] = k == 0 ? *onnx != 0 : strstr(precs, kinds[k]) != NULL;
            memset(&pool[k], 0, sizeof pool[k]);
            pool[k].ok = want[k];
        }
        if (want[2] && !eng_bf16_supported()) {
            printf("%-8d %-7s (this CPU has no bf16 instructions)\n", th[ti], "bf16");
            want[2] = pool[2].ok = 0;
        }
        /* Batch 1, the configurations taking turns round after round, so
         * that a slow spell of a shared machine falls on all of them. */
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < 4; k++) {
                if (!want[k] || !pool[k].ok) continue;
                one = run_child(k == 0 ? "ort" : "lupe", kinds[k], th[ti], 1, per_round, imgsz, model, onnx, cpath);
                if (!one.ok) {
                    pool[k].ok = 0;
                    snprintf(pool[k].why, sizeof pool[k].why, "%s", one.why);
                    continue;
                }
                for (int i = 0; i < one.n && pool[k].n < MAX_SAMPLES; i++) pool[k].t[pool[k].n++] = one.t[i];
                if (one.rss_kb > pool[k].rss_kb) pool[k].rss_kb = one.rss_kb;
                rmed[k][r] = one.med;
            }
        for (int k = 0; k < 4; k++) {
            if (!want[k]) continue;
            result *p = &pool[k];
            if (!p->ok || !p->n) {
                printf("%-8d %-7s not measured: %s\n", th[ti], k == 0 ? "ORT" : kinds[k], p->why);
                continue;
            }
            qsort(p->t, (size_t)p->n, sizeof *p->t, cmp_d);
            p->med = quantile(p->t, p->n, 0.5), p->p90 = quantile(p->t, p->n, 0.9);
            p->p99 = quantile(p->t, p->n, 0.99), p->min = p->t[0];
            one = run_child(k == 0 ? "ort" : "lupe", kinds[k], th[ti], batch, runs / 4 > 5 ? runs / 4 : 5, imgsz, model,
                            onnx, cpath);
            char ratio[32] = "", span[40] = "", tput[32] = "-", rssb[32] = "-";
            if (k > 0 && pool[0].ok && pool[0].n) {
                double lo = 1e30, hi = 0;
                for (int r = 0; r < rounds; r++) {
                    double x = rmed[k][r] / rmed[0][r];
                    lo = x < lo ? x : lo, hi = x > hi ? x : hi;
                }
                snprintf(ratio, sizeof ratio, "%.2fx", p->med / pool[0].med);
                snprintf(span, sizeof span, "%.2f-%.2f", lo, hi);
            }
            if (one.ok) {
                snprintf(tput, sizeof tput, "%.1f (%d)", batch * 1000.0 / one.med, batch);
                snprintf(rssb, sizeof rssb, "%.0f MiB", one.rss_kb / 1024.0);
            }
            printf("%-8d %-7s %6.2f ms %6.2f ms %6.2f ms %6.2f ms %8s %13s %11s %5.0f MiB %9s\n", th[ti],
                   k == 0 ? "ORT" : kinds[k], p->med, p->p90, p->p99, p->min, ratio, span, tput, p->rss_kb / 1024.0,
                   rssb);
            if (!one.ok && k == 0) printf("%-8s %-7s batch %d not measured: %s\n", "", "ORT", batch, one.why);
            fflush(stdout);
        }
    }
    printf("\ntargets (median latency at the same thread count): f32 <= 0.90x ORT, bf16 <= 0.50x, int8 <= 0.35x\n");
    if (ort_ver[0]) printf("ONNX Runtime %s\n", ort_ver);
    return 0;
}
