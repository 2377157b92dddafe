/*
 * The trainer: YOLOv8's recipe on lupe's engine. One epoch is the loader's
 * augmented batches through forward, loss, backward, with gradients
 * accumulated to the nominal batch, clipped, then an optimizer step and an
 * EMA update; the EMA weights are validated and saved. The run folder holds
 * config.json, results.csv, plots and weights/{last,best}.ckpt; last.ckpt
 * holds everything needed to continue exactly (raw weights, optimizer and
 * EMA state, position in the schedule, the history of the epochs).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "lupe/dataset.h"
#include "train/train_internal.h"

static volatile sig_atomic_t stop_flag;
void trn_request_stop(void)
{
    stop_flag = 1;
}
int trn_stop_requested(void)
{
    return stop_flag != 0;
}


#define MAX_EPOCHS 100000

typedef struct run {
    const trn_cfg *c;
    trn_progress_fn progress;
    void *ud;
    char *dir, *wdir;
    trn_data *data;
    trn__model tm, vm;        /* training graph, inference graph for validation */
    det_loss *loss;
    eng_optim *opt;
    eng_ema *ema;
    trn_loader *tl, *vl;
    const eng_param *params;
    int np;
    char **names;             /* "train.<state name>", "optim.<param>.1|2" */
    int nb;                   /* batches per epoch (the short last batch is dropped) */
    int epochs;               /* fitted to the time budget when there is one */
    int epoch, batch;         /* next position */
    int64_t ni, last_opt;
    double best_fitness;
    int out_of_time;
    double esum[3];           /* loss sums of the epoch in progress (kept across a resume) */
    int ecount;
    double elapsed0, t_start; /* seconds before this process (resume), start here */
    double train_seconds, train_images;
    eng_sched sched;
    int adamw;
    float beta1;
    trn_epoch_stats *hist;
    int nhist;
} run;

/* ---- run folder ---------------------------------------------------------- */

static lupe_status pick_dir(run *r)
{
    if (r->c->out) {
        r->dir = lupe_strdup(r->c->out);
    } else {
        if (lupe_mkdirs("runs")) return lupe_err_ctx(LUPE_EIO, "creating runs/");
        for (int i = 1; i < 100000 && !r->dir; i++) {
            char *d = lupe_asprintf("runs/train-%d", i);
            if (!d) return LUPE_ENOMEM;
            if (mkdir(d, 0777) == 0) r->dir = d;
            else if (errno != EEXIST) {
                lupe_status st = lupe_err(LUPE_EIO, "creating %s: %s", d, strerror(errno));
                lupe_free(d);
                return st;
            } else lupe_free(d);
        }
    }
    if (!r->dir) return LUPE_ENOMEM;
    r->wdir = lupe_path_join(r->dir, "weights");
    if (!r->wdir) return LUPE_ENOMEM;
    lupe_status st = lupe_mkdirs(r->wdir);
    return st ? lupe_err_ctx(st, "creating %s", r->wdir) : LUPE_OK;
}

static lupe_status write_text(const char *dir, const char *name, const char *text)
{
    char *p = lupe_path_join(dir, name);
    if (!p) return LUPE_ENOMEM;
    lupe_status st = lupe_file_write_atomic(p, text, strlen(text));
    lupe_free(p);
    return st;
}

static const char *csv_head = "epoch,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),"
                              "metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,"
                              "val/dfl_loss,lr/pg0,lr/pg1,lr/pg2,time,images_per_s\n";

