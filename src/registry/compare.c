/*
 * Where two model versions disagree: both run over the same split, their
 * confident boxes (score >= conf) are paired per image, same class and IoU
 * >= 0.1, best pairs first; an image's disagreement is 1 - the mean IoU of
 * its pairs (0 without pairs) plus the number of boxes left unpaired. The
 * images with the most disagreement are the ones worth looking at.
 */
#include <stdlib.h>
#include <string.h>

#include "lupe/dataset.h"
#include "lupe/train.h"
#include "registry/registry_internal.h"

#define PAIR_MIN_IOU 0.1f

void reg_compare_opts_default(reg_compare_opts *o)
{
    memset(o, 0, sizeof *o);
    o->split = LUPE_SPLIT_TEST;
    o->conf = 0.25f;
    o->top = 5;
}

typedef struct image_preds {
    det_pred *p[2];
    int n[2];
    char image[LUPE_SHA256_HEX];
    int seen;
} image_preds;

typedef struct collect {
    image_preds *im;
    int cap, n;
    int which;     /* 0 = version a, 1 = version b */
    lupe_status st;
} collect;

/* An image's id from its object path (.../objects/ab/cdef...), else its
 * file name. */
static void image_name(const char *path, char out[LUPE_SHA256_HEX])
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strlen(base) == 62 && base - path >= 3 && base[-1] == '/') {
        char id[LUPE_SHA256_HEX];
        memcpy(id, base - 3, 2);
        memcpy(id + 2, base, 63);
        if (lupe_obj_id_valid(id)) {
            memcpy(out, id, LUPE_SHA256_HEX);
            return;
        }
    }
    snprintf(out, LUPE_SHA256_HEX, "%s", base);
}

static int on_image(void *ud, int index, const trn_sample *s, const det_pred *p, int np)
{
    collect *c = ud;
    if (index >= c->cap) {
        int ncap = index + 1 > c->cap * 2 ? index + 1 : c->cap * 2;
        image_preds *n = lupe_realloc(c->im, sizeof *n * (size_t)ncap);
        if (!n) {
            c->st = LUPE_ENOMEM;
            return 1;
        }
        memset(n + c->cap, 0, sizeof *n * (size_t)(ncap - c->cap));
        c->im = n, c->cap = ncap;
    }
    if (index + 1 > c->n) c->n = index + 1;
    image_preds *im = &c->im[index];
    if (!im->seen) image_name(s->path, im->image);
    im->seen = 1;
    if (np > 0) {
        if (!(im->p[c->which] = lupe_malloc(sizeof *p * (size_t)np))) {
            c->st = LUPE_ENOMEM;
            return 1;
        }
        memcpy(im->p[c->which], p, sizeof *p * (size_t)np);
    }
    im->n[c->which] = np;
    return 0;
}

typedef struct pair {
    float iou;
    int a, b;
} pair;

static int cmp_pair(const void *x, const void *y)
{
    const pair *a = x, *b = y;
    if (a->iou != b->iou) return a->iou < b->iou ? 1 : -1;
    return a->a != b->a ? a->a - b->a : a->b - b->b; /* a fixed order for equal IoUs */
}

lupe_status reg_disagree(const det_pred *a, int na, const det_pred *b, int nb, reg_disagreement *d)
{
    memset(d, 0, sizeof *d);
    d->na = na, d->nb = nb;
    size_t cap = (size_t)na * (size_t)nb, np = 0;
    pair *pairs = cap ? lupe_malloc(sizeof *pairs * cap) : NULL;
    char *used = lupe_calloc((size_t)na + (size_t)nb + 1, 1);
    if ((cap && !pairs) || !used) {
        lupe_free(pairs);
        lupe_free(used);
        return LUPE_ENOMEM;
    }
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) {
            if (a[i].cls != b[j].cls) continue;
            float iou = det_iou(&a[i], &b[j]);
            if (iou >= PAIR_MIN_IOU) pairs[np++] = (pair){iou, i, j};
        }
    /* Greedy, highest IoU first: each box is in at most one pair. */
    if (np) qsort(pairs, np, sizeof *pairs, cmp_pair);
    double sum = 0;
    for (size_t k = 0; k < np; k++) {
        if (used[pairs[k].a] || used[na + pairs[k].b]) continue;
        used[pairs[k].a] = used[na + pairs[k].b] = 1;
        sum += pairs[k].iou;
        d->matched++;
    }
    d->mean_iou = d->matched ? sum / d->matched : 0;
    d->score = (d->matched ? 1 - d->mean_iou : 0) + (na - d->matched) + (nb - d->matched);
    lupe_free(pairs);
    lupe_free(used);
    return LUPE_OK;
}

