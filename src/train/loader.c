/*
 * The training data loader: decodes every sample once into an in-memory
 * cache (in parallel, at trn_loader_new), then worker threads prepare the
 * next batches of the epoch into a ring of slots while the trainer runs its
 * step; trn_loader_next hands the batches over in order, as floats.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "train/loader_internal.h"

/* Batches prepared ahead of the consumer when workers run. Three: one being
 * consumed, one ready, one being filled. */
#define RING_SLOTS 3
#define MAX_WORKERS 64
#define MAX_IMGSZ 8192

/* One prepared batch. batch == -1: free; remaining == 0: ready. */
typedef struct slot {
    uint8_t *px;      /* cap images of imgsz * imgsz * 3 */
    det_box *boxes;   /* cap * box_cap, image j's at j * box_cap */
    int *nbox;        /* cap */
    trn_meta *meta;   /* cap */
    int batch;
    int count;        /* images in the batch */
    int remaining;    /* images not made yet */
} slot;

typedef struct worker {
    trn_loader *l;
    trn__scratch scratch;
} worker;

struct trn_loader {
    trn_loader_cfg cfg;
    int n, cap;        /* samples; images per batch (cfg.batch, at most n) */
    trn__item *items;
    int box_cap;       /* boxes one prepared image can hold */
    int nbatches;
    int *order;        /* sample of each position of the epoch */
    trn__ctx ctx;

    slot *slots;
    int nslots;
    det_box *out_boxes; /* what trn_loader_next hands out, compacted */
    trn__scratch inline_scratch;

    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* workers wait for a job */
    pthread_cond_t done_cv; /* the consumer waits for a batch, or for idle workers */
    int sync_ready;
    worker *workers;
    pthread_t *threads;
    int nthreads;
    /* Under mu: */
    int started;       /* an epoch has begun */
    int pausing;       /* trn_loader_epoch is resetting; take no job */
    int stop;
    int next_job;      /* next position of the epoch to hand to a worker */
    int out_next;      /* next batch trn_loader_next returns */
    int active;        /* workers making an image */
};

void trn_aug_default(trn_aug *a)
{
    a->hsv_h = 0.015f;
    a->hsv_s = 0.7f;
    a->hsv_v = 0.4f;
    a->translate = 0.1f;
    a->scale = 0.5f;
    a->fliplr = 0.5f;
    a->flipud = 0.0f;
    a->mosaic = 1.0f;
}

void trn_loader_cfg_default(trn_loader_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->imgsz = 480;
    c->batch = 16;
    c->workers = 2;
    c->seed = 0;
    c->augment = 1;
    trn_aug_default(&c->aug);
}

/* ---- checks -------------------------------------------------------------- */

static int in01(float v) { return isfinite(v) && v >= 0 && v <= 1; }

static lupe_status check_cfg(const trn_loader_cfg *c)
{
    if (c->imgsz < 8 || c->imgsz > MAX_IMGSZ)
        return lupe_err(LUPE_EARG, "loader: image size %d is not in 8..%d", c->imgsz, MAX_IMGSZ);
    if (c->batch < 1) return lupe_err(LUPE_EARG, "loader: batch %d is not positive", c->batch);
    if (c->workers < 0 || c->workers > MAX_WORKERS)
        return lupe_err(LUPE_EARG, "loader: workers %d is not in 0..%d", c->workers, MAX_WORKERS);
    const trn_aug *a = &c->aug;
    const struct {
        const char *name;
        float v;
    } p[] = {{"hsv_h", a->hsv_h}, {"hsv_s", a->hsv_s}, {"hsv_v", a->hsv_v},   {"translate", a->translate},
             {"fliplr", a->fliplr}, {"flipud", a->flipud}, {"mosaic", a->mosaic}};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (!in01(p[i].v)) return lupe_err(LUPE_EARG, "loader: augmentation %s = %g is not in 0..1", p[i].name, p[i].v);
    /* The scale gain must leave the smallest scale positive. */
    if (!isfinite(a->scale) || a->scale < 0 || a->scale >= 1)
        return lupe_err(LUPE_EARG, "loader: augmentation scale = %g is not in [0, 1)", a->scale);
    return LUPE_OK;
}