static lupe_status write_results(run *r)
{
    size_t cap = strlen(csv_head) + (size_t)r->nhist * 400 + 1, n = 0;
    char *s = lupe_malloc(cap);
    if (!s) return LUPE_ENOMEM;
    n += (size_t)snprintf(s, cap, "%s", csv_head);
    for (int i = 0; i < r->nhist; i++) {
        const trn_epoch_stats *e = &r->hist[i];
        n += (size_t)snprintf(s + n, cap - n,
                              "%d,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.6g,%.6g,%.6g,%.1f,%.2f\n",
                              e->epoch + 1, e->box, e->cls, e->dfl, e->p, e->r, e->map50, e->map, e->vbox, e->vcls,
                              e->vdfl, e->lr[0], e->lr[1], e->lr[2], e->seconds, e->images_per_s);
    }
    lupe_status st = write_text(r->dir, "results.csv", s);
    lupe_free(s);
    if (st || r->nhist == 0) return st;

    /* Curves: losses, then validation metrics, over epochs. */
    double *x = lupe_malloc(sizeof *x * (size_t)r->nhist * 11);
    if (!x) return LUPE_ENOMEM;
    double *y[10];
    for (int k = 0; k < 10; k++) y[k] = x + (size_t)r->nhist * (k + 1);
    for (int i = 0; i < r->nhist; i++) {
        const trn_epoch_stats *e = &r->hist[i];
        x[i] = e->epoch + 1;
        double v[10] = {e->box, e->cls, e->dfl, e->vbox, e->vcls, e->vdfl, e->p, e->r, e->map50, e->map};
        for (int k = 0; k < 10; k++) y[k][i] = v[k];
    }
    static const char *nm[10] = {"train box", "train cls", "train dfl", "val box", "val cls", "val dfl",
                                 "precision", "recall", "mAP50", "mAP50-95"};
    eval_series ls[6], ms[4];
    for (int k = 0; k < 6; k++) ls[k] = (eval_series){.name = nm[k], .x = x, .y = y[k], .n = r->nhist};
    for (int k = 0; k < 4; k++) ms[k] = (eval_series){.name = nm[6 + k], .x = x, .y = y[6 + k], .n = r->nhist};
    char *p1 = lupe_path_join(r->dir, "results_loss.png"), *p2 = lupe_path_join(r->dir, "results_metrics.png");
    if (!p1 || !p2) st = LUPE_ENOMEM;
    if (!st) st = eval_plot_lines(p1, "losses", "epoch", "loss", ls, 6);
    if (!st) st = eval_plot_lines(p2, "validation (EMA weights)", "epoch", "value", ms, 4);
    lupe_free(p1);
    lupe_free(p2);
    lupe_free(x);
    return st;
}

/* ---- checkpoints ------------------------------------------------------- */

static json_t *hist_json(const run *r)
{
    json_t *a = json_array();
    for (int i = 0; i < r->nhist; i++) {
        const trn_epoch_stats *e = &r->hist[i];
        json_array_append_new(
            a, json_pack("[i,f,f,f,f,f,f,f,f,f,f,f,f,f,f,f,f]", e->epoch, e->box, e->cls, e->dfl, e->p, e->r,
                         e->map50, e->map, e->vbox, e->vcls, e->vdfl, e->lr[0], e->lr[1], e->lr[2], e->seconds,
                         e->images_per_s, e->fitness));
    }
    return a;
}

static lupe_status hist_load(run *r, json_t *a)
{
    if (!json_is_array(a)) return lupe_err(LUPE_EFORMAT, "last.ckpt: no epoch history");
    r->nhist = 0;
    for (size_t i = 0; i < json_array_size(a) && r->nhist < MAX_EPOCHS; i++) {
        trn_epoch_stats *e = &r->hist[r->nhist];
        if (json_unpack(json_array_get(a, i), "[i,F,F,F,F,F,F,F,F,F,F,F,F,F,F,F,F]", &e->epoch, &e->box, &e->cls,
                        &e->dfl, &e->p, &e->r, &e->map50, &e->map, &e->vbox, &e->vcls, &e->vdfl, &e->lr[0],
                        &e->lr[1], &e->lr[2], &e->seconds, &e->images_per_s, &e->fitness))
            return lupe_err(LUPE_EFORMAT, "last.ckpt: epoch history entry %zu is malformed", i);
        r->nhist++;
    }
    return LUPE_OK;
}

/* best = 1: the EMA model only, under the model's names. Else everything. */
static lupe_status save_ckpt(run *r, const char *file, int full)
{
    int n = r->tm.nstate, nt = full ? 2 * n + 3 * r->np : n;
    eng_tensor_rec *t = lupe_calloc((size_t)nt, sizeof *t);
    if (!t) return LUPE_ENOMEM;
    int k = 0;
    for (int i = 0; i < n; i++) {
        t[k] = r->tm.state[i];
        t[k++].data = eng_ema_values(r->ema, i);
    }
    if (full) {
        for (int i = 0; i < n; i++) {
            t[k] = r->tm.state[i];
            t[k++].name = r->names[i];
        }
        for (int i = 0; i < r->np; i++) {
            float *s1 = NULL, *s2 = NULL;
            eng_optim_state(r->opt, i, &s1, &s2);
            /* Optimizer state, and the gradient being accumulated: the
             * nominal batch may span an epoch's end or a stop. */
            for (int j = 0; j < 3; j++) {
                float *s = j == 0 ? s1 : j == 1 ? s2 : r->params[i].g;
                if (!s) continue;
                t[k] = (eng_tensor_rec){.name = r->names[n + 3 * i + j], .ndim = 1, .dims = {(int64_t)r->params[i].n},
                                        .n = r->params[i].n, .data = s};
                k++;
            }
        }
    }
    json_t *m = json_object();
    json_object_set_new(m, "dataset", json_string(r->data->id));
    json_object_set_new(m, "dataset_name", json_string(r->data->name));
    json_object_set_new(m, "epoch", json_integer(r->epoch));
    json_object_set_new(m, "batch", json_integer(r->batch));
    json_object_set_new(m, "epochs", json_integer(r->epochs));
    json_object_set_new(m, "iter", json_integer(r->ni));
    json_object_set_new(m, "last_opt", json_integer(r->last_opt));
    json_object_set_new(m, "optim_steps", json_integer(eng_optim_steps(r->opt)));
    json_object_set_new(m, "ema_updates", json_integer(eng_ema_updates(r->ema)));
    json_object_set_new(m, "best_fitness", json_real(r->best_fitness));
    json_object_set_new(m, "elapsed", json_real(r->elapsed0 + lupe_time_mono() - r->t_start));
    json_object_set_new(m, "train_seconds", json_real(r->train_seconds));
    json_object_set_new(m, "train_images", json_real(r->train_images));
    json_object_set_new(m, "epoch_sums", json_pack("[f,f,f,i]", r->esum[0], r->esum[1], r->esum[2], r->ecount));
    if (full) json_object_set_new(m, "history", hist_json(r));
    char *extra = lupe_json_dump(m, 0);
    json_decref(m);
    char *meta = extra ? trn__ckpt_meta(&r->tm, r->data->classes, r->data->nc, extra) : NULL;
    char *path = lupe_path_join(r->wdir, file);
    lupe_status st = meta && path ? eng_ckpt_save(path, meta, t, (size_t)k) : LUPE_ENOMEM;
    if (st) st = lupe_err_ctx(st, "saving %s", path ? path : file);
    lupe_free(extra);
    lupe_free(meta);
    lupe_free(path);
    lupe_free(t);
    return st;
}

