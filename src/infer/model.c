/*
 * Inference models: opening a checkpoint (the seam where registry versions,
 * packages and ONNX files will join), compiling it, running it, and the
 * accessors. The checkpoint's weights are read through a copy of the
 * detector graph built at 32 pixels (the weights do not depend on the
 * size), so opening a model never allocates the training graph's
 * activations; the structure comes from an unplanned graph at the real size.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "infer/infer_internal.h"

const char *inf__dt_name(int dt)
{
    switch (dt) {
    case INF__F32: return "f32";
    case INF__BF16: return "bf16";
    case INF__S8: return "s8";
    case INF__U8: return "u8";
    }
    return "?";
}

static const char *const prec_names[] = {"f32", "bf16", "int8"};

const char *inf_precision_name(inf_precision p)
{
    return (unsigned)p < 3 ? prec_names[p] : "?";
}

int inf_precision_parse(const char *s, inf_precision *out)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, prec_names[i])) {
            *out = (inf_precision)i;
            return 0;
        }
    return -1;
}

void inf_opts_default(inf_opts *o)
{
    memset(o, 0, sizeof *o);
    o->precision = INF_F32;
    o->batch = 1;
    o->int8_float_head = 1;
    o->int8_percentile = 0;
}

static void use_threads(int n)
{
#ifdef _OPENMP
    if (omp_get_max_threads() != n) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

void inf_model_free(inf_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->ncv; i++) inf__conv_cleanup(&m->cv[i]);
    if (m->stream) dnnl_stream_destroy(m->stream);
    if (m->eng) dnnl_engine_destroy(m->eng);
    if (m->classes)
        for (int i = 0; i < m->a.nc; i++) lupe_free(m->classes[i]);
    lupe_free(m->classes);
    lupe_free(m->v);
    lupe_free(m->b);
    lupe_free(m->s);
    lupe_free(m->cv);
    lupe_free(m->arena);
    lupe_free(m->wblock);
    lupe_free(m);
}

/* The model shell: settings and class names, before compiling. */
static lupe_status model_new(const det_arch *a, const inf_opts *o, char *const *classes, inf_model **out)
{
    *out = NULL;
    if (o->batch < 1 || o->batch > 4096) return lupe_err(LUPE_EARG, "batch %d: 1 to 4096 images per run", o->batch);
    if (o->precision == INF_BF16 && !eng_bf16_supported())
        return lupe_err(LUPE_EUNSUPPORTED, "bf16 inference needs AVX512_BF16 or AMX, which this CPU lacks");
    inf_model *m = lupe_calloc(1, sizeof *m);
    if (!m) return LUPE_ENOMEM;
    m->a = *a;
    m->a.batch = o->batch;
    m->prec = o->precision;
    m->threads = o->threads > 0 ? o->threads : eng_get_threads();
    m->float_head = o->int8_float_head;
    m->pct = o->int8_percentile;
    m->input = -1;
    if (!(m->classes = lupe_calloc((size_t)a->nc, sizeof *m->classes))) goto oom;
    for (int i = 0; i < a->nc; i++)
        if (!(m->classes[i] = classes && classes[i] ? lupe_strdup(classes[i]) : lupe_asprintf("%d", i))) goto oom;
    *out = m;
    return LUPE_OK;
oom:
    inf_model_free(m);
    return LUPE_ENOMEM;
}

lupe_status inf_model_from_graph(eng_graph *g, const det_arch *a, int input, const int outs[DET_LEVELS],
                                 const inf_opts *o, const inf_calib *calib, char *const *classes, inf_model **out)
{
    *out = NULL;
    if (o->precision == INF_INT8 && !calib) return lupe_err(LUPE_EARG, "int8 inference needs a calibration");
    inf_model *m = NULL;
    lupe_status st = model_new(a, o, classes, &m);
    if (st) return st;
    use_threads(m->threads); /* oneDNN plans each kernel for the team size it sees */
    if ((st = inf__compile(m, g, g, input, outs, calib))) {
        inf_model_free(m);
        return st;
    }
    *out = m;
    return LUPE_OK;
}

