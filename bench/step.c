/*
 * bench_step: one full training step (forward, backward, SGD update) of a
 * YOLOv8 network built by det_build, timed against the same network in
 * PyTorch 1.13 (bench/torch_step.py, channels-last, same threads and
 * batch) measured in the same run, with both peak memories.
 *
 *   build/release/bin/bench_step [--scale n] [--imgsz 480] [--batch 16] [--steps 5] [--threads 0] [--torch 1]
 *
 * --torch 0 skips PyTorch (half the run's time) when only lupe's figures
 * are wanted, e.g. comparing two lupe builds.
 * Prints figures and ratios; nothing here is asserted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lupe/det.h"

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

static long peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

int main(int argc, char **argv)
{
    const char *scale = "n";
    int imgsz = 480, batch = 16, steps = 5, threads = 0, torch = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--scale")) scale = argv[i + 1];
        else if (!strcmp(argv[i], "--imgsz")) imgsz = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--torch")) torch = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_step [--scale n|s] [--imgsz N] [--batch N] [--steps N] [--threads N] "
                            "[--torch 0|1]\n");
            return 2;
        }
    }
    if (lupe_base_init()) return 1;
    eng_set_threads(threads);
    int nthreads = eng_get_threads();
    /* PyTorch first, same network, threads and batch, in the same run:
     * before lupe has started its own threads, which would otherwise
     * compete with it for the cores (measured: 6.0 s instead of 1.5 s). */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/torch_step.py %s %d %d %d %d 2>&1", scale, imgsz, batch,
             eng_get_threads(), steps);
    FILE *p = torch ? popen(cmd, "r") : NULL;
    char line[512] = "";
    double torch_ms = 0, torch_rss = 0;
    long tparams = 0;
    while (p && fgets(line, sizeof line, p))
        if (sscanf(line, "params=%ld step_ms=%lf min_ms=%*f peak_rss_mb=%lf", &tparams, &torch_ms, &torch_rss) == 3)
            break;
    if (p) pclose(p);

    det_arch a;
    if (det_arch_init(&a, scale, 1, imgsz, batch)) {
        fprintf(stderr, "bench_step: %s\n", lupe_errmsg());
        return 2;
    }
    eng_graph *g = eng_graph_new("bench");
    int x, outs[DET_LEVELS];
    double t0 = now_ms();
    if (det_build(g, &a, &x, outs) || eng_graph_plan(g, 1)) {
        fprintf(stderr, "bench_step: %s\n", lupe_errmsg());
        return 1;
    }
    double t_plan = now_ms() - t0;
    const eng_param *params = NULL;
    int np = eng_graph_params(g, &params);
    size_t nparam = 0;
    for (int i = 0; i < np; i++) nparam += params[i].n;
    eng_optim_cfg oc = {.kind = ENG_SGD, .nesterov = 1, .weight_decay = 5e-4f};
    eng_optim *opt = NULL;
    if (eng_optim_new(&oc, params, np, &opt)) {
        fprintf(stderr, "bench_step: %s\n", lupe_errmsg());
        return 1;
    }
    /* Fixed inputs and output gradients, as the PyTorch side uses. */
    int s[4];
    eng_graph_shape(g, x, s);
    uint64_t seed = 1;
    float *in = eng_g_data(g, x);
    for (size_t i = 0; i < (size_t)s[0] * s[1] * s[2] * s[3]; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        in[i] = (float)(seed >> 40) / 16777216.0f;
    }
    const char *prec = getenv("LUPE_PRECISION");
    int bf16 = eng_bf16_supported() && !(prec && strcmp(prec, "f32") == 0);
    printf("lupe: YOLOv8%s, %dx%d, batch %d, %d threads, %zu parameters, arena %.0f MiB (planned in %.0f ms), "
           "convolutions in %s (LUPE_PRECISION=f32|bf16 to choose)\n",
           scale, imgsz, imgsz, batch, nthreads, nparam, eng_graph_arena_bytes(g) / 1048576.0, t_plan,
           bf16 ? "bf16, f32 master weights" : "f32");
    const float lr[ENG_NGROUPS] = {0.01f, 0.01f, 0.01f};
    double *times = calloc((size_t)steps + 1, sizeof *times);
    double fwd = 0, bwd = 0;
    for (int it = 0; it <= steps; it++) {
        double a0 = now_ms();
        eng_optim_zero_grad(opt);
        eng_graph_forward(g, 1);
        double a1 = now_ms();
        for (int l = 0; l < DET_LEVELS; l++) {
            eng_graph_shape(g, outs[l], s);
            float *go = eng_g_grad(g, outs[l]);
            for (size_t i = 0; i < (size_t)s[0] * s[1] * s[2] * s[3]; i++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                go[i] = ((float)(seed >> 40) / 16777216.0f - 0.5f) * 2e-3f;
            }
        }
        eng_graph_backward(g);
        double a2 = now_ms();
        eng_optim_step(opt, lr, 0.937f);
        double a3 = now_ms();
        if (it) { /* the first step warms up */
            times[it - 1] = a3 - a0;
            fwd += a1 - a0, bwd += a2 - a1;
        }
        fprintf(stderr, "  step %d: %.0f ms (forward %.0f, backward %.0f, update %.0f)\n", it, a3 - a0, a1 - a0,
                a2 - a1, a3 - a2);
    }
    qsort(times, (size_t)steps, sizeof *times, cmp_d);
    double lupe_ms = times[steps / 2];
    long lupe_rss = peak_rss_mb();
    printf("lupe:    step %.0f ms median of %d (min %.0f; forward %.0f, backward %.0f), %.1f images/s, peak RSS %ld MiB\n",
           lupe_ms, steps, times[0], fwd / steps, bwd / steps, batch * 1000.0 / lupe_ms, lupe_rss);
    fflush(stdout);

    if (torch_ms > 0) {
        printf("pytorch: step %.0f ms median of %d, %.1f images/s, peak RSS %.0f MiB (%ld parameters)\n", torch_ms,
               steps, batch * 1000.0 / torch_ms, torch_rss, tparams);
        printf("ratio:   lupe is %.2fx PyTorch's speed; peak memory %.2fx PyTorch's\n", torch_ms / lupe_ms,
               (double)lupe_rss / torch_rss);
    } else if (!torch) {
        printf("pytorch: not measured (--torch 0)\n");
    } else {
        printf("pytorch: not measured (install Debian's python3-torch; its output: %s)\n", line);
    }
    free(times);
    eng_optim_free(opt);
    eng_graph_free(g);
    return 0;
}