static lupe_status resume(run *r)
{
    char *path = lupe_path_join(r->wdir, "last.ckpt");
    eng_ckpt *ck = NULL;
    json_t *m = NULL;
    lupe_status st = path ? eng_ckpt_load(path, &ck) : LUPE_ENOMEM;
    if (st) goto out;
    json_error_t je;
    if (!(m = json_loads(ck->meta, 0, &je))) {
        st = lupe_err(LUPE_EFORMAT, "%s: metadata: %s", path, je.text);
        goto out;
    }
    json_int_t epoch, batch, epochs, ni, last_opt, steps, updates;
    double best, elapsed, ts, ti;
    if (json_unpack(m, "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:F, s:F, s:F, s:F}", "epoch", &epoch, "batch", &batch,
                    "epochs", &epochs, "iter", &ni, "last_opt", &last_opt, "optim_steps", &steps, "ema_updates",
                    &updates, "best_fitness", &best, "elapsed", &elapsed, "train_seconds", &ts, "train_images", &ti)) {
        st = lupe_err(LUPE_EFORMAT, "%s: metadata lacks the training position", path);
        goto out;
    }
    if ((st = hist_load(r, json_object_get(m, "history")))) goto out;
    if (json_unpack(json_object_get(m, "epoch_sums"), "[F,F,F,i]", &r->esum[0], &r->esum[1], &r->esum[2],
                    &r->ecount)) {
        st = lupe_err(LUPE_EFORMAT, "%s: metadata lacks the epoch's loss sums", path);
        goto out;
    }
    if ((st = trn__model_load(&r->tm, ck, "train."))) goto out;
    int n = r->tm.nstate;
    for (int i = 0; i < n; i++) {
        const eng_tensor_rec *t = eng_ckpt_find(ck, r->tm.state[i].name);
        if (!t || t->n != r->tm.state[i].n) {
            st = lupe_err(LUPE_EFORMAT, "%s: EMA tensor %s missing or of the wrong size", path, r->tm.state[i].name);
            goto out;
        }
        memcpy(eng_ema_values(r->ema, i), t->data, t->n * sizeof(float));
    }
    for (int i = 0; i < r->np; i++) {
        float *s[3];
        eng_optim_state(r->opt, i, &s[0], &s[1]);
        s[2] = r->params[i].g;
        for (int j = 0; j < 3; j++) {
            if (!s[j]) continue;
            const eng_tensor_rec *t = eng_ckpt_find(ck, r->names[n + 3 * i + j]);
            if (!t || t->n != r->params[i].n) {
                st = lupe_err(LUPE_EFORMAT, "%s: optimizer state %s missing or of the wrong size", path,
                              r->names[n + 3 * i + j]);
                goto out;
            }
            memcpy(s[j], t->data, t->n * sizeof(float));
        }
    }
    eng_optim_set_steps(r->opt, steps);
    eng_ema_set_updates(r->ema, updates);
    r->epoch = (int)epoch, r->batch = (int)batch, r->epochs = (int)epochs;
    r->ni = ni, r->last_opt = last_opt, r->best_fitness = best;
    r->elapsed0 = elapsed, r->train_seconds = ts, r->train_images = ti;
out:
    json_decref(m);
    eng_ckpt_free(ck);
    lupe_free(path);
    return st;
}

