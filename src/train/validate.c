/*
 * Validation: the detector graph in inference mode over a split, detections
 * decoded and suppressed, matched against the ground truth by the
 * evaluation library; optional validation losses and prediction previews.
 * Also the model helpers the trainer and `lupe val` share.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "lupe/dataset.h"
#include "lupe/img.h"
#include "train/train_internal.h"


lupe_status trn__model_build(trn__model *m, const char *scale, int nc, int imgsz, int batch, int training,
                             int precision)
{
    memset(m, 0, sizeof *m);
    lupe_status st = det_arch_init(&m->a, scale, nc, imgsz, batch);
    if (st) return st;
    m->g = eng_graph_new(training ? "train" : "infer");
    if (!m->g) return LUPE_ENOMEM;
    eng_graph_set_precision(m->g, precision);
    if ((st = det_build(m->g, &m->a, &m->x, m->outs)) || (st = eng_graph_plan(m->g, training)) ||
        (st = det_init_bias(m->g, &m->a)))
        return st;
    const eng_param *p = NULL;
    int max = eng_graph_params(m->g, &p) * 3 + 8;
    m->state = lupe_calloc((size_t)max, sizeof *m->state);
    if (!m->state) return LUPE_ENOMEM;
    m->nstate = eng_graph_state(m->g, m->state, max);
    return LUPE_OK;
}

void trn__model_cleanup(trn__model *m)
{
    eng_graph_free(m->g);
    lupe_free(m->state);
    memset(m, 0, sizeof *m);
}

lupe_status trn__model_load(trn__model *m, const eng_ckpt *c, const char *prefix)
{
    char name[256];
    for (int i = 0; i < m->nstate; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, m->state[i].name);
        const eng_tensor_rec *r = eng_ckpt_find(c, name);
        if (!r) return lupe_err(LUPE_EFORMAT, "the checkpoint has no tensor '%s'", name);
        if (r->n != m->state[i].n)
            return lupe_err(LUPE_EFORMAT, "tensor '%s' has %zu values in the checkpoint, the model needs %zu", name,
                            r->n, m->state[i].n);
        memcpy(m->state[i].data, r->data, r->n * sizeof(float));
    }
    return LUPE_OK;
}

char *trn__ckpt_meta(const trn__model *m, char *const *classes, int nc, const char *extra_json)
{
    json_t *j = extra_json ? json_loads(extra_json, 0, NULL) : NULL;
    if (!j) j = json_object();
    json_t *cls = json_array();
    for (int i = 0; i < nc; i++) json_array_append_new(cls, json_string(classes[i]));
    char scale[2] = {m->a.scale, 0};
    json_object_set_new(j, "format", json_string("lupe-detector"));
    json_object_set_new(j, "arch", json_pack("{s:s, s:s, s:i, s:i}", "family", "yolov8", "scale", scale, "nc", m->a.nc,
                                             "imgsz", m->a.imgsz));
    json_object_set_new(j, "classes", cls);
    char *s = lupe_json_dump(j, 1);
    json_decref(j);
    return s;
}

/* Draws up to 16 images of a batch, ground truth and detections over 0.25
 * (eval_draw_boxes), into one JPEG grid. */