char *inf_model_resolve(const char *ref)
{
    struct stat sb;
    if (stat(ref, &sb) == 0 && S_ISDIR(sb.st_mode)) return lupe_path_join(ref, "weights/best.ckpt");
    return lupe_strdup(ref);
}

/* What a lupe checkpoint's metadata says about the detector. */
typedef struct ckpt_arch {
    char scale[2];
    int nc, imgsz;
    char **classes;
} ckpt_arch;

static void ckpt_arch_cleanup(ckpt_arch *c)
{
    if (c->classes)
        for (int i = 0; i < c->nc; i++) lupe_free(c->classes[i]);
    lupe_free(c->classes);
    memset(c, 0, sizeof *c);
}

static lupe_status read_arch(const eng_ckpt *ck, const char *path, ckpt_arch *out)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *j = json_loads(ck->meta, 0, &je), *cls = NULL;
    const char *fmt = NULL, *family = NULL, *scale = NULL;
    lupe_status st = LUPE_OK;
    if (!j || json_unpack(j, "{s:s, s:{s:s, s:s, s:i, s:i}, s:o}", "format", &fmt, "arch", "family", &family, "scale",
                          &scale, "nc", &out->nc, "imgsz", &out->imgsz, "classes", &cls) ||
        strcmp(fmt, "lupe-detector") || !json_is_array(cls)) {
        st = lupe_err(LUPE_EFORMAT, "%s: not a lupe detector checkpoint (its metadata lacks format, arch or classes)",
                      path);
        goto out;
    }
    if (strcmp(family, "yolov8") || strlen(scale) != 1) {
        st = lupe_err(LUPE_EUNSUPPORTED, "%s: architecture %s-%s is not one lupe builds", path, family, scale);
        goto out;
    }
    if (out->nc < 1 || (int)json_array_size(cls) != out->nc) {
        st = lupe_err(LUPE_EFORMAT, "%s: %d classes but %zu class names", path, out->nc, json_array_size(cls));
        out->nc = 0;
        goto out;
    }
    out->scale[0] = scale[0];
    if (!(out->classes = lupe_calloc((size_t)out->nc, sizeof *out->classes))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (int i = 0; i < out->nc; i++) {
        const char *s = json_string_value(json_array_get(cls, (size_t)i));
        if (!(out->classes[i] = lupe_strdup(s ? s : "?"))) st = LUPE_ENOMEM;
    }
out:
    json_decref(j);
    return st;
}

/* Whether ref names something other than a checkpoint or run folder, which
 * the caller resolves first: an ONNX file (inf_onnx_open), a signed package
 * (reg_package_verify, then its weights.ckpt) or a registry reference
 * (reg_get in a workspace). lupe predict does all three. */
static lupe_status not_a_checkpoint(const char *ref, const char *path)
{
    size_t n = strlen(ref);
    if (n > 5 && !strcmp(ref + n - 5, ".onnx"))
        return lupe_err(LUPE_EARG, "%s: an ONNX file, which inf_onnx_open runs", ref);
    struct stat sb;
    if (stat(ref, &sb) == 0 && S_ISDIR(sb.st_mode) && !lupe_path_exists(path)) {
        char *man = lupe_path_join(ref, "manifest.json");
        int pkg = man && lupe_path_exists(man);
        lupe_free(man);
        if (pkg) return lupe_err(LUPE_EARG, "%s: a model package: verify it, then open its weights.ckpt", ref);
        return lupe_err(LUPE_ENOTFOUND, "%s: a folder without weights/best.ckpt (not a run folder)", ref);
    }
    if (stat(ref, &sb) != 0 && strchr(ref, ':'))
        return lupe_err(LUPE_ENOTFOUND, "%s: no such file (a registry version is looked up in its workspace first)", ref);
    return LUPE_OK;
}