/* ---- one run ------------------------------------------------------------ */

static void say(run *r, int done, const char *fmt, ...) LUPE_PRINTF(3, 4);
static void say(run *r, int done, const char *fmt, ...)
{
    if (!r->progress) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->progress(r->ud, line, done);
}

static double elapsed(const run *r)
{
    return r->elapsed0 + lupe_time_mono() - r->t_start;
}

/* The optimizer as YOLOv8 picks it: "auto" is AdamW with a learning rate
 * fitted to the class count for short runs (under 10,000 iterations), else
 * SGD at 0.01. */
static lupe_status setup_optim(run *r)
{
    const trn_cfg *c = r->c;
    int accumulate = (int)lround((double)c->nbs / c->batch);
    if (accumulate < 1) accumulate = 1;
    float lr0 = c->lr0, momentum = c->momentum, bias_lr = c->warmup_bias_lr;
    const char *name = c->optimizer ? c->optimizer : "auto";
    if (!strcmp(name, "auto")) {
        long iters = (long)ceil((double)r->data->n[LUPE_SPLIT_TRAIN] / (c->batch > c->nbs ? c->batch : c->nbs)) *
                     r->epochs;
        if (iters > 10000) name = "sgd", lr0 = 0.01f, momentum = 0.9f;
        else {
            name = "adamw", momentum = 0.9f, bias_lr = 0.0f;
            lr0 = (float)(round(0.002 * 5.0 / (4 + r->data->nc) * 1e6) / 1e6);
        }
    }
    if (strcmp(name, "sgd") && strcmp(name, "adamw"))
        return lupe_err(LUPE_EARG, "unknown optimizer '%s' (expected auto, sgd or adamw)", name);
    r->adamw = !strcmp(name, "adamw");
    r->beta1 = momentum;
    eng_optim_cfg oc = {.kind = r->adamw ? ENG_ADAMW : ENG_SGD, .nesterov = 1,
                        .weight_decay = c->weight_decay * c->batch * accumulate / c->nbs, .beta2 = 0.999f,
                        .eps = 1e-8f};
    lupe_status st = eng_optim_new(&oc, r->params, r->np, &r->opt);
    if (st) return st;
    long nw = lround(c->warmup_epochs * r->nb);
    r->sched = (eng_sched){.kind = c->cos_lr ? ENG_SCHED_COSINE : ENG_SCHED_LINEAR, .lr0 = lr0, .lrf = c->lrf,
                           .epochs = r->epochs, .warmup_iters = c->warmup_epochs > 0 ? (nw > 100 ? nw : 100) : 0,
                           .warmup_bias_lr = bias_lr, .warmup_momentum = c->warmup_momentum, .momentum = momentum};
    say(r, 1, "optimizer: %s lr0 %g momentum %g weight decay %g, %d batches of %d per epoch, accumulating to %d",
        name, (double)lr0, (double)momentum, (double)oc.weight_decay, r->nb, c->batch, c->nbs);
    return LUPE_OK;
}

/* Accumulation as YOLOv8 ramps it during the warmup: from 1 to nbs/batch. */
static int accumulate_at(const run *r)
{
    double full = (double)r->c->nbs / r->c->batch;
    if (r->ni <= r->sched.warmup_iters && r->sched.warmup_iters > 0) {
        double t = (double)r->ni / (double)r->sched.warmup_iters;
        int a = (int)lround(1.0 + t * (full - 1.0));
        return a > 1 ? a : 1;
    }
    int a = (int)lround(full);
    return a > 1 ? a : 1;
}

static void optimizer_step(run *r, const float lr[ENG_NGROUPS], float momentum)
{
    /* Clip the global gradient norm as YOLOv8 does (max 10). */
    double ss = 0;
    for (int i = 0; i < r->np; i++)
        for (size_t k = 0; k < r->params[i].n; k++) ss += (double)r->params[i].g[k] * r->params[i].g[k];
    double norm = sqrt(ss);
    if (r->c->clip_norm > 0 && norm > r->c->clip_norm) {
        float s = (float)(r->c->clip_norm / (norm + 1e-6));
        for (int i = 0; i < r->np; i++)
            for (size_t k = 0; k < r->params[i].n; k++) r->params[i].g[k] *= s;
    }
    eng_optim_step(r->opt, lr, r->adamw ? r->beta1 : momentum);
    eng_optim_zero_grad(r->opt);
    eng_ema_update(r->ema);
}

