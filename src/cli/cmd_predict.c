/*
 * `lupe predict`: runs a trained detector on image files and prints the
 * boxes in the original images' pixels, as text or one JSON object per
 * image, optionally drawing previews. MODEL is a run folder or checkpoint,
 * a registry version (GROUP:V, GROUP@ALIAS, GROUP), a signed package
 * (verified before anything of it runs) or an ONNX file. lupe's own
 * weights go through the inference part (folded, fused, planned; f32, bf16
 * or int8), ONNX files through the ONNX import part. int8 calibrates once
 * from a dataset (--calib) and keeps the ranges beside the model.
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
#include "lupe/registry.h"
#include "lupe/train.h"

#define MAX_DET_CAP 10000

typedef struct predict_opts {
    float conf, iou;
    int max_det, json, calib_images;
    const char *previews, *calib_data;
    const char *key, *pubkey; /* a package's verifying key */
    inf_opts io;
} predict_opts;

/* What MODEL names, resolved: a checkpoint to compile (with where its int8
 * calibration lives), or an ONNX file. */
typedef struct model_ref {
    char *ckpt, *calib, *onnx;
} model_ref;

static void model_ref_cleanup(model_ref *r)
{
    lupe_free(r->ckpt);
    lupe_free(r->calib);
    lupe_free(r->onnx);
    memset(r, 0, sizeof *r);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

typedef struct key_match {
    const char *id;
    uint8_t pk[LUPE_ED25519_PK];
    char name[REG_NAME_MAX + 1];
} key_match;

static int match_key(void *ud, const char *name, const uint8_t pk[LUPE_ED25519_PK])
{
    key_match *m = ud;
    char id[REG_KEY_ID_HEX];
    reg_key_id(pk, id);
    if (strcmp(id, m->id)) return 0;
    memcpy(m->pk, pk, LUPE_ED25519_PK);
    snprintf(m->name, sizeof m->name, "%s", name);
    return 1;
}

/* The public key a package is checked with: --pubkey, --key NAME, or the
 * workspace's key whose id the manifest names (the manifest is not trusted
 * for this: the signature check that follows is what decides). */
static lupe_status package_key(cli_ctx *ctx, const predict_opts *po, const char *dir, uint8_t pk[LUPE_ED25519_PK])
{
    if (po->pubkey) return reg_pubkey_parse(po->pubkey, pk);
    lupe_ws *ws = NULL;
    lupe_status st = cli_open_ws(ctx, &ws);
    if (st) {
        st = lupe_err_ctx(st, "%s: a package is verified before it runs: give --pubkey HEX, or --key NAME in a workspace",
                          dir);
        goto out;
    }
    if (po->key) {
        st = reg_key_public(ws, po->key, pk);
        goto out;
    }
    char *man = lupe_path_join(dir, "manifest.json");
    uint8_t *text = NULL;
    size_t len = 0;
    reg_manifest mf;
    if (!man) st = LUPE_ENOMEM;
    else if (!(st = lupe_file_read(man, 1 << 20, &text, &len))) st = reg_manifest_parse((const char *)text, len, &mf);
    if (!st) {
        key_match km = {.id = mf.key_id};
        st = reg_key_each(ws, match_key, &km);
        if (!st && !km.name[0])
            st = lupe_err(LUPE_EVERIFY,
                          "%s: signed by key id %s, which this workspace does not hold: give --pubkey HEX or --key NAME",
                          dir, mf.key_id);
        if (!st) memcpy(pk, km.pk, LUPE_ED25519_PK);
    } else {
        st = lupe_err_ctx(st, "%s: the manifest names no key to verify with", dir);
    }
    lupe_free(man);
    lupe_free(text);
out:
    lupe_ws_close(ws);
    return st;
}

static lupe_status resolve_model(cli_ctx *ctx, const predict_opts *po, const char *ref, model_ref *r)
{
    memset(r, 0, sizeof *r);
    struct stat sb;
    lupe_status st = LUPE_OK;
    if (stat(ref, &sb) == 0) {
        if (S_ISREG(sb.st_mode) && ends_with(ref, ".onnx")) {
            if (!(r->onnx = lupe_strdup(ref))) return LUPE_ENOMEM;
            return LUPE_OK;
        }
        char *man = S_ISDIR(sb.st_mode) ? lupe_path_join(ref, "manifest.json") : NULL;
        if (man && lupe_path_exists(man)) {
            lupe_free(man);
            uint8_t pk[LUPE_ED25519_PK];
            reg_verify_report rep;
            if ((st = package_key(ctx, po, ref, pk)) || (st = reg_package_verify(ref, pk, &rep))) return st;
            if (!ctx->quiet)
                fprintf(stderr, "lupe predict: %s: verified (key %s; signature, manifest and %d files)\n", ref,
                        rep.key_id, rep.nfiles);
            /* A hidden name: verification ignores it, so the package stays valid. */
            r->ckpt = lupe_path_join(ref, "weights.ckpt");
            r->calib = lupe_path_join(ref, ".weights.calib");
            return r->ckpt && r->calib ? LUPE_OK : LUPE_ENOMEM;
        }
        lupe_free(man);
        r->ckpt = inf_model_resolve(ref);
        r->calib = r->ckpt ? inf_calib_path(r->ckpt) : NULL;
        return r->calib ? LUPE_OK : LUPE_ENOMEM;
    }
    /* Not a path: a registry reference in the workspace. */
    lupe_ws *ws = NULL;
    reg_version v;
    memset(&v, 0, sizeof v);
    if ((st = cli_open_ws(ctx, &ws))) {
        st = lupe_err(LUPE_ENOTFOUND, "%s: no such file, and no workspace to look it up in as a registry version", ref);
        goto out;
    }
    if ((st = reg_get(ws, ref, &v))) {
        st = lupe_err_ctx(st, "%s: no such file or registry version", ref);
        goto out;
    }
    r->ckpt = lupe_obj_path(ws, v.weights);
    r->calib = lupe_asprintf("%s/" LUPE_WS_DIR "/calib/%s.calib", lupe_ws_root(ws), v.weights);
    if (!r->ckpt || !r->calib) st = LUPE_ENOMEM;
    else if (!lupe_path_exists(r->ckpt))
        st = lupe_err(LUPE_ENOTFOUND, "%s:%d: its weights (object %s) are missing from the workspace (lupe fsck)", v.group,
                      v.version, v.weights);
    else if (!ctx->quiet)
        fprintf(stderr, "lupe predict: %s is %s:%d (%s, %s)\n", ref, v.group, v.version, reg_status_name(v.status),
                v.dataset_name ? v.dataset_name : "?");
out:
    reg_version_cleanup(&v);
    lupe_ws_close(ws);
    return st;
}

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
    char *dir = lupe_strdup(cpath), *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) *slash = 0;
    st = !dir ? LUPE_ENOMEM : slash ? lupe_mkdirs(dir) : LUPE_OK;
    lupe_free(dir);
    if (st) goto out;
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
/* The model that runs: lupe's compiled weights or an ONNX file. */
typedef struct runner {
    inf_model *m;
    inf_onnx *x;
} runner;

