/*
 * `lupe predict`: runs a trained detector on image files through the
 * inference part (folded, fused, planned; f32, bf16 or int8) and prints the
 * boxes in the original images' pixels, as text or one JSON object per
 * image, optionally drawing previews. int8 calibrates once from a dataset
 * (--calib) and keeps the ranges next to the model.
 */
#include <dirent.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/cli.h"
#include "lupe/dataset.h"
#include "lupe/eval.h"
#include "lupe/infer.h"
#include "lupe/train.h"

#define MAX_DET_CAP 10000

typedef struct predict_opts {
    float conf, iou;
    int max_det, json, calib_images;
    const char *previews, *calib_data;
    inf_opts io;
} predict_opts;

/* Calibrates the f32 model on k images spread evenly over DATA's train
 * split (all of it when smaller) into cpath. */
static lupe_status calibrate(cli_ctx *ctx, const char *model, const predict_opts *po, const char *cpath)
{
    trn_data *d = NULL;
    inf_model *m = NULL;
    inf_calib *c = NULL;
    const char **paths = NULL;
    lupe_status st = trn_data_load(po->calib_data, ctx->workspace, &d);
    if (st) return lupe_err_ctx(st, "calibration data %s", po->calib_data);
    const int n = d->n[LUPE_SPLIT_TRAIN], k = po->calib_images < n ? po->calib_images : n;
    if (k < 1) {
        st = lupe_err(LUPE_EARG, "calibration data %s has no train images", d->name);
        goto out;
    }
    if (!(paths = lupe_calloc((size_t)k, sizeof *paths))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (int i = 0; i < k; i++) paths[i] = d->split[LUPE_SPLIT_TRAIN][(size_t)i * n / k].path;
    inf_opts o = po->io;
    o.precision = INF_F32, o.batch = 8;
    char src[600];
    snprintf(src, sizeof src, "%.500s train split, %d of %d images evenly spaced", d->name, k, n);
    if (!ctx->quiet) fprintf(stderr, "lupe predict: calibrating int8 on %s\n", src);
    if ((st = inf_model_open(model, &o, &m)) || (st = inf_calib_new(m, &c)) ||
        (st = inf_calib_add_files(c, paths, k)) || (st = inf_calib_save(c, cpath, src)))
        goto out;
    if (!ctx->quiet) fprintf(stderr, "lupe predict: calibration saved to %s\n", cpath);
out:
    inf_calib_free(c);
    inf_model_free(m);
    lupe_free(paths);
    trn_data_free(d);
    return st;
}

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The images a folder holds (JPEG and PNG by name, sorted; not recursive). */
static lupe_status list_folder(const char *dir, char ***out, int *n)
{
    *out = NULL, *n = 0;
    DIR *dp = opendir(dir);
    if (!dp) return lupe_err(LUPE_EIO, "%s: cannot list the folder", dir);
    char **v = NULL;
    int cap = 0;
    lupe_status st = LUPE_OK;
    struct dirent *e;
    while ((e = readdir(dp)) && !st) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = lupe_realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                st = LUPE_ENOMEM;
                break;
            }
            v = nv;
        }
        if (!(v[*n] = lupe_path_join(dir, e->d_name))) st = LUPE_ENOMEM;
        else (*n)++;
    }
    closedir(dp);
    if (*n) qsort(v, (size_t)*n, sizeof *v, cmp_str);
    *out = v;
    return st;
}

/* A preview path in dir for image path, unique within this run. */
static char *preview_path(const char *dir, const char *path, int index)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    int len = dot ? (int)(dot - base) : (int)strlen(base);
    char *p = lupe_asprintf("%s/%.*s.jpg", dir, len, base);
    if (p && lupe_path_exists(p)) {
        lupe_free(p);
        p = lupe_asprintf("%s/%.*s-%d.jpg", dir, len, base, index);
    }
    return p;
}

static void print_json(const char *path, const lupe_img *im, const det_pred *p, int n, char *const *names, double ms)
{
    json_t *dets = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(dets, json_pack("{s:i, s:s, s:f, s:[f, f, f, f]}", "class", p[i].cls, "name",
                                              names[p[i].cls], "score", (double)p[i].score, "box", (double)p[i].x1,
                                              (double)p[i].y1, (double)p[i].x2, (double)p[i].y2));
    json_t *j = json_pack("{s:s, s:i, s:i, s:o, s:f}", "file", path, "width", im->w, "height", im->h, "detections",
                          dets, "latency_ms", ms);
    char *text = lupe_json_dump(j, 0);
    json_decref(j);
    if (text) printf("%s\n", text);
    lupe_free(text);
}

static void print_text(const char *path, const lupe_img *im, const det_pred *p, int n, char *const *names, double ms)
{
    printf("%s: %dx%d, %d detection%s, %.1f ms\n", path, im->w, im->h, n, n == 1 ? "" : "s", ms);
    for (int i = 0; i < n; i++)
        printf("  %-16s %.3f  %7.1f %7.1f %7.1f %7.1f\n", names[p[i].cls], (double)p[i].score, (double)p[i].x1,
               (double)p[i].y1, (double)p[i].x2, (double)p[i].y2);
}

/* One image: 0 done, 1 the image was rejected (reported), -1 a failure
 * that stops the run. */