/* Copies the EMA weights into the inference graph and validates them. */
static lupe_status validate_ema(run *r, const char *preview_dir, eval_result *res, trn__vstats *vs)
{
    for (int i = 0; i < r->vm.nstate; i++)
        memcpy(r->vm.state[i].data, eng_ema_values(r->ema, i), r->vm.state[i].n * sizeof(float));
    return trn__validate(&r->vm, r->vl, r->loss, r->data->classes, r->data->nc, 0.001f, 0.7f, preview_dir,
                         TRN__PREVIEW, res, vs);
}

static lupe_status train_epoch(run *r, trn_epoch_stats *es)
{
    const trn_cfg *c = r->c;
    memset(es, 0, sizeof *es);
    es->epoch = r->epoch;
    int mosaic = r->epoch < r->epochs - c->close_mosaic;
    trn_loader_epoch(r->tl, r->epoch, mosaic);
    float *in = eng_g_data(r->tm.g, r->tm.x);
    const float *outs[DET_LEVELS];
    float *grads[DET_LEVELS];
    for (int l = 0; l < DET_LEVELS; l++) {
        outs[l] = eng_g_data(r->tm.g, r->tm.outs[l]);
        grads[l] = eng_g_grad(r->tm.g, r->tm.outs[l]);
    }
    /* Resuming mid-epoch: the loader's draws depend only on the position,
     * so skipping batches reproduces the same remaining ones. */
    const det_box *gt = NULL;
    int ngt = 0;
    for (int b = 0; b < r->batch; b++)
        if (trn_loader_next(r->tl, in, &gt, &ngt, NULL) < 0) return lupe_err_ctx(LUPE_EIO, "loading");
    double t0 = lupe_time_mono(), *sums = r->esum;
    int *counted = &r->ecount, fresh = 0;
    float lr[ENG_NGROUPS], momentum;
    eng_sched_at(&r->sched, r->epoch, r->ni, lr, &momentum);
    for (; r->batch < r->nb; r->batch++) {
        int n = trn_loader_next(r->tl, in, &gt, &ngt, NULL);
        if (n < 0) return lupe_err_ctx(LUPE_EIO, "loading");
        if (n < c->batch) break; /* the short last batch is dropped */
        eng_sched_at(&r->sched, r->epoch, r->ni, lr, &momentum);
        int acc = accumulate_at(r);
        eng_graph_forward(r->tm.g, 1);
        det_loss_parts parts;
        lupe_status st = det_loss_compute(r->loss, outs, grads, gt, ngt, &parts);
        if (st) return st;
        if (!isfinite(parts.total))
            return lupe_err(LUPE_EINTERNAL, "epoch %d batch %d: the loss is not finite (box %g cls %g dfl %g)",
                            r->epoch + 1, r->batch + 1, (double)parts.box, (double)parts.cls, (double)parts.dfl);
        eng_graph_backward(r->tm.g);
        if (r->ni - r->last_opt >= acc) {
            optimizer_step(r, lr, momentum);
            r->last_opt = r->ni;
        }
        r->ni++;
        sums[0] += parts.box, sums[1] += parts.cls, sums[2] += parts.dfl;
        (*counted)++, fresh++;
        double dt = lupe_time_mono() - t0;
        r->train_images += n;
        double ips = fresh * c->batch / (dt > 0 ? dt : 1e-9);
        double left_epoch = (r->nb - r->batch - 1) * c->batch / ips;
        double eta = c->time_budget > 0 ? c->time_budget - elapsed(r)
                                        : left_epoch + (r->epochs - r->epoch - 1) * r->nb * c->batch / ips;
        say(r, 0, "epoch %d/%d  batch %d/%d  box %.3f cls %.3f dfl %.3f  %.1f img/s  ETA %dm%02ds", r->epoch + 1,
            r->epochs, r->batch + 1, r->nb, sums[0] / *counted, sums[1] / *counted, sums[2] / *counted, ips,
            (int)(eta > 0 ? eta : 0) / 60, (int)(eta > 0 ? eta : 0) % 60);
        /* Stop requests and the time budget are honoured between batches;
         * last.ckpt then holds everything to continue exactly. */
        if (c->stop_after > 0 && r->ni >= c->stop_after) stop_flag = 1;
        if (stop_flag || (c->time_budget > 0 && elapsed(r) >= c->time_budget)) {
            r->out_of_time = !stop_flag;
            r->batch++;
            break;
        }
    }
    double dt = lupe_time_mono() - t0;
    r->train_seconds += dt;
    if (*counted) {
        es->box = sums[0] / *counted, es->cls = sums[1] / *counted, es->dfl = sums[2] / *counted;
        es->images_per_s = fresh * c->batch / dt;
    }
    for (int g = 0; g < 3; g++) es->lr[g] = lr[g];
    es->seconds = dt;
    return LUPE_OK;
}

#ifndef LUPE_GIT_COMMIT
#define LUPE_GIT_COMMIT "unknown"
#endif

