/*
 * bench_infer_acc: what the lower precisions cost in accuracy. Evaluates a
 * trained detector on a dataset split (COCO mAP50 and mAP50-95, as `lupe
 * val` computes them: the validation loader's letterbox, conf 0.001, NMS
 * IoU 0.7, 300 detections) in f32, bf16 and int8 through the inference
 * models, and prints the differences from f32. int8 uses the model's
 * calibration file (CKPT.calib), made here first from K images spread
 * evenly over the train split when it is missing or --recalibrate is given.
 *
 *   build/release/bin/bench_infer_acc --model RUN|CKPT --data NAME@V [--ws DIR] [--split test]
 *        [--precisions f32,bf16,int8] [--calib-images 32] [--recalibrate] [--batch 16] [--threads 0]
 *        [--pct 0|99.9|99.99|99.999] [--int8-head float|int8] [--trace]
 *
 * --pct and --int8-head choose how int8 is built (see docs/inference.md);
 * --trace prints the int8 model's error per layer against f32 on the
 * first test batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lupe/dataset.h"
#include "lupe/eval.h"
#include "lupe/infer.h"
#include "lupe/train.h"

#define MAX_DET 300

typedef struct args {
    const char *model, *data, *ws, *precs;
    int split, k, recal, batch, threads, trace, float_head;
    float pct;
} args;

static lupe_status calibrate(const args *a, const trn_data *d, const char *cpath)
{
    const int n = d->n[LUPE_SPLIT_TRAIN], k = a->k < n ? a->k : n;
    if (k < 1) return lupe_err(LUPE_EARG, "%s has no train images to calibrate on", d->name);
    const char **paths = calloc((size_t)k, sizeof *paths);
    for (int i = 0; i < k; i++) paths[i] = d->split[LUPE_SPLIT_TRAIN][(size_t)i * n / k].path;
    inf_opts o;
    inf_opts_default(&o);
    o.batch = 8, o.threads = a->threads;
    inf_model *m = NULL;
    inf_calib *c = NULL;
    char src[512];
    snprintf(src, sizeof src, "%s train split, %d of %d images evenly spaced", d->name, k, n);
    lupe_status st = inf_model_open(a->model, &o, &m);
    if (!st) st = inf_calib_new(m, &c);
    if (!st) st = inf_calib_add_files(c, paths, k);
    if (!st) st = inf_calib_save(c, cpath, src);
    if (!st) printf("calibrated on %s into %s\n", src, cpath);
    inf_calib_free(c);
    inf_model_free(m);
    free(paths);
    return st;
}

static lupe_status evaluate(const args *a, const trn_data *d, inf_precision p, const char *cpath, inf_model *ref,
                            eval_result *res)
{
    inf_opts o;
    inf_opts_default(&o);
    o.precision = p, o.batch = a->batch, o.threads = a->threads, o.calib = cpath;
    o.int8_float_head = a->float_head, o.int8_percentile = a->pct;
    inf_model *m = NULL;
    trn_loader *l = NULL;
    eval_ctx *e = NULL;
    det_box *mine = malloc(sizeof *mine * 4096);
    det_pred *pred = malloc(sizeof *pred * MAX_DET);
    lupe_status st = inf_model_open(a->model, &o, &m);
    if (st) goto out;
    const det_arch *arch = inf_model_arch(m);
    trn_loader_cfg lc;
    trn_loader_cfg_default(&lc);
    lc.imgsz = arch->imgsz, lc.batch = arch->batch, lc.workers = 1, lc.augment = 0;
    if ((st = trn_loader_new(&lc, d->split[a->split], d->n[a->split], &l)) ||
        (st = eval_new(d->nc, (const char *const *)d->classes, &e)))
        goto out;
    trn_loader_epoch(l, 0, 0);
    for (int batch = 0;; batch++) {
        const det_box *gt = NULL;
        int ngt = 0, n = trn_loader_next(l, inf_model_input(m), &gt, &ngt, NULL);
        if (n < 0) {
            st = LUPE_EIO;
            goto out;
        }
        if (n == 0) break;
        if (batch == 0 && ref) {
            memcpy(inf_model_input(ref), inf_model_input(m), sizeof(float) * 3 * arch->imgsz * arch->imgsz * arch->batch);
            if ((st = inf_model_trace(ref, m, stdout))) goto out;
            /* the trace ran m: load the batch again */
            trn_loader_epoch(l, 0, 0);
            n = trn_loader_next(l, inf_model_input(m), &gt, &ngt, NULL);
        }
        if ((st = inf_model_run(m))) goto out;
        const float *outs[DET_LEVELS];
        inf_model_outputs(m, outs);
        for (int b = 0; b < n; b++) {
            int np = det_detect(arch, outs, b, 0.001f, 0.7f, MAX_DET, pred), gn = 0;
            if (np < 0) {
                st = LUPE_EINTERNAL;
                goto out;
            }
            for (int i = 0; i < ngt && gn < 4096; i++)
                if (gt[i].img == b) mine[gn++] = gt[i];
            if ((st = eval_add(e, pred, np, mine, gn))) goto out;
        }
    }
    st = eval_compute(e, res);
