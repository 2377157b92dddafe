/*
 * int8 calibration: the f32 model runs over calibration images and every
 * activation the int8 model stores (each convolution's, add's, pooling's
 * and upsampling's output) gets its minimum, maximum and a histogram of
 * |x|, from which the 99.9, 99.99 and 99.999 percentiles are read. The
 * ranges are saved in lupe's checkpoint format (magic, version, SHA-256
 * trailer) as one 5-value tensor per activation, named as the graph node
 * that made it, with the checkpoint's SHA-256 in the metadata so that a
 * calibration is never applied to another model.
 */
#include <math.h>
#include <string.h>

#include <jansson.h>

#include "infer/infer_internal.h"

const float inf__pcts[3] = {99.9f, 99.99f, 99.999f};

#define HBINS 2048

/* Running statistics of one activation. The histogram covers [0, range)
 * in HBINS bins; range is a power of two that doubles (bins merging in
 * pairs) whenever a larger |x| comes. */
typedef struct stat_acc {
    int v;              /* value of the model */
    double min, max;
    double range;
    double *hist;
    double count;
} stat_acc;

struct inf_calib {
    inf_model *m;       /* collecting; NULL when loaded */
    stat_acc *acc;
    int nacc;
    int images, batch_n;
    inf__range *r;      /* loaded ranges */
    int nr;
    char model_sha[LUPE_SHA256_HEX];
};

lupe_status inf_calib_new(inf_model *f32, inf_calib **out)
{
    *out = NULL;
    if (f32->prec != INF_F32) return lupe_err(LUPE_EARG, "calibration runs the f32 model, not the %s one",
                                              inf_precision_name(f32->prec));
    inf_calib *c = lupe_calloc(1, sizeof *c);
    if (!c) return LUPE_ENOMEM;
    c->m = f32;
    snprintf(c->model_sha, sizeof c->model_sha, "%s", f32->sha);
    int n = 0;
    for (int i = 0; i < f32->ns; i++) n += f32->s[i].observe;
    c->acc = lupe_calloc((size_t)(n ? n : 1), sizeof *c->acc);
    c->r = lupe_calloc((size_t)(n ? n : 1), sizeof *c->r);
    if (!c->acc || !c->r) goto oom;
    for (int i = 0; i < f32->ns; i++) {
        if (!f32->s[i].observe) continue;
        stat_acc *a = &c->acc[c->nacc++];
        a->v = f32->s[i].out;
        a->min = INFINITY, a->max = -INFINITY;
        if (!(a->hist = lupe_calloc(HBINS, sizeof *a->hist))) goto oom;
    }
    *out = c;
    return LUPE_OK;
oom:
    inf_calib_free(c);
    return LUPE_ENOMEM;
}

void inf_calib_free(inf_calib *c)
{
    if (!c) return;
    for (int i = 0; i < c->nacc; i++) lupe_free(c->acc[i].hist);
    lupe_free(c->acc);
    lupe_free(c->r);
    lupe_free(c);
}

int inf_calib_images(const inf_calib *c)
{
    return c->images;
}

static void grow_range(stat_acc *a, double amax)
{
    if (a->range == 0) {
        a->range = 1.0 / 1024;
        while (a->range <= amax) a->range *= 2;
        return;
    }
    int k = 0;
    while (a->range <= amax) a->range *= 2, k++;
    if (!k) return;
    for (int i = 0; i < HBINS; i++) {
        double h = a->hist[i];
        a->hist[i] = 0;
        a->hist[i >> k] += h;
    }
}

/* Adds the first n images of value v to a. */
static void observe(stat_acc *a, const inf__view *w, int n)
{
    const size_t rows = (size_t)n * w->h * w->w;
    double mn = a->min, mx = a->max;
    for (size_t r = 0; r < rows; r++) {
        const float *x = (const float *)w->p + r * (size_t)w->ld;
        for (int k = 0; k < w->c; k++) {
            if (x[k] < mn) mn = x[k];
            if (x[k] > mx) mx = x[k];
        }
    }
    a->min = mn, a->max = mx;
    grow_range(a, fmax(fabs(mn), fabs(mx)));
    const double scale = HBINS / a->range;
    for (size_t r = 0; r < rows; r++) {
        const float *x = (const float *)w->p + r * (size_t)w->ld;
        for (int k = 0; k < w->c; k++) {
            int b = (int)(fabsf(x[k]) * scale);
            a->hist[b < HBINS ? b : HBINS - 1] += 1;
        }
    }
    a->count += (double)rows * w->c;
}