static lupe_status check_sample(const trn_sample *s, int i)
{
    if (!s->path) return lupe_err(LUPE_EARG, "loader: sample %d has no path", i);
    if (s->nbox < 0 || (s->nbox > 0 && !s->boxes))
        return lupe_err(LUPE_EARG, "loader: sample %d (%s): %d boxes but no box array", i, s->path, s->nbox);
    for (int k = 0; k < s->nbox; k++) {
        const det_box *b = &s->boxes[k];
        if (!isfinite(b->x1) || !isfinite(b->y1) || !isfinite(b->x2) || !isfinite(b->y2) || b->x2 < b->x1 ||
            b->y2 < b->y1)
            return lupe_err(LUPE_EARG, "loader: sample %d (%s): box %d (%g, %g, %g, %g) is not a rectangle", i,
                            s->path, k, b->x1, b->y1, b->x2, b->y2);
        if (b->cls < 0)
            return lupe_err(LUPE_EARG, "loader: sample %d (%s): box %d has class %d", i, s->path, k, b->cls);
    }
    return LUPE_OK;
}

/* ---- the cache ----------------------------------------------------------- */

/* Decodes sample i, resizes it so its long side is imgsz (box filter when
 * shrinking, bilinear when growing) and scales and clips its boxes. */
static lupe_status cache_one(const trn_sample *smp, int imgsz, trn__item *it)
{
    lupe_img *im = NULL, *rs = NULL;
    det_box *bx = NULL;
    lupe_status st = lupe_img_load(smp->path, 3, NULL, &im);
    if (st) goto out;
    int w = im->w, h = im->h;
    double r = (double)imgsz / (w > h ? w : h);
    int nw = (int)lround(w * r), nh = (int)lround(h * r);
    nw = nw < 1 ? 1 : nw > imgsz ? imgsz : nw;
    nh = nh < 1 ? 1 : nh > imgsz ? imgsz : nh;
    if (nw != w || nh != h) {
        st = lupe_img_resize(im, nw, nh, r < 1 ? LUPE_RESIZE_AREA : LUPE_RESIZE_BILINEAR, &rs);
        if (st) goto out;
        lupe_img_free(im);
        im = rs;
        rs = NULL;
    }
    if (smp->nbox > 0 && !(bx = lupe_malloc((size_t)smp->nbox * sizeof *bx))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    int nb = 0;
    for (int k = 0; k < smp->nbox; k++) {
        det_box b = smp->boxes[k];
        b.img = 0;
        b.x1 = (float)fmin(fmax(b.x1 * r, 0), nw);
        b.x2 = (float)fmin(fmax(b.x2 * r, 0), nw);
        b.y1 = (float)fmin(fmax(b.y1 * r, 0), nh);
        b.y2 = (float)fmin(fmax(b.y2 * r, 0), nh);
        /* A box wholly outside the image has nothing left to learn from. */
        if (b.x2 > b.x1 && b.y2 > b.y1) bx[nb++] = b;
    }
    it->im = im;
    it->ow = w, it->oh = h;
    it->scale = (float)r;
    it->nbox = nb;
    it->boxes = bx;
    im = NULL, bx = NULL;
out:
    lupe_img_free(im);
    lupe_img_free(rs);
    lupe_free(bx);
    return st;
}

typedef struct cache_job {
    trn_loader *l;
    const trn_sample *s;
    int next, done;
    int err_index;           /* lowest failing sample, so the report does not depend on timing */
    lupe_status err;
    char err_msg[1024];
} cache_job;

static void *cache_main(void *arg)
{
    cache_job *j = arg;
    trn_loader *l = j->l;
    pthread_mutex_lock(&l->mu);
    while (j->next < l->n) {
        int i = j->next++;
        pthread_mutex_unlock(&l->mu);
        lupe_status st = cache_one(&j->s[i], l->cfg.imgsz, &l->items[i]);
        if (st) lupe_err_ctx(st, "sample %d", i);
        pthread_mutex_lock(&l->mu);
        if (st && i < j->err_index) {
            j->err_index = i;
            j->err = st;
            snprintf(j->err_msg, sizeof j->err_msg, "%s", lupe_errmsg());
        }
        j->done++;
        if (l->cfg.progress) l->cfg.progress(l->cfg.progress_ctx, j->done, l->n);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Fills the cache with max(workers, 1) threads; the first failing sample (by
 * index) is the error. */
static lupe_status cache_fill(trn_loader *l, const trn_sample *s)
{
    cache_job j = {.l = l, .s = s, .err_index = l->n};
    int nt = l->cfg.workers < l->n ? l->cfg.workers : l->n, started = 0;
    pthread_t th[MAX_WORKERS];
    for (; started < nt; started++)
        if (pthread_create(&th[started], NULL, cache_main, &j)) break;
    /* With no threads (workers = 0, or none could start) the caller decodes;
     * otherwise it only waits. */
    if (started == 0) cache_main(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    if (j.err) return lupe_err(j.err, "loader: %s", j.err_msg);
    return LUPE_OK;
}

/* ---- workers ------------------------------------------------------------- */

static int job_ready(const trn_loader *l)
{
    return l->started && !l->pausing && l->next_job < l->n && l->next_job / l->cap < l->out_next + l->nslots;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    trn_loader *l = w->l;
    size_t img_bytes = (size_t)l->cfg.imgsz * l->cfg.imgsz * 3;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !job_ready(l)) pthread_cond_wait(&l->work_cv, &l->mu);
        if (l->stop) break;
        int pos = l->next_job++, b = pos / l->cap, j = pos % l->cap;
        slot *sl = &l->slots[b % l->nslots];
        /* Positions are handed out in order, so the first image of a batch
         * claims its slot; the slot is free because the batch nslots before
         * it has been consumed (job_ready). */
        if (j == 0) {
            sl->batch = b;
            sl->count = l->n - pos < l->cap ? l->n - pos : l->cap;
            sl->remaining = sl->count;
        }
        int index = l->order[pos];
        l->active++;
        pthread_mutex_unlock(&l->mu);
        sl->nbox[j] = trn__make_image(&l->ctx, &w->scratch, pos, index, sl->px + (size_t)j * img_bytes,
                                      sl->boxes + (size_t)j * l->box_cap, &sl->meta[j]);
        pthread_mutex_lock(&l->mu);
        l->active--;
        if (--sl->remaining == 0 || l->active == 0) pthread_cond_broadcast(&l->done_cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void stop_workers(trn_loader *l)
{
    if (!l->nthreads) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    for (int t = 0; t < l->nthreads; t++) pthread_join(l->threads[t], NULL);
    l->nthreads = 0;
}

/* ---- API ----------------------------------------------------------------- */

static lupe_status alloc_ring(trn_loader *l)
{
    size_t img_bytes = (size_t)l->cfg.imgsz * l->cfg.imgsz * 3;
    l->nslots = l->cfg.workers ? RING_SLOTS : 1;
    if (!(l->slots = lupe_calloc((size_t)l->nslots, sizeof *l->slots))) return LUPE_ENOMEM;
    for (int i = 0; i < l->nslots; i++) {
        slot *sl = &l->slots[i];
        sl->batch = -1;
        sl->px = lupe_malloc((size_t)l->cap * img_bytes);
        sl->boxes = lupe_malloc((size_t)l->cap * l->box_cap * sizeof(det_box));
        sl->nbox = lupe_calloc((size_t)l->cap, sizeof(int));
        sl->meta = lupe_calloc((size_t)l->cap, sizeof(trn_meta));
        if (!sl->px || !sl->boxes || !sl->nbox || !sl->meta) return LUPE_ENOMEM;
    }
    if (!(l->out_boxes = lupe_malloc((size_t)l->cap * l->box_cap * sizeof(det_box)))) return LUPE_ENOMEM;
    return LUPE_OK;
}

static lupe_status start_workers(trn_loader *l)
{
    int nw = l->cfg.workers;
    if (!nw) return trn__scratch_init(&l->inline_scratch, l->cfg.imgsz, l->box_cap);
    l->workers = lupe_calloc((size_t)nw, sizeof *l->workers);
    l->threads = lupe_calloc((size_t)nw, sizeof *l->threads);
    if (!l->workers || !l->threads) return LUPE_ENOMEM;
    for (int t = 0; t < nw; t++) {
        l->workers[t].l = l;
        lupe_status st = trn__scratch_init(&l->workers[t].scratch, l->cfg.imgsz, l->box_cap);
        if (st) return st;
    }
    for (int t = 0; t < nw; t++) {
        if (pthread_create(&l->threads[t], NULL, worker_main, &l->workers[t]))
            return lupe_err(LUPE_EINTERNAL, "loader: could not start worker thread %d of %d", t + 1, nw);
        l->nthreads++;
    }
    return LUPE_OK;
}

lupe_status trn_loader_new(const trn_loader_cfg *c, const trn_sample *s, int n, trn_loader **out)
{
    trn_loader *l = NULL;
    lupe_status st = LUPE_OK;
    if (!out) return lupe_err(LUPE_EARG, "loader: no output pointer");
    *out = NULL;
    if (!c || !s || n < 1) return lupe_err(LUPE_EARG, "loader: no configuration or no samples (n = %d)", n);
    if ((st = check_cfg(c))) return st;
    int maxnb = 0;
    for (int i = 0; i < n; i++) {
        if ((st = check_sample(&s[i], i))) return st;
        if (s[i].nbox > maxnb) maxnb = s[i].nbox;
    }

    if (!(l = lupe_calloc(1, sizeof *l))) return LUPE_ENOMEM;
    l->cfg = *c;
    l->n = n;
    l->cap = c->batch < n ? c->batch : n;
    l->nbatches = (n + c->batch - 1) / c->batch;
    /* A mosaic gathers the boxes of four samples. */
    l->box_cap = (c->augment ? 4 : 1) * (maxnb > 0 ? maxnb : 1);
    /* The three are destroyed together by trn_loader_free once all exist. */
    int e = pthread_mutex_init(&l->mu, NULL);
    if (!e && (e = pthread_cond_init(&l->work_cv, NULL))) pthread_mutex_destroy(&l->mu);
    if (!e && (e = pthread_cond_init(&l->done_cv, NULL))) {
        pthread_cond_destroy(&l->work_cv);
        pthread_mutex_destroy(&l->mu);
    }
    if (e) {
        st = lupe_err(LUPE_EINTERNAL, "loader: could not create its mutex and condition variables (%s)", strerror(e));
        goto out;
    }
    l->sync_ready = 1;

    if (!(l->items = lupe_calloc((size_t)n, sizeof *l->items)) || !(l->order = lupe_malloc((size_t)n * sizeof(int)))) {
        st = lupe_err(LUPE_ENOMEM, "loader: no memory for %d samples", n);
        goto out;
    }
    if ((st = cache_fill(l, s))) goto out;
    if ((st = alloc_ring(l))) {
        lupe_err(st, "loader: no memory for %d batches of %d images at %d", l->nslots, l->cap, c->imgsz);
        goto out;
    }
    l->ctx.items = l->items;
    l->ctx.n = n;
    l->ctx.imgsz = c->imgsz;
    l->ctx.augment = c->augment;
    l->ctx.aug = c->aug;
    l->ctx.seed = c->seed;
    l->ctx.mosaic_on = 1;
    if ((st = start_workers(l))) {
        if (st == LUPE_ENOMEM) lupe_err(st, "loader: no memory for %d workers", c->workers);
        goto out;
    }
    *out = l;
    l = NULL;
out:
    trn_loader_free(l);
    return st;
}

void trn_loader_free(trn_loader *l)
{
    if (!l) return;
    if (l->sync_ready) {
        stop_workers(l);
        pthread_cond_destroy(&l->done_cv);
        pthread_cond_destroy(&l->work_cv);
        pthread_mutex_destroy(&l->mu);
    }
    if (l->workers)
        for (int t = 0; t < l->cfg.workers; t++) trn__scratch_cleanup(&l->workers[t].scratch);
    lupe_free(l->workers);
    lupe_free(l->threads);
    trn__scratch_cleanup(&l->inline_scratch);
    if (l->slots)
        for (int i = 0; i < l->nslots; i++) {
            lupe_free(l->slots[i].px);
            lupe_free(l->slots[i].boxes);
            lupe_free(l->slots[i].nbox);
            lupe_free(l->slots[i].meta);
        }
    lupe_free(l->slots);
    lupe_free(l->out_boxes);
    if (l->items)
        for (int i = 0; i < l->n; i++) {
            lupe_img_free(l->items[i].im);
            lupe_free(l->items[i].boxes);
        }
    lupe_free(l->items);
    lupe_free(l->order);
    lupe_free(l);
}

int trn_loader_batches(const trn_loader *l) { return l ? l->nbatches : 0; }

void trn_loader_epoch(trn_loader *l, int epoch, int mosaic)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    /* Workers finish the image in hand (a few milliseconds); what they made
     * for the old epoch is dropped with the slots. */
    l->pausing = 1;
    while (l->active > 0) pthread_cond_wait(&l->done_cv, &l->mu);
    l->ctx.epoch = epoch;
    l->ctx.mosaic_on = mosaic != 0;
    if (l->cfg.augment)
        trn__shuffle(l->order, l->n, l->cfg.seed, epoch);
    else
        for (int i = 0; i < l->n; i++) l->order[i] = i;
    for (int i = 0; i < l->nslots; i++) l->slots[i].batch = -1;
    l->next_job = 0;
    l->out_next = 0;
    l->started = 1;
    l->pausing = 0;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
}

/* Makes batch b in slot 0 on the calling thread (workers = 0). */
static void make_inline(trn_loader *l, int b)
{
    slot *sl = &l->slots[0];
    size_t img_bytes = (size_t)l->cfg.imgsz * l->cfg.imgsz * 3;
    int first = b * l->cap;
    sl->batch = b;
    sl->count = l->n - first < l->cap ? l->n - first : l->cap;
    for (int j = 0; j < sl->count; j++)
        sl->nbox[j] = trn__make_image(&l->ctx, &l->inline_scratch, first + j, l->order[first + j],
                                      sl->px + (size_t)j * img_bytes, sl->boxes + (size_t)j * l->box_cap, &sl->meta[j]);
    sl->remaining = 0;
}

int trn_loader_next(trn_loader *l, float *images, const det_box **boxes, int *nbox, trn_meta *meta)
{
    if (!l || !images || !boxes || !nbox) {
        lupe_err(LUPE_EARG, "loader: next needs the loader, an image buffer and box out-pointers");
        return -1;
    }
    if (!l->started) trn_loader_epoch(l, 0, 1);
    *boxes = l->out_boxes;
    *nbox = 0;
    /* Only this (the consumer's) thread writes out_next. */
    int b = l->out_next;
    if (b >= l->nbatches) return 0;

    slot *sl = &l->slots[b % l->nslots];
    if (!l->nthreads) {
        make_inline(l, b);
    } else {
        pthread_mutex_lock(&l->mu);
        while (sl->batch != b || sl->remaining > 0) pthread_cond_wait(&l->done_cv, &l->mu);
        pthread_mutex_unlock(&l->mu);
    }

    /* The slot is ours until it is marked free below. */
    size_t img_vals = (size_t)l->cfg.imgsz * l->cfg.imgsz * 3;
    int total = 0;
    for (int j = 0; j < sl->count; j++) {
        trn__to_float(images + (size_t)j * img_vals, sl->px + (size_t)j * img_vals, img_vals);
        const det_box *src = sl->boxes + (size_t)j * l->box_cap;
        for (int k = 0; k < sl->nbox[j]; k++) {
            l->out_boxes[total] = src[k];
            l->out_boxes[total++].img = j;
        }
        if (meta) meta[j] = sl->meta[j];
    }
    *nbox = total;
    int count = sl->count;

    pthread_mutex_lock(&l->mu);
    sl->batch = -1;
    l->out_next++;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    return count;
}