/* metrics.json: the final evaluation of best.ckpt with what it was run on
 * (the lupe commit, the dataset, the checkpoint's hash), so a registry can
 * take the run's figures without evaluating it again. */
static lupe_status write_metrics(run *r, const char *best, json_t *val, json_t *test)
{
    char hash[LUPE_SHA256_HEX];
    lupe_status st = lupe_sha256_file(best, hash);
    if (st) return st;
    /* A folder named relative to where training ran: record where it is. */
    char *abs = !r->data->id[0] ? realpath(r->c->data, NULL) : NULL;
    json_t *j = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s?, s:s, s:s, s:i, s:O?, s:O?}", "format", "lupe-run-metrics",
                          "format_version", 1, "lupe_commit", LUPE_GIT_COMMIT, "dataset", r->data->id, "dataset_name",
                          r->data->name, "dataset_path", abs, "weights", "weights/best.ckpt", "weights_sha256", hash,
                          "epochs", r->epoch, "val", val, "test", test);
    free(abs); /* realpath's, not the funnel's */
    char *text = j ? lupe_json_dump(j, 1) : NULL;
    json_decref(j);
    st = text ? write_text(r->dir, "metrics.json", text) : LUPE_ENOMEM;
    lupe_free(text);
    return st;
}

static lupe_status final_eval(run *r, trn_result *res)
{
    /* The best EMA weights, on val (with plots) and on test. */
    char *best = lupe_path_join(r->wdir, "best.ckpt");
    eng_ckpt *ck = NULL;
    json_t *mj[3] = {NULL, NULL, NULL};
    lupe_status st = best ? eng_ckpt_load(best, &ck) : LUPE_ENOMEM;
    if (st) {
        lupe_free(best);
        return st;
    }
    st = trn__model_load(&r->vm, ck, "");
    eng_ckpt_free(ck);
    for (int s = LUPE_SPLIT_VAL; s <= LUPE_SPLIT_TEST && !st; s++) {
        double *out = s == LUPE_SPLIT_VAL ? res->val : res->test;
        if (r->data->n[s] == 0) {
            for (int k = 0; k < 4; k++) out[k] = -1;
            continue;
        }
        trn_loader *l = NULL;
        char *dir = lupe_path_join(r->dir, lupe_split_name(s));
        eval_result er = {0};
        trn__vstats vs;
        if (!dir) st = LUPE_ENOMEM;
        if (!st) st = trn__eval_loader(&r->vm, r->c->workers, r->data->split[s], r->data->n[s], &l);
        /* Plots always; previews only when asked for. */
        if (!st)
            st = trn__validate(&r->vm, l, NULL, r->data->classes, r->data->nc, 0.001f, 0.7f, dir,
                               TRN__PLOTS | (r->c->previews ? TRN__PREVIEW : 0), &er, &vs);
        if (!st && !(mj[s] = trn_metrics_json(&er, r->data->classes, r->data->nc))) st = LUPE_ENOMEM;
        if (!st) {
            out[0] = er.p, out[1] = er.r, out[2] = er.map50, out[3] = er.map;
            say(r, 1, "%s (%d images, best.ckpt): P %.3f R %.3f mAP50 %.3f mAP50-95 %.3f  (plots in %s/)",
                lupe_split_name(s), r->data->n[s], er.p, er.r, er.map50, er.map, dir);
        }
        eval_result_free(&er);
        trn_loader_free(l);
        lupe_free(dir);
    }
    if (!st) st = write_metrics(r, best, mj[LUPE_SPLIT_VAL], mj[LUPE_SPLIT_TEST]);
    for (int k = 0; k < 3; k++) json_decref(mj[k]);
    lupe_free(best);
    return st;
}

static lupe_status make_names(run *r)
{
    int n = r->tm.nstate;
    r->names = lupe_calloc((size_t)(n + 3 * r->np), sizeof *r->names);
    if (!r->names) return LUPE_ENOMEM;
    for (int i = 0; i < n; i++)
        if (!(r->names[i] = lupe_asprintf("train.%s", r->tm.state[i].name))) return LUPE_ENOMEM;
    for (int i = 0; i < r->np; i++)
        for (int j = 0; j < 3; j++)
            if (!(r->names[n + 3 * i + j] = j < 2 ? lupe_asprintf("optim.%s.%d", r->params[i].name, j + 1)
                                                  : lupe_asprintf("grad.%s", r->params[i].name)))
                return LUPE_ENOMEM;
    return LUPE_OK;
}

static void run_cleanup(run *r)
{
    if (r->names)
        for (int i = 0; i < r->tm.nstate + 3 * r->np; i++) lupe_free(r->names[i]);
    lupe_free(r->names);
    trn_loader_free(r->tl);
    trn_loader_free(r->vl);
    eng_ema_free(r->ema);
    eng_optim_free(r->opt);
    det_loss_free(r->loss);
    trn__model_cleanup(&r->tm);
    trn__model_cleanup(&r->vm);
    trn_data_free(r->data);
    lupe_free(r->wdir);
    lupe_free(r->hist);
}