static int predict_one(runner *r, const predict_opts *po, const char *path, int index, det_pred *preds)
{
    lupe_img *im = NULL;
    lupe_status st = lupe_img_load(path, 3, NULL, &im);
    if (st) {
        fprintf(stderr, "lupe predict: %s: %s\n", path, lupe_errmsg());
        return 1;
    }
    int n = 0, rc = 0;
    double t0 = lupe_time_mono();
    st = r->x ? inf_onnx_predict(r->x, im, po->conf, po->iou, po->max_det, preds, &n)
              : inf_predict(r->m, im, po->conf, po->iou, po->max_det, preds, &n);
    double ms = (lupe_time_mono() - t0) * 1e3;
    if (st) {
        fprintf(stderr, "lupe predict: %s: %s\n", path, lupe_errmsg());
        rc = -1;
        goto out;
    }
    char *const *names = r->x ? inf_onnx_classes(r->x) : inf_model_classes(r->m);
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
    enum { O_MAXDET = 1000, O_CALIB, O_CALIBN, O_IMGSZ, O_KEY, O_PUBKEY };
    static const struct option opts[] = {
        {"conf", required_argument, NULL, 'c'},       {"iou", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},             {"save-previews", required_argument, NULL, 'o'},
        {"precision", required_argument, NULL, 'P'}, {"threads", required_argument, NULL, 'T'},
        {"max-det", required_argument, NULL, O_MAXDET}, {"calib", required_argument, NULL, O_CALIB},
        {"calib-images", required_argument, NULL, O_CALIBN}, {"imgsz", required_argument, NULL, O_IMGSZ},
        {"key", required_argument, NULL, O_KEY},           {"pubkey", required_argument, NULL, O_PUBKEY},
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
        case O_KEY: po.key = optarg; break;
        case O_PUBKEY: po.pubkey = optarg; break;
        default: return cli_usage_error("predict", "bad option (see lupe predict --help)");
        }
        if (bad) return cli_usage_error("predict", "bad value '%s' for %s", optarg, argv[optind - 1]);
    }
    if (argc - optind < 2) return cli_usage_error("predict", "expected MODEL and at least one IMAGE");
    if (po.calib_data && po.io.precision != INF_INT8)
        return cli_usage_error("predict", "--calib calibrates int8: give --precision int8 too");
    if (po.key && po.pubkey) return cli_usage_error("predict", "give --key or --pubkey, not both");
    const char *model = argv[optind];
    model_ref ref = {0};
    runner run = {0};
    det_pred *preds = lupe_malloc((size_t)po.max_det * sizeof *preds);
    char **listed = NULL;
    int nlisted = 0, rejected = 0;
    rc = EXIT_OK;
    if (!preds || resolve_model(ctx, &po, model, &ref)) {
        rc = cli_fail("predict");
        goto out;
    }
    if (ref.onnx && (po.io.precision != INF_F32 || po.io.imgsz)) {
        rc = cli_usage_error("predict", "%s: an ONNX file runs in f32 at its own input size (no --precision, --imgsz)",
                             model);
        goto out;
    }
    if (po.previews && lupe_mkdirs(po.previews)) {
        rc = cli_fail("predict");
        goto out;
    }
    if (!po.io.calib) po.io.calib = ref.calib;
    if (po.calib_data && calibrate(ctx, ref.ckpt, &po, ref.calib)) {
        rc = cli_fail("predict");
        goto out;
    }
    if (ref.onnx ? inf_onnx_open(ref.onnx, po.io.threads, &run.x) : inf_model_open(ref.ckpt, &po.io, &run.m)) {
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
                int r = predict_one(&run, &po, listed[k], k, preds);
                if (r < 0) rc = EXIT_FAIL;
                rejected += r > 0;
            }
            for (int k = 0; k < nlisted; k++) lupe_free(listed[k]);
            lupe_free(listed);
            listed = NULL, nlisted = 0;
            continue;
        }
        int r = predict_one(&run, &po, argv[i], i, preds);
        if (r < 0) rc = EXIT_FAIL;
        rejected += r > 0;
    }
    if (rc == EXIT_OK && rejected) rc = EXIT_PARTIAL;
out:
    inf_model_free(run.m);
    inf_onnx_free(run.x);
    lupe_free(preds);
    model_ref_cleanup(&ref);
    return rc;
}