static lupe_status write_preview(const char *path, const float *images, int n, int imgsz, const det_box *gt, int ngt,
                                 det_pred *const *preds, const int *npred, char *const *names)
{
    lupe_img *tiles[16] = {0}, *grid = NULL;
    det_box mine[256];
    lupe_status st = LUPE_OK;
    for (int b = 0; b < n && !st; b++) {
        lupe_img *t = lupe_img_new(imgsz, imgsz, 3);
        if (!t) {
            st = LUPE_ENOMEM;
            break;
        }
        tiles[b] = t;
        const float *src = images + (size_t)b * imgsz * imgsz * 3;
        for (size_t i = 0; i < (size_t)imgsz * imgsz * 3; i++) {
            float v = src[i] * 255.0f + 0.5f;
            t->data[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        int gn = 0;
        for (int i = 0; i < ngt && gn < 256; i++)
            if (gt[i].img == b) mine[gn++] = gt[i];
        eval_draw_boxes(t, mine, gn, preds[b], npred[b], 0.25f, (const char *const *)names);
    }
    if (!st) st = eval_montage((const lupe_img *const *)tiles, NULL, n, n < 4 ? n : 4, imgsz, &grid);
    if (!st) st = lupe_img_save(grid, path);
    lupe_img_free(grid);
    for (int b = 0; b < 16; b++) lupe_img_free(tiles[b]);
    return st;
}

#define VAL_MAX_DET 300

lupe_status trn__eval_loader(const trn__model *m, int workers, const trn_sample *s, int n, trn_loader **out)
{
    trn_loader_cfg lc;
    trn_loader_cfg_default(&lc);
    lc.imgsz = m->a.imgsz, lc.batch = m->a.batch, lc.workers = workers, lc.augment = 0;
    return trn_loader_new(&lc, s, n, out);
}

lupe_status trn__validate(trn__model *m, trn_loader *vl, det_loss *loss, char *const *names, int nc, float conf,
                          float iou, const char *dir, int what, eval_result *res, trn__vstats *vs)
{
    const char *preview_dir = dir && (what & TRN__PREVIEW) ? dir : NULL;
    eval_ctx *e = NULL;
    memset(res, 0, sizeof *res);
    memset(vs, 0, sizeof *vs);
    double t0 = lupe_time_mono();
    int B = m->a.batch;
    det_pred *preds[16] = {0};
    int npred[16] = {0};
    float *shown = NULL; /* the first batch's pixels, for the preview */
    det_pred *buf = lupe_malloc(sizeof *buf * VAL_MAX_DET * (size_t)B);
    enum { cap = 4096 };
    det_box *mine = lupe_malloc(sizeof *mine * cap);
    lupe_status st = !buf || !mine ? LUPE_ENOMEM : eval_new(nc, (const char *const *)names, &e);
    if (!st && dir && what) st = lupe_mkdirs(dir);
    if (st) goto out;
    for (int b = 0; b < B && b < 16; b++) preds[b] = buf + (size_t)b * VAL_MAX_DET;
    float *in = eng_g_data(m->g, m->x);
    const float *outs[DET_LEVELS];
    for (int l = 0; l < DET_LEVELS; l++) outs[l] = eng_g_data(m->g, m->outs[l]);
    trn_loader_epoch(vl, 0, 0);
    for (int batch = 0;; batch++) {
        const det_box *gt = NULL;
        int ngt = 0;
        int n = trn_loader_next(vl, in, &gt, &ngt, NULL);
        if (n < 0) {
            st = lupe_err_ctx(LUPE_EIO, "validation");
            goto out;
        }
        if (n == 0) break;
        /* The inference plan reuses the input's memory for later
         * activations: keep the first batch's pixels for the preview. */
        if (batch == 0 && preview_dir) {
            size_t len = (size_t)(n < 16 ? n : 16) * m->a.imgsz * m->a.imgsz * 3;
            if (!(shown = lupe_malloc(len * sizeof *shown))) {
                st = LUPE_ENOMEM;
                goto out;
            }
            memcpy(shown, in, len * sizeof *shown);
        }
        eng_graph_forward(m->g, 0);
        if (loss) {
            det_loss_parts parts;
            if ((st = det_loss_compute_n(loss, outs, NULL, gt, ngt, n, &parts))) goto out;
            vs->box += parts.box * n, vs->cls += parts.cls * n, vs->dfl += parts.dfl * n;
        }
        for (int b = 0; b < n; b++) {
            det_pred *p = buf + (size_t)(b < 16 ? b : 0) * VAL_MAX_DET;
            int np = det_detect(&m->a, outs, b, conf, iou, VAL_MAX_DET, p);
            if (np < 0) {
                st = LUPE_EIO;
                goto out;
            }
            int gn = 0;
            for (int i = 0; i < ngt; i++)
                if (gt[i].img == b) {
                    if (gn == cap) {
                        st = lupe_err(LUPE_ELIMIT, "validation: more than %d boxes in one image", cap);
                        goto out;
                    }
                    mine[gn++] = gt[i];
                }
            if ((st = eval_add(e, p, np, mine, gn))) goto out;
            if (b < 16) npred[b] = np;
        }
        if (shown) {
            char *path = lupe_path_join(preview_dir, "val_preview.jpg");
            st = path ? write_preview(path, shown, n < 16 ? n : 16, m->a.imgsz, gt, ngt, preds, npred, names)
                      : LUPE_ENOMEM;
            lupe_free(path);
            lupe_free(shown);
            shown = NULL;
            if (st) goto out;
        }
        vs->images += n;
    }
    if (vs->images) vs->box /= vs->images, vs->cls /= vs->images, vs->dfl /= vs->images;
    if ((st = eval_compute(e, res))) goto out;
    if (dir && (what & TRN__PLOTS)) st = eval_plots(e, res, dir);
out:
    eval_free(e);
    vs->seconds = lupe_time_mono() - t0;
    lupe_free(buf);
    lupe_free(mine);
    lupe_free(shown);
    return st;
}

void trn_val_cfg_default(trn_val_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->split = 2; /* LUPE_SPLIT_TEST */
    c->batch = 16;
    c->conf = 0.001f, c->iou = 0.7f;
    c->precision = ENG_PREC_AUTO;
}

/* Architecture and classes from a checkpoint's metadata. */
static lupe_status ckpt_arch(const eng_ckpt *ck, const char *path, char *scale, int *nc, int *imgsz, char ***classes)
{
    json_error_t je;
    json_t *m = json_loads(ck->meta, 0, &je), *cls = NULL;
    const char *sc = NULL, *fmt = NULL;
    lupe_status st = LUPE_OK;
    if (!m || json_unpack(m, "{s:s, s:{s:s, s:i, s:i}, s:o}", "format", &fmt, "arch", "scale", &sc, "nc", nc, "imgsz",
                          imgsz, "classes", &cls) ||
        strcmp(fmt, "lupe-detector") || !json_is_array(cls) || (int)json_array_size(cls) != *nc || *nc <= 0) {
        json_decref(m);
        return lupe_err(LUPE_EFORMAT, "%s: not a lupe detector checkpoint (metadata lacks format, arch or classes)",
                        path);
    }
    scale[0] = sc[0], scale[1] = 0;
    *classes = lupe_calloc((size_t)*nc, sizeof **classes);
    for (int i = 0; *classes && i < *nc; i++) {
        const char *s = json_string_value(json_array_get(cls, (size_t)i));
        if (!((*classes)[i] = lupe_strdup(s ? s : "?"))) st = LUPE_ENOMEM;
    }
    if (!*classes) st = LUPE_ENOMEM;
    json_decref(m);
    return st;
}

/* What evaluating or running a checkpoint on a split needs: the
 * checkpoint, its classes, the data, an inference graph with the weights
 * loaded and a letterbox loader over the split. */
typedef struct split_run {
    char *path;
    eng_ckpt *ck;
    trn_data *d;
    trn__model m;
    trn_loader *l;
    char **classes;
    int nc;
} split_run;

static void split_run_close(split_run *v)
{
    if (v->classes)
        for (int i = 0; i < v->nc; i++) lupe_free(v->classes[i]);
    lupe_free(v->classes);
    trn_loader_free(v->l);
    trn__model_cleanup(&v->m);
    trn_data_free(v->d);
    eng_ckpt_free(v->ck);
    lupe_free(v->path);
    memset(v, 0, sizeof *v);
}

static lupe_status split_run_open(const trn_val_cfg *c, split_run *v)
{
    memset(v, 0, sizeof *v);
    struct stat sb;
    v->path = stat(c->weights, &sb) == 0 && S_ISDIR(sb.st_mode) ? lupe_path_join(c->weights, "weights/best.ckpt")
                                                                   : lupe_strdup(c->weights);
    char scale[2];
    int imgsz = 0;
    lupe_status st = v->path ? eng_ckpt_load(v->path, &v->ck) : LUPE_ENOMEM;
    if (st) return st;
    if ((st = ckpt_arch(v->ck, v->path, scale, &v->nc, &imgsz, &v->classes))) return st;
    if ((st = trn_data_load(c->data, c->ws_dir, &v->d))) return st;
    if (v->d->nc != v->nc)
        return lupe_err(LUPE_EARG, "%s has %d classes, the model %s has %d", v->d->name, v->d->nc, v->path, v->nc);
    if (v->d->n[c->split] == 0)
        return lupe_err(LUPE_EARG, "%s: the %s split is empty", v->d->name, lupe_split_name(c->split));
    eng_set_threads(c->threads);
    if ((st = trn__model_build(&v->m, scale, v->nc, c->imgsz ? c->imgsz : imgsz, c->batch > 0 ? c->batch : 16, 0,
                               c->precision)) ||
        (st = trn__model_load(&v->m, v->ck, "")))
        return lupe_err_ctx(st, "%s", v->path);
    return trn__eval_loader(&v->m, 1, v->d->split[c->split], v->d->n[c->split], &v->l);
}

lupe_status trn_val(const trn_val_cfg *c, eval_result *out, char ***classes_out, int *nc_out)
{
    memset(out, 0, sizeof *out);
    *classes_out = NULL, *nc_out = 0;
    split_run v;
    lupe_status st = split_run_open(c, &v);
    trn__vstats vs;
    if (!st)
        st = trn__validate(&v.m, v.l, NULL, v.classes, v.nc, c->conf, c->iou, c->plots, TRN__PREVIEW | TRN__PLOTS,
                           out, &vs);
    if (!st) {
        *classes_out = v.classes, *nc_out = v.nc;
        v.classes = NULL;
    }
    split_run_close(&v);
    return st;
}

lupe_status trn_detect(const trn_val_cfg *c, trn_detect_fn fn, void *ud)
{
    split_run v;
    det_pred *p = NULL;
    trn_meta *meta = NULL;
    lupe_status st = split_run_open(c, &v);
    if (st) goto out;
    int B = v.m.a.batch;
    p = lupe_malloc(sizeof *p * VAL_MAX_DET);
    meta = lupe_calloc((size_t)B, sizeof *meta);
    if (!p || !meta) {
        st = LUPE_ENOMEM;
        goto out;
    }
    float *in = eng_g_data(v.m.g, v.m.x);
    const float *outs[DET_LEVELS];
    for (int l = 0; l < DET_LEVELS; l++) outs[l] = eng_g_data(v.m.g, v.m.outs[l]);
    const trn_sample *samples = v.d->split[c->split];
    trn_loader_epoch(v.l, 0, 0);
    for (int stop = 0; !stop;) {
        const det_box *gt = NULL;
        int ngt = 0;
        int n = trn_loader_next(v.l, in, &gt, &ngt, meta);
        if (n < 0) {
            st = lupe_err_ctx(LUPE_EIO, "detecting");
            goto out;
        }
        if (n == 0) break;
        eng_graph_forward(v.m.g, 0);
        for (int b = 0; b < n && !stop; b++) {
            int np = det_detect(&v.m.a, outs, b, c->conf, c->iou, VAL_MAX_DET, p);
            if (np < 0) {
                st = LUPE_EIO;
                goto out;
            }
            /* Letterboxed input pixels back to the original image's. */
            const trn_meta *mt = &meta[b];
            for (int i = 0; i < np; i++) {
                float *x[4] = {&p[i].x1, &p[i].y1, &p[i].x2, &p[i].y2};
                for (int k = 0; k < 4; k++) {
                    float lim = (float)(k % 2 ? mt->h : mt->w);
                    float o = (*x[k] - (k % 2 ? mt->pady : mt->padx)) / mt->scale;
                    *x[k] = o < 0 ? 0 : o > lim ? lim : o;
                }
            }
            stop = fn(ud, mt->index, &samples[mt->index], p, np);
        }
    }
out:
    lupe_free(p);
    lupe_free(meta);
    split_run_close(&v);
    return st;
}