lupe_status trn_train(const trn_cfg *c, trn_progress_fn progress, void *ud, trn_result *res)
{
    memset(res, 0, sizeof *res);
    run R = {.c = c, .progress = progress, .ud = ud, .t_start = lupe_time_mono(), .best_fitness = -1};
    run *r = &R;
    lupe_status st = LUPE_OK;
    stop_flag = 0;
    if (c->imgsz <= 0 || c->imgsz % 32 || c->batch <= 0 || c->nbs <= 0 || c->epochs <= 0 || c->epochs > MAX_EPOCHS)
        return lupe_err(LUPE_EARG, "image size must be a positive multiple of 32, batch and epochs positive "
                                   "(got %d, %d, %d)",
                        c->imgsz, c->batch, c->epochs);
    eng_set_threads(c->threads);
    r->hist = lupe_calloc(MAX_EPOCHS, sizeof *r->hist);
    if (!r->hist) return LUPE_ENOMEM;
    if ((st = trn_data_load(c->data, c->ws_dir, &r->data))) goto out;
    if (r->data->n[LUPE_SPLIT_TRAIN] < c->batch) {
        st = lupe_err(LUPE_EARG, "%s: %d training images, fewer than a batch of %d", r->data->name,
                      r->data->n[LUPE_SPLIT_TRAIN], c->batch);
        goto out;
    }
    if (r->data->n[LUPE_SPLIT_VAL] == 0 && !r->data->id[0]) {
        /* A YOLO folder without a val/ split: validate on the training
         * images (a measure of fit only), as the user was warned. */
        say(r, 1, "note: %s has no val/ split; validating on the training images", r->data->name);
        lupe_free(r->data->split[LUPE_SPLIT_VAL]);
        r->data->split[LUPE_SPLIT_VAL] = r->data->split[LUPE_SPLIT_TRAIN];
        r->data->n[LUPE_SPLIT_VAL] = r->data->n[LUPE_SPLIT_TRAIN];
    }
    if (r->data->n[LUPE_SPLIT_VAL] == 0) {
        st = lupe_err(LUPE_EARG, "%s: no validation images (the val split is empty)", r->data->name);
        goto out;
    }
    if ((st = pick_dir(r))) goto out;
    res->dir = lupe_strdup(r->dir);
    r->epochs = c->epochs;
    r->nb = r->data->n[LUPE_SPLIT_TRAIN] / c->batch;
    say(r, 1, "data: %s, %d classes, %d train / %d val / %d test images; run folder %s", r->data->name, r->data->nc,
        r->data->n[0], r->data->n[1], r->data->n[2], r->dir);

    if ((st = trn__model_build(&r->tm, c->scale, r->data->nc, c->imgsz, c->batch, 1, c->precision)) ||
        (st = trn__model_build(&r->vm, c->scale, r->data->nc, c->imgsz, c->batch, 0, c->precision)))
        goto out;
    r->np = eng_graph_params(r->tm.g, &r->params);
    if (c->init && !c->resume) {
        eng_ckpt *ck = NULL;
        struct stat sb;
        char *ip = stat(c->init, &sb) == 0 && S_ISDIR(sb.st_mode) ? lupe_path_join(c->init, "weights/best.ckpt")
                                                                  : lupe_strdup(c->init);
        st = ip ? eng_ckpt_load(ip, &ck) : LUPE_ENOMEM;
        lupe_free(ip);
        if (st) goto out;
        st = trn__model_load(&r->tm, ck, "");
        eng_ckpt_free(ck);
        if (st) {
            st = lupe_err_ctx(st, "--init %s", c->init);
            goto out;
        }
    }
    det_loss_cfg lcfg;
    det_loss_cfg_default(&lcfg);
    if ((st = det_loss_new(&r->tm.a, &lcfg, &r->loss))) goto out;
    {
        float **w = lupe_malloc(sizeof *w * (size_t)r->tm.nstate);
        size_t *nn = lupe_malloc(sizeof *nn * (size_t)r->tm.nstate);
        if (!w || !nn) st = LUPE_ENOMEM;
        for (int i = 0; !st && i < r->tm.nstate; i++) w[i] = r->tm.state[i].data, nn[i] = r->tm.state[i].n;
        if (!st) st = eng_ema_new(w, nn, r->tm.nstate, c->ema_decay, c->ema_tau, &r->ema);
        lupe_free(w);
        lupe_free(nn);
        if (st) goto out;
    }
    if ((st = setup_optim(r)) || (st = make_names(r))) goto out;

    trn_loader_cfg lc;
    trn_loader_cfg_default(&lc);
    lc.imgsz = c->imgsz, lc.batch = c->batch, lc.workers = c->workers, lc.seed = c->seed, lc.augment = 1;
    lc.aug = c->aug;
    if ((st = trn_loader_new(&lc, r->data->split[LUPE_SPLIT_TRAIN], r->data->n[LUPE_SPLIT_TRAIN], &r->tl)) ||
        (st = trn__eval_loader(&r->vm, c->workers, r->data->split[LUPE_SPLIT_VAL], r->data->n[LUPE_SPLIT_VAL],
                               &r->vl)))
        goto out;

    if (c->resume) {
        if ((st = resume(r))) {
            st = lupe_err_ctx(st, "resuming %s", r->dir);
            goto out;
        }
        r->sched.epochs = r->epochs;
        say(r, 1, "resuming at epoch %d batch %d of %d epochs", r->epoch + 1, r->batch + 1, r->epochs);
    } else {
        char *cj = trn__cfg_json(c);
        st = cj ? write_text(r->dir, "config.json", cj) : LUPE_ENOMEM;
        lupe_free(cj);
        if (st) goto out;
    }

    while (r->epoch < r->epochs) {
        trn_epoch_stats *es = &r->hist[r->nhist];
        double te = lupe_time_mono();
        if ((st = train_epoch(r, es))) goto out;
        if (stop_flag) { /* SIGINT: save where we are; --resume goes on from here */
            if ((st = save_ckpt(r, "last.ckpt", 1))) goto out;
            break;
        }
        /* Out of time mid-epoch: this epoch is the last one, as in YOLOv8. */
        if (r->out_of_time) r->epochs = r->sched.epochs = r->epoch + 1;
        int last = r->epoch + 1 >= r->epochs;
        if ((r->epoch + 1) % (c->val_every > 0 ? c->val_every : 1) == 0 || last) {
            eval_result er = {0};
            trn__vstats vs;
            if ((st = validate_ema(r, c->previews ? r->dir : NULL, &er, &vs))) goto out;
            es->p = er.p, es->r = er.r, es->map50 = er.map50, es->map = er.map;
            es->vbox = vs.box, es->vcls = vs.cls, es->vdfl = vs.dfl;
            eval_result_free(&er);
            es->fitness = 0.1 * es->map50 + 0.9 * es->map;
        } else if (r->nhist) {
            const trn_epoch_stats *p = &r->hist[r->nhist - 1];
            es->p = p->p, es->r = p->r, es->map50 = p->map50, es->map = p->map, es->fitness = -1;
        }
        r->nhist++;
        r->epoch++, r->batch = 0;
        r->esum[0] = r->esum[1] = r->esum[2] = 0, r->ecount = 0;
        double epoch_s = lupe_time_mono() - te;
        say(r, 1, "epoch %d/%d  box %.3f cls %.3f dfl %.3f  P %.3f R %.3f mAP50 %.3f mAP50-95 %.3f  %.1f img/s  %.0fs",
            r->epoch, r->epochs, es->box, es->cls, es->dfl, es->p, es->r, es->map50, es->map, es->images_per_s,
            epoch_s);
        if (es->fitness >= r->best_fitness) {
            r->best_fitness = es->fitness;
            if ((st = save_ckpt(r, "best.ckpt", 0))) goto out;
        }
        /* The time budget: fit the number of epochs to the mean epoch time
         * seen so far, and the schedule with it (as YOLOv8's `time`). */
        if (c->time_budget > 0 && !r->out_of_time) {
            double per = elapsed(r) / r->epoch;
            int fit = (int)floor(c->time_budget / per);
            if (fit < r->epoch) fit = r->epoch;
            if (fit > MAX_EPOCHS) fit = MAX_EPOCHS;
            r->epochs = r->sched.epochs = fit;
        }
        if ((st = save_ckpt(r, "last.ckpt", 1)) || (st = write_results(r))) goto out;
    }
    res->stopped = r->epoch < r->epochs;
    res->epochs = r->epoch;
    res->train_images_per_s = r->train_seconds > 0 ? r->train_images / r->train_seconds : 0;
    if (r->nhist && !res->stopped) {
        if ((st = final_eval(r, res))) goto out;
    } else {
        for (int k = 0; k < 4; k++) res->val[k] = res->test[k] = -1;
    }
    res->seconds = elapsed(r);
    say(r, 1, "%s after %d epochs in %.0f s; training %.1f images/s; weights in %s", res->stopped ? "stopped" : "done",
        r->epoch, res->seconds, res->train_images_per_s, r->wdir);
out:
    if (st && res->dir == NULL) res->dir = r->dir ? lupe_strdup(r->dir) : NULL;
    lupe_free(r->dir);
    run_cleanup(r);
    return st;
}