out:
    eval_free(e);
    trn_loader_free(l);
    inf_model_free(m);
    free(mine);
    free(pred);
    return st;
}

int main(int argc, char **argv)
{
    args a = {.split = LUPE_SPLIT_TEST, .k = 32, .batch = 16, .precs = "f32,bf16,int8", .float_head = 1};
    const char *cflag = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--model")) a.model = v, i++;
        else if (!strcmp(argv[i], "--data")) a.data = v, i++;
        else if (!strcmp(argv[i], "--ws")) a.ws = v, i++;
        else if (!strcmp(argv[i], "--split")) a.split = lupe_split_parse(v), i++;
        else if (!strcmp(argv[i], "--precisions")) a.precs = v, i++;
        else if (!strcmp(argv[i], "--calib-images")) a.k = atoi(v), i++;
        else if (!strcmp(argv[i], "--calib")) cflag = v, i++;
        else if (!strcmp(argv[i], "--batch")) a.batch = atoi(v), i++;
        else if (!strcmp(argv[i], "--threads")) a.threads = atoi(v), i++;
        else if (!strcmp(argv[i], "--pct")) a.pct = (float)atof(v), i++;
        else if (!strcmp(argv[i], "--int8-head")) a.float_head = strcmp(v, "int8") != 0, i++;
        else if (!strcmp(argv[i], "--recalibrate")) a.recal = 1;
        else if (!strcmp(argv[i], "--trace")) a.trace = 1;
        else a.model = NULL, i = argc;
    }
    if (!a.model || !a.data || a.split < 0 || a.batch < 1) {
        fprintf(stderr, "usage: bench_infer_acc --model RUN|CKPT --data NAME@V [--ws DIR] [--split test]\n"
                        "         [--precisions f32,bf16,int8] [--calib-images 32] [--calib FILE] [--recalibrate]\n"
                        "         [--batch 16] [--threads 0] [--pct 0|99.9|99.99|99.999] [--int8-head float|int8] [--trace]\n");
        return 2;
    }
    if (lupe_base_init()) return 1;
    trn_data *d = NULL;
    char *ck = inf_model_resolve(a.model), *cpath = cflag ? lupe_strdup(cflag) : inf_calib_path(ck);
    lupe_status st = trn_data_load(a.data, a.ws, &d);
    if (st) goto fail;
    if (strstr(a.precs, "int8") && (a.recal || !lupe_path_exists(cpath)) && (st = calibrate(&a, d, cpath))) goto fail;
    printf("%s on %s, %s split (%d images), batch %d\n", a.model, d->name, lupe_split_name(a.split), d->n[a.split],
           a.batch);
    printf("%-6s %8s %10s %7s %7s %10s %12s\n", "", "mAP50", "mAP50-95", "P", "R", "d mAP50", "d mAP50-95");
    double f50 = -1, f5095 = -1;
    const inf_precision ps[3] = {INF_F32, INF_BF16, INF_INT8};
    for (int i = 0; i < 3; i++) {
        if (!strstr(a.precs, inf_precision_name(ps[i]))) continue;
        if (ps[i] == INF_BF16 && !eng_bf16_supported()) continue;
        inf_model *ref = NULL;
        if (a.trace && ps[i] == INF_INT8) {
            inf_opts o;
            inf_opts_default(&o);
            o.batch = a.batch, o.threads = a.threads;
            if ((st = inf_model_open(a.model, &o, &ref))) goto fail;
        }
        eval_result r;
        st = evaluate(&a, d, ps[i], cpath, ref, &r);
        inf_model_free(ref);
        if (st) goto fail;
        if (f50 < 0) f50 = r.map50, f5095 = r.map;
        printf("%-6s %8.4f %10.4f %7.3f %7.3f %+10.4f %+12.4f\n", inf_precision_name(ps[i]), r.map50, r.map, r.p, r.r,
               r.map50 - f50, r.map - f5095);
        fflush(stdout);
        eval_result_free(&r);
    }
    trn_data_free(d);
    lupe_free(ck);
    lupe_free(cpath);
    return 0;
fail:
    fprintf(stderr, "bench_infer_acc: %s\n", lupe_errmsg());
    trn_data_free(d);
    lupe_free(ck);
    lupe_free(cpath);
    return 1;
}