lupe_status inf_model_open(const char *ref, const inf_opts *o, inf_model **out)
{
    *out = NULL;
    char *path = inf_model_resolve(ref), *cpath = NULL;
    eng_ckpt *ck = NULL;
    eng_graph *gs = NULL, *gw = NULL;
    inf_calib *calib = NULL;
    inf_model *m = NULL;
    ckpt_arch ca = {0};
    lupe_status st = path ? not_a_checkpoint(ref, path) : LUPE_ENOMEM;
    if (st) goto out;
    if ((st = eng_ckpt_load(path, &ck)) || (st = read_arch(ck, path, &ca))) goto out;
    const int imgsz = o->imgsz > 0 ? o->imgsz : ca.imgsz;
    det_arch a, aw;
    int x, outs[DET_LEVELS], xw, outsw[DET_LEVELS];
    if ((st = det_arch_init(&a, ca.scale, ca.nc, imgsz, 1)) || (st = det_arch_init(&aw, ca.scale, ca.nc, 32, 1))) {
        st = lupe_err_ctx(st, "%s", path);
        goto out;
    }
    if (!(gs = eng_graph_new("infer")) || !(gw = eng_graph_new("weights"))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    eng_graph_set_fast(gw, 0);
    if ((st = det_build(gs, &a, &x, outs)) || (st = det_build(gw, &aw, &xw, outsw)) || (st = eng_graph_plan(gw, 0)) ||
        (st = eng_graph_load(gw, ck))) {
        st = lupe_err_ctx(st, "%s", path);
        goto out;
    }
    if (o->precision == INF_INT8) {
        cpath = o->calib ? lupe_strdup(o->calib) : inf_calib_path(path);
        if (!cpath) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = inf_calib_load(cpath, &calib))) {
            if (st == LUPE_ENOTFOUND)
                st = lupe_err(st, "int8 needs a calibration of %s, and %s does not exist (lupe predict --calib DATA makes one)",
                              path, cpath);
            goto out;
        }
    }
    if ((st = model_new(&a, o, ca.classes, &m))) goto out;
    snprintf(m->path, sizeof m->path, "%s", path);
    if ((st = lupe_sha256_file(path, m->sha))) goto out;
    if (calib && (st = inf__calib_check(calib, m->sha, cpath))) goto out;
    use_threads(m->threads);
    if ((st = inf__compile(m, gs, gw, x, outs, calib))) {
        st = lupe_err_ctx(st, "%s", path);
        goto out;
    }
    *out = m;
    m = NULL;
out:
    inf_model_free(m);
    inf_calib_free(calib);
    eng_graph_free(gs);
    eng_graph_free(gw);
    eng_ckpt_free(ck);
    ckpt_arch_cleanup(&ca);
    lupe_free(path);
    lupe_free(cpath);
    return st;
}

const det_arch *inf_model_arch(const inf_model *m)
{
    return &m->a;
}

char *const *inf_model_classes(const inf_model *m)
{
    return m->classes;
}

inf_precision inf_model_precision(const inf_model *m)
{
    return m->prec;
}

int inf_model_threads(const inf_model *m)
{
    return m->threads;
}

const char *inf_model_path(const inf_model *m)
{
    return m->path;
}

const char *inf__model_sha(const inf_model *m)
{
    return m->sha;
}

float *inf_model_input(inf_model *m)
{
    return (float *)inf__view_of(m, m->input).p;
}

const float *inf_model_output(const inf_model *m, int level)
{
    return (const float *)inf__view_of(m, m->outs[level]).p;
}

void inf_model_outputs(const inf_model *m, const float *outs[DET_LEVELS])
{
    for (int l = 0; l < DET_LEVELS; l++) outs[l] = inf_model_output(m, l);
}

size_t inf_model_arena_bytes(const inf_model *m)
{
    return m->arena_bytes;
}

size_t inf_model_weight_bytes(const inf_model *m)
{
    return m->wbytes;
}

int inf_model_ref_kernels(const inf_model *m)
{
    int n = 0;
    for (int i = 0; i < m->ncv; i++) n += !strncmp(m->cv[i].impl, "ref", 3);
    return n;
}