static int predict_one(inf_model *m, const predict_opts *po, const char *path, int index, det_pred *preds)
{
    lupe_img *im = NULL;
    lupe_status st = lupe_img_load(path, 3, NULL, &im);
    if (st) {
        fprintf(stderr, "lupe predict: %s: %s\n", path, lupe_errmsg());
        return 1;
    }
    int n = 0, rc = 0;
    double t0 = lupe_time_mono();
    st = inf_predict(m, im, po->conf, po->iou, po->max_det, preds, &n);
    double ms = (lupe_time_mono() - t0) * 1e3;
    if (st) {
        fprintf(stderr, "lupe predict: %s: %s\n", path, lupe_errmsg());
        rc = -1;
        goto out;
    }
    char *const *names = inf_model_classes(m);
    if (po->json) print_json(path, im, preds, n, names, ms);
    else print_text(path, im, preds, n, names, ms);
    if (po->previews) {
        char *pp = preview_path(po->previews, path, index);
        if (pp) eval_draw_boxes(im, NULL, 0, preds, n, 0.0f, (const char *const *)names);
        if (!pp || lupe_img_save(im, pp)) {
            fprintf(stderr, "lupe predict: %s: preview: %s\n", path, pp ? lupe_errmsg() : "out of memory");
            rc = 1;
        }
        lupe_free(pp);
    }
out:
    lupe_img_free(im);
    return rc;
}

int cmd_predict(cli_ctx *ctx, int argc, char **argv)
{
    enum { O_MAXDET = 1000, O_CALIB, O_CALIBN, O_IMGSZ };
    static const struct option opts[] = {
        {"conf", required_argument, NULL, 'c'},       {"iou", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},             {"save-previews", required_argument, NULL, 'o'},
        {"precision", required_argument, NULL, 'P'}, {"threads", required_argument, NULL, 'T'},
        {"max-det", required_argument, NULL, O_MAXDET}, {"calib", required_argument, NULL, O_CALIB},
        {"calib-images", required_argument, NULL, O_CALIBN}, {"imgsz", required_argument, NULL, O_IMGSZ},
        {0},
    };
    int rc = cli_getopt_help("predict", argc, argv);
    if (rc >= 0) return rc;
    predict_opts po = {.conf = 0.25f, .iou = 0.7f, .max_det = 300, .calib_images = 32};
    inf_opts_default(&po.io);
    int o;
    while ((o = getopt_long(argc, argv, "c:u:jo:P:T:", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'c': bad = cli_parse_float(optarg, 0, 1, &po.conf); break;
        case 'u': bad = cli_parse_float(optarg, 0, 1, &po.iou); break;
        case 'j': po.json = 1; break;
        case 'o': po.previews = optarg; break;
        case 'P': bad = inf_precision_parse(optarg, &po.io.precision); break;
        case 'T': bad = cli_parse_int(optarg, 0, 1024, &po.io.threads); break;
        case O_MAXDET: bad = cli_parse_int(optarg, 1, MAX_DET_CAP, &po.max_det); break;
        case O_CALIB: po.calib_data = optarg; break;
        case O_CALIBN: bad = cli_parse_int(optarg, 1, 100000, &po.calib_images); break;
        case O_IMGSZ: bad = cli_parse_int(optarg, 32, 8192, &po.io.imgsz) || po.io.imgsz % 32; break;
        default: return cli_usage_error("predict", "bad option (see lupe predict --help)");
        }
        if (bad) return cli_usage_error("predict", "bad value '%s' for %s", optarg, argv[optind - 1]);
    }
    if (argc - optind < 2) return cli_usage_error("predict", "expected MODEL and at least one IMAGE");
    if (po.calib_data && po.io.precision != INF_INT8)
        return cli_usage_error("predict", "--calib calibrates int8: give --precision int8 too");
    const char *model = argv[optind];
    char *ckpt = inf_model_resolve(model), *cpath = ckpt ? inf_calib_path(ckpt) : NULL;
    inf_model *m = NULL;
    det_pred *preds = lupe_malloc((size_t)po.max_det * sizeof *preds);
    char **listed = NULL;
    int nlisted = 0, rejected = 0;
    rc = EXIT_OK;
    if (!cpath || !preds) {
        rc = cli_fail("predict");
        goto out;
    }
    if (po.previews && lupe_mkdirs(po.previews)) {
        rc = cli_fail("predict");
        goto out;
    }
    if (po.calib_data && calibrate(ctx, model, &po, cpath)) {
        rc = cli_fail("predict");
        goto out;
    }
    if (inf_model_open(model, &po.io, &m)) {
        rc = cli_fail("predict");
        goto out;
    }
    for (int i = optind + 1; i < argc && rc == EXIT_OK; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (list_folder(argv[i], &listed, &nlisted)) {
                fprintf(stderr, "lupe predict: %s\n", lupe_errmsg());
                rejected++;
            }
            for (int k = 0; k < nlisted && rc == EXIT_OK; k++) {
                int r = predict_one(m, &po, listed[k], k, preds);
                if (r < 0) rc = EXIT_FAIL;
                rejected += r > 0;
            }
            for (int k = 0; k < nlisted; k++) lupe_free(listed[k]);
            lupe_free(listed);
            listed = NULL, nlisted = 0;
            continue;
        }
        int r = predict_one(m, &po, argv[i], i, preds);
        if (r < 0) rc = EXIT_FAIL;
        rejected += r > 0;
    }
    if (rc == EXIT_OK && rejected) rc = EXIT_PARTIAL;
out:
    inf_model_free(m);
    lupe_free(preds);
    lupe_free(ckpt);
    lupe_free(cpath);
    return rc;
}