static lupe_status hook(void *ctx, const inf_model *m, int step)
{
    inf_calib *c = ctx;
    if (!m->s[step].observe) return LUPE_OK;
    for (int i = 0; i < c->nacc; i++)
        if (c->acc[i].v == m->s[step].out) {
            inf__view w = inf__view_of(m, c->acc[i].v);
            observe(&c->acc[i], &w, c->batch_n);
            break;
        }
    return LUPE_OK;
}

/* The smallest bin edge below which a fraction p of the values lies. */
static float percentile(const stat_acc *a, double p)
{
    const double want = a->count * p / 100.0;
    double cum = 0;
    for (int i = 0; i < HBINS; i++) {
        cum += a->hist[i];
        if (cum >= want) {
            double edge = (i + 1) * a->range / HBINS, amax = fmax(fabs(a->min), fabs(a->max));
            return (float)(edge < amax ? edge : amax);
        }
    }
    return (float)fmax(fabs(a->min), fabs(a->max));
}

/* The ranges of what was collected so far, in c->r (kept current after
 * every batch, so a collecting calibration serves a compile directly). */
static void ranges_update(inf_calib *c)
{
    for (int i = 0; i < c->nacc; i++) {
        const stat_acc *a = &c->acc[i];
        inf__range *d = &c->r[i];
        snprintf(d->name, sizeof d->name, "%s", c->m->v[a->v].name);
        d->min = (float)a->min, d->max = (float)a->max;
        for (int k = 0; k < 3; k++) d->p[k] = percentile(a, inf__pcts[k]);
    }
    c->nr = c->nacc;
}

lupe_status inf_calib_add(inf_calib *c, int n)
{
    if (!c->m) return lupe_err(LUPE_EARG, "a loaded calibration cannot collect");
    if (n < 1 || n > c->m->a.batch) return lupe_err(LUPE_EARG, "calibration: %d images in a batch of %d", n, c->m->a.batch);
    c->batch_n = n;
    lupe_status st = inf__run(c->m, hook, c);
    if (st) return st;
    c->images += n;
    ranges_update(c);
    return LUPE_OK;
}