static lupe_status run_step(inf_model *m, int i)
{
    const inf__step *s = &m->s[i];
    if (s->kind == ST_CONV) return inf__conv_run(m, s->conv);
    inf__view out = inf__view_of(m, s->out), a = inf__view_of(m, s->in[0]);
    switch (s->kind) {
    case ST_COPY: inf__copy(&out, &a, m->threads); break;
    case ST_ADD: {
        inf__view b = inf__view_of(m, s->in[1]);
        inf__add(&out, &a, &b, m->threads);
        break;
    }
    case ST_POOL: inf__maxpool(&out, &a, s->k, m->threads); break;
    case ST_UP2: inf__upsample2(&out, &a, m->threads); break;
    }
    return LUPE_OK;
}

/* Denormals flushed to zero (FTZ) and read as zero (DAZ) while a model
 * runs: a SiLU of a large negative value makes denormals inside oneDNN's
 * exp, and every instruction that meets one takes a microcode assist, which
 * made int8 convolutions 2x to 4x slower on real activations. The settings
 * of the calling thread and of the OpenMP team are restored afterwards, so
 * other code (training) keeps IEEE arithmetic. */
#if defined(__x86_64__) || defined(__i386__)
#define FTZ_DAZ 0x8040u
#define MAX_TEAM 256
static unsigned csr_get(void)
{
    unsigned c;
    __asm__ volatile("stmxcsr %0" : "=m"(c));
    return c;
}
static void csr_set(unsigned c)
{
    __asm__ volatile("ldmxcsr %0" : : "m"(c));
}
static void team_ftz(int threads, unsigned char *had, int on)
{
#ifdef _OPENMP
    if (threads < 2) return;
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num();
        if (t > 0 && t < MAX_TEAM) {
            unsigned c = csr_get();
            if (on) had[t] = (c & FTZ_DAZ) == FTZ_DAZ, csr_set(c | FTZ_DAZ);
            else if (!had[t]) csr_set(c & ~FTZ_DAZ);
        }
    }
#else
    (void)threads, (void)had, (void)on;
#endif
}
#endif

lupe_status inf__run(inf_model *m, inf__hook hook, void *ctx)
{
    lupe_status st = LUPE_OK;
    use_threads(m->threads);
#if defined(__x86_64__) || defined(__i386__)
    unsigned char had[MAX_TEAM] = {0};
    const unsigned saved = csr_get();
    csr_set(saved | FTZ_DAZ);
    team_ftz(m->threads, had, 1);
#endif
    for (int i = 0; i < m->ns && !st; i++) {
        st = run_step(m, i);
        if (!st && hook) st = hook(ctx, m, i);
    }
#if defined(__x86_64__) || defined(__i386__)
    team_ftz(m->threads, had, 0);
    csr_set(saved);
#endif
    return st;
}

lupe_status inf_model_run(inf_model *m)
{
    return inf__run(m, NULL, NULL);
}

static const char *const step_names[] = {"conv", "copy", "add", "maxpool", "upsample2"};

void inf_model_describe(const inf_model *m, FILE *f)
{
    fprintf(f, "%s, batch %d, %d threads: %d steps, %d convolutions, arena %zu bytes (scratchpad %zu), weights %zu bytes\n",
            inf_precision_name(m->prec), m->a.batch, m->threads, m->ns, m->ncv, m->arena_bytes, m->sp_bytes, m->wbytes);
    for (int i = 0; i < m->ns; i++) {
        const inf__step *s = &m->s[i];
        const inf__val *o = &m->v[s->out], *a = &m->v[s->in[0]];
        fprintf(f, "%3d %-9s %-28s %3dx%-3d %4d->%-4d %s->%s", i, step_names[s->kind], o->name, o->h, o->w, a->c, o->c,
                inf__dt_name(a->dt), inf__dt_name(o->dt));
        if (o->dt == INF__S8 || o->dt == INF__U8) fprintf(f, " scale %.4g", (double)o->scale);
        if (o->ld != o->c) fprintf(f, " [%d of %d]", o->off, o->ld);
        if (s->kind == ST_CONV) {
            const inf__conv *c = &m->cv[s->conv];
            fprintf(f, " k%d s%d%s%s %s", c->d.kh, c->d.sh, c->act ? " silu" : "", c->sum ? " +residual" : "", c->impl);
        }
        fputc('\n', f);
    }
}