static lupe_status score_image(const image_preds *im, int index, reg_disagreement *d)
{
    lupe_status st = reg_disagree(im->p[0], im->n[0], im->p[1], im->n[1], d);
    d->index = index;
    memcpy(d->image, im->image, LUPE_SHA256_HEX);
    return st;
}

static int cmp_disagreement(const void *x, const void *y)
{
    const reg_disagreement *a = x, *b = y;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    return a->index - b->index;
}

static lupe_status run_model(lupe_ws *ws, const reg_version *v, const char *data, const reg_compare_opts *o,
                             collect *c)
{
    char *weights = reg__weights_path(ws, v);
    if (!weights) return LUPE_ENOMEM;
    trn_val_cfg vc;
    trn_val_cfg_default(&vc);
    vc.weights = weights;
    vc.data = data;
    vc.ws_dir = lupe_ws_root(ws);
    vc.split = o->split;
    vc.conf = o->conf;
    vc.threads = o->threads;
    lupe_status st = trn_detect(&vc, on_image, c);
    if (!st) st = c->st;
    lupe_free(weights);
    return st ? lupe_err_ctx(st, "running %s:%d on %s", v->group, v->version, data) : LUPE_OK;
}

lupe_status reg_compare(lupe_ws *ws, const char *ref_a, const char *ref_b, const reg_compare_opts *o,
                        reg_disagreement **out, int *nout, int *nimages)
{
    *out = NULL, *nout = 0, *nimages = 0;
    reg_version va = {0}, vb = {0};
    collect c = {0};
    char *data = NULL;
    reg_disagreement *all = NULL;
    lupe_status st;
    if ((st = reg_get(ws, ref_a, &va)) || (st = reg_get(ws, ref_b, &vb))) goto out;
    if (va.nc != vb.nc || strcmp(va.classes, vb.classes)) {
        st = lupe_err(LUPE_EARG, "%s and %s detect different classes (%s, %s)", ref_a, ref_b, va.classes, vb.classes);
        goto out;
    }
    data = o->data ? lupe_strdup(o->data) : reg__version_data(&va);
    if (!data) {
        st = o->data ? LUPE_ENOMEM
                     : lupe_err(LUPE_ENOTFOUND, "%s was trained on %s, which is gone (give the data to compare on)",
                                ref_a, va.dataset_name);
        goto out;
    }
    c.which = 0;
    if ((st = run_model(ws, &va, data, o, &c))) goto out;
    c.which = 1;
    if ((st = run_model(ws, &vb, data, o, &c))) goto out;
    if (c.n && !(all = lupe_calloc((size_t)c.n, sizeof *all))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (int i = 0; i < c.n && !st; i++) st = score_image(&c.im[i], i, &all[i]);
    if (st) goto out;
    if (c.n) qsort(all, (size_t)c.n, sizeof *all, cmp_disagreement);
    *nimages = c.n;
    *nout = c.n < o->top ? c.n : o->top;
    *out = all, all = NULL;
out:
    for (int i = 0; i < c.n; i++) lupe_free(c.im[i].p[0]), lupe_free(c.im[i].p[1]);
    lupe_free(c.im);
    lupe_free(all);
    lupe_free(data);
    reg_version_cleanup(&va);
    reg_version_cleanup(&vb);
    return st;
}