lupe_status inf_calib_save(const inf_calib *c, const char *path, const char *source)
{
    if (!c->m || c->images == 0) return lupe_err(LUPE_EARG, "calibration: no images were added");
    const inf_model *m = c->m;
    eng_tensor_rec *t = lupe_calloc((size_t)(c->nr ? c->nr : 1), sizeof *t);
    float *vals = lupe_calloc((size_t)(c->nr ? c->nr : 1) * 5, sizeof *vals);
    json_t *j = json_object();
    char *meta = NULL;
    lupe_status st = LUPE_OK;
    if (!t || !vals || !j) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (int i = 0; i < c->nr; i++) {
        const inf__range *r = &c->r[i];
        float *v = vals + 5 * i;
        v[0] = r->min, v[1] = r->max;
        for (int k = 0; k < 3; k++) v[2 + k] = r->p[k];
        t[i] = (eng_tensor_rec){.name = (char *)(uintptr_t)r->name, .ndim = 1, .dims = {5}, .n = 5, .data = v};
    }
    char scale[2] = {m->a.scale, 0};
    json_object_set_new(j, "format", json_string("lupe-calibration"));
    json_object_set_new(j, "version", json_integer(1));
    json_object_set_new(j, "model_sha256", json_string(c->model_sha));
    json_object_set_new(j, "arch", json_pack("{s:s, s:s, s:i, s:i}", "family", "yolov8", "scale", scale, "nc", m->a.nc,
                                             "imgsz", m->a.imgsz));
    json_object_set_new(j, "images", json_integer(c->images));
    json_object_set_new(j, "source", json_string(source ? source : ""));
    json_object_set_new(j, "values", json_string("min, max, then |x| at percentiles 99.9, 99.99, 99.999"));
    if (!(meta = lupe_json_dump(j, 1))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    st = eng_ckpt_save(path, meta, t, (size_t)c->nr);
out:
    json_decref(j);
    lupe_free(meta);
    lupe_free(vals);
    lupe_free(t);
    return st;
}

lupe_status inf_calib_load(const char *path, inf_calib **out)
{
    *out = NULL;
    if (!lupe_path_exists(path)) return lupe_err(LUPE_ENOTFOUND, "%s: no such calibration file", path);
    eng_ckpt *ck = NULL;
    inf_calib *c = NULL;
    json_t *j = NULL;
    lupe_status st = eng_ckpt_load(path, &ck);
    if (st) return st;
    json_error_t je;
    const char *fmt = NULL, *sha = NULL;
    int version = 0;
    j = json_loads(ck->meta, 0, &je);
    if (!j || json_unpack(j, "{s:s, s:i, s:s}", "format", &fmt, "version", &version, "model_sha256", &sha) ||
        strcmp(fmt, "lupe-calibration")) {
        st = lupe_err(LUPE_EFORMAT, "%s: not a lupe calibration file (metadata lacks format, version or model_sha256)",
                      path);
        goto out;
    }
    if (version != 1) {
        st = lupe_err(LUPE_EUNSUPPORTED, "%s: calibration version %d (this lupe reads 1)", path, version);
        goto out;
    }
    if (!(c = lupe_calloc(1, sizeof *c)) || !(c->r = lupe_calloc(ck->nt ? ck->nt : 1, sizeof *c->r))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    snprintf(c->model_sha, sizeof c->model_sha, "%s", sha);
    for (size_t i = 0; i < ck->nt; i++) {
        const eng_tensor_rec *r = &ck->t[i];
        if (r->n != 5 || strlen(r->name) >= INF__NAME) {
            st = lupe_err(LUPE_EFORMAT, "%s: range '%s' has %zu values, not 5", path, r->name, r->n);
            goto out;
        }
        inf__range *d = &c->r[c->nr++];
        snprintf(d->name, sizeof d->name, "%s", r->name);
        d->min = r->data[0], d->max = r->data[1];
        for (int k = 0; k < 3; k++) d->p[k] = r->data[2 + k];
        for (int k = 0; k < 5; k++)
            if (!isfinite(r->data[k])) {
                st = lupe_err(LUPE_EFORMAT, "%s: range '%s' holds a value that is not finite", path, r->name);
                goto out;
            }
    }
    *out = c;
    c = NULL;
out:
    json_decref(j);
    eng_ckpt_free(ck);
    inf_calib_free(c);
    return st;
}

const inf__range *inf__calib_find(const inf_calib *c, const char *name)
{
    if (!c) return NULL;
    for (int i = 0; i < c->nr; i++)
        if (!strcmp(c->r[i].name, name)) return &c->r[i];
    return NULL;
}

lupe_status inf__calib_check(const inf_calib *c, const char *model_sha, const char *path)
{
    if (!model_sha[0] || !strcmp(c->model_sha, model_sha)) return LUPE_OK;
    return lupe_err(LUPE_EVERIFY,
                    "%s was made for another model (SHA-256 %.12s..., this one is %.12s...): calibrate again", path,
                    c->model_sha, model_sha);
}

char *inf_calib_path(const char *ckpt_path)
{
    size_t n = strlen(ckpt_path);
    if (n > 5 && !strcmp(ckpt_path + n - 5, ".ckpt")) return lupe_asprintf("%.*s.calib", (int)(n - 5), ckpt_path);
    return lupe_asprintf("%s.calib", ckpt_path);
}

/* ---- layer-by-layer comparison -------------------------------------------- */

typedef struct trace_val {
    char name[INF__NAME];
    float *x;           /* a's value, as floats, dense */
    size_t n;
} trace_val;

typedef struct trace {
    trace_val *t;
    int n, cap;
    FILE *f;
    int pass;           /* 0: recording a, 1: comparing b */
    lupe_status st;
} trace;

static void view_floats(const inf__view *w, float *dst)
{
    const size_t rows = (size_t)w->n * w->h * w->w;
    for (size_t r = 0; r < rows; r++)
        inf__to_f32(dst + r * w->c, (const char *)w->p + r * (size_t)w->ld * inf__dsize(w->dt), w->dt, w->scale, w->c);
}

static lupe_status trace_hook(void *ctx, const inf_model *m, int step)
{
    trace *tr = ctx;
    const inf__step *s = &m->s[step];
    if (!s->observe) return LUPE_OK;
    const inf__val *v = &m->v[s->out];
    inf__view w = inf__view_of(m, s->out);
    const size_t n = (size_t)w.n * w.h * w.w * w.c;
    if (tr->pass == 0) {
        if (tr->n == tr->cap) {
            int nc = tr->cap ? 2 * tr->cap : 64;
            trace_val *t = lupe_realloc(tr->t, (size_t)nc * sizeof *t);
            if (!t) return LUPE_ENOMEM;
            tr->t = t, tr->cap = nc;
        }
        trace_val *t = &tr->t[tr->n];
        if (!(t->x = lupe_malloc(n * sizeof *t->x))) return LUPE_ENOMEM;
        snprintf(t->name, sizeof t->name, "%s", v->name);
        t->n = n;
        tr->n++;
        view_floats(&w, t->x);
        return LUPE_OK;
    }
    for (int i = 0; i < tr->n; i++) {
        if (strcmp(tr->t[i].name, v->name) || tr->t[i].n != n) continue;
        float *y = lupe_malloc(n * sizeof *y);
        if (!y) return LUPE_ENOMEM;
        view_floats(&w, y);
        double se = 0, sa = 0, mx = 0, amax = 0;
        for (size_t k = 0; k < n; k++) {
            double d = (double)y[k] - tr->t[i].x[k];
            se += d * d, sa += (double)tr->t[i].x[k] * tr->t[i].x[k];
            if (fabs(d) > mx) mx = fabs(d);
            if (fabs(tr->t[i].x[k]) > amax) amax = fabs(tr->t[i].x[k]);
        }
        fprintf(tr->f, "%-28s %4s %-5s scale %-9.4g |x| max %-9.4g  rel rms err %-9.3g max err %.4g\n", v->name,
                inf__dt_name(v->dt), "", (double)(v->dt == INF__S8 || v->dt == INF__U8 ? v->scale : 0), amax,
                sa > 0 ? sqrt(se / sa) : 0.0, mx);
        lupe_free(y);
        break;
    }
    return LUPE_OK;
}

lupe_status inf_model_trace(inf_model *ref, inf_model *m, FILE *f)
{
    if (ref->a.batch != m->a.batch || ref->a.imgsz != m->a.imgsz)
        return lupe_err(LUPE_EARG, "trace: the two models differ in batch or size");
    const size_t n = (size_t)m->a.batch * m->a.imgsz * m->a.imgsz * 3;
    float *in = lupe_malloc(n * sizeof *in);
    trace tr = {.f = f};
    lupe_status st = in ? LUPE_OK : LUPE_ENOMEM;
    if (!st) {
        memcpy(in, inf_model_input(ref), n * sizeof *in);
        st = inf__run(ref, trace_hook, &tr);
    }
    if (!st) {
        memcpy(inf_model_input(m), in, n * sizeof *in);
        tr.pass = 1;
        st = inf__run(m, trace_hook, &tr);
    }
    for (int i = 0; i < tr.n; i++) lupe_free(tr.t[i].x);
    lupe_free(tr.t);
    lupe_free(in);
    return st;
}

lupe_status inf_calib_add_files(inf_calib *c, const char *const *paths, int n)
{
    if (!c->m) return lupe_err(LUPE_EARG, "a loaded calibration cannot collect");
    const int B = c->m->a.batch, S = c->m->a.imgsz;
    float *in = inf_model_input(c->m);
    lupe_status st = LUPE_OK;
    for (int i = 0; i < n && !st;) {
        int k = 0;
        for (; k < B && i < n && !st; k++, i++) {
            lupe_img *im = NULL;
            st = lupe_img_load(paths[i], 3, NULL, &im);
            if (!st) st = inf_letterbox_image(im, S, in + (size_t)k * S * S * 3, NULL);
            if (st) st = lupe_err_ctx(st, "calibration image %s", paths[i]);
            lupe_img_free(im);
        }
        if (!st) st = inf_calib_add(c, k);
    }
    return st;
}