/* ---- per-step timing ------------------------------------------------------- */

typedef struct prof {
    double last;
    double *t;  /* per step, the fastest of the runs (or their sum: mean) */
    int mean;
} prof;

static lupe_status prof_hook(void *ctx, const inf_model *m, int step)
{
    (void)m;
    prof *p = ctx;
    double now = lupe_time_mono();
    if (p->mean) p->t[step] += now - p->last;
    else if (now - p->last < p->t[step]) p->t[step] = now - p->last;
    p->last = now;
    return LUPE_OK;
}

static int by_time_desc(const void *a, const void *b, void *ctx)
{
    const double *t = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    return t[x] < t[y] ? 1 : t[x] > t[y] ? -1 : x - y;
}

lupe_status inf_model_profile(inf_model *m, int runs, FILE *f)
{
    prof p = {0};
    int *order = NULL;
    double kind[5] = {0}, total = 0;
    lupe_status st = LUPE_OK;
    if (!(p.t = lupe_calloc((size_t)m->ns, sizeof *p.t)) || !(order = lupe_malloc((size_t)m->ns * sizeof *order))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    /* INF_PROFILE_MEAN: each step's mean time within whole runs, which
     * also counts what a step pays for the one before it (caches, a
     * thread team waking up). */
    p.mean = getenv("INF_PROFILE_MEAN") && !getenv("INF_PROFILE_REPEAT");
    for (int i = 0; i < m->ns; i++) p.t[i] = p.mean ? 0 : 1e30;
    if (getenv("INF_PROFILE_REPEAT")) {
        /* Each step repeated in place, warm: the kernel's own speed. */
        use_threads(m->threads);
#if defined(__x86_64__) || defined(__i386__)
        csr_set(csr_get() | FTZ_DAZ);
#endif
        for (int i = 0; i < m->ns && !st; i++)
            for (int r = 0; r < runs && !st; r++) {
                double t0 = lupe_time_mono();
                st = run_step(m, i);
                if (lupe_time_mono() - t0 < p.t[i]) p.t[i] = lupe_time_mono() - t0;
            }
    }
    for (int r = 0; r < runs && !st && !getenv("INF_PROFILE_REPEAT"); r++) {
        p.last = lupe_time_mono();
        st = inf__run(m, prof_hook, &p);
    }
    if (st) goto out;
    if (p.mean)
        for (int i = 0; i < m->ns; i++) p.t[i] /= runs;
    for (int i = 0; i < m->ns; i++) {
        order[i] = i;
        kind[m->s[i].kind] += p.t[i];
        total += p.t[i];
    }
    qsort_r(order, (size_t)m->ns, sizeof *order, by_time_desc, p.t);
    runs = 1; /* the figures are per-step minima: one run's worth */
    fprintf(f, "%s, batch %d, %d threads: %.3f ms, the sum of each step's %s time; by kind:",
            inf_precision_name(m->prec), m->a.batch, m->threads, 1e3 * total, p.mean ? "mean" : "fastest");
    for (int k = 0; k < 5; k++) fprintf(f, " %s %.3f ms", step_names[k], 1e3 * kind[k]);
    fprintf(f, "\n");
    for (int j = 0; j < m->ns && j < (getenv("INF_PROFILE_ALL") ? m->ns : 40); j++) {
        const int i = order[j];
        const inf__step *s = &m->s[i];
        const inf__val *o = &m->v[s->out], *a = &m->v[s->in[0]];
        fprintf(f, "  %7.3f ms %5.1f%%  %-9s %-28s %3dx%-3d %4d->%-4d %s->%s %s\n", 1e3 * p.t[i] / runs,
                100 * p.t[i] / total, step_names[s->kind], o->name, o->h, o->w, a->c, o->c, inf__dt_name(a->dt),
                inf__dt_name(o->dt), s->kind == ST_CONV ? m->cv[s->conv].impl : "");
    }
out:
    lupe_free(p.t);
    lupe_free(order);
    return st;
}
