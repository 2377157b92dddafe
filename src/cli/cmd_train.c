/*
 * Training commands: `lupe train` runs the YOLOv8 recipe on a dataset
 * version or a YOLO folder into a run folder; `lupe val` evaluates a run or
 * a checkpoint on a split.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "lupe/dataset.h"
#include "lupe/eval.h"
#include "lupe/registry.h"
#include "lupe/train.h"

/* "90", "90s", "30m", "1.5h" -> seconds; -1 if malformed. */
static double parse_duration(const char *s)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0) return -1;
    if (!strcmp(end, "") || !strcmp(end, "s")) return v;
    if (!strcmp(end, "m")) return v * 60;
    if (!strcmp(end, "h")) return v * 3600;
    return -1;
}

static int parse_precision(const char *s)
{
    if (!strcmp(s, "auto")) return ENG_PREC_AUTO;
    if (!strcmp(s, "f32") || !strcmp(s, "fp32")) return ENG_PREC_F32;
    if (!strcmp(s, "bf16")) return ENG_PREC_BF16;
    return -1;
}

typedef struct train_ui {
    int tty, quiet, open;
} train_ui;

static void on_progress(void *ud, const char *line, int done)
{
    train_ui *ui = ud;
    if (ui->quiet && !done) return;
    if (!done) {
        if (!ui->tty) return; /* batch lines only on a terminal; epochs always */
        fprintf(stderr, "\r\033[K%s", line);
        ui->open = 1;
        return;
    }
    if (ui->open) fprintf(stderr, "\r\033[K");
    ui->open = 0;
    fprintf(stderr, "%s\n", line);
}

static void on_sigint(int sig)
{
    (void)sig;
    if (trn_stop_requested()) signal(SIGINT, SIG_DFL);
    trn_request_stop();
    static const char msg[] = "\nlupe train: stopping after this batch (saving weights/last.ckpt); ^C again to abort\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
}

/* --pretrain synth:N[:BUDGET]: N synthetic tags (stream 1) and a pretraining
 * run on them (seed 0, BUDGET of wall time, default 15m), made once in
 * runs/pretrain-synthN-SCALE-IMGSZ-BUDGET and reused by every later run with
 * the same settings; the run then starts from its best.ckpt. An interrupted
 * pretraining resumes where it stopped the next time. */
typedef struct pretrain_spec {
    long count;
    double budget;
} pretrain_spec;

static int parse_pretrain(const char *s, pretrain_spec *p)
{
    if (strncmp(s, "synth:", 6)) return -1;
    char *end = NULL;
    errno = 0;
    long n = strtol(s + 6, &end, 10);
    if (errno || end == s + 6 || n < 16 || n > 1000000) return -1;
    p->count = n;
    p->budget = 15 * 60;
    if (*end == ':') p->budget = parse_duration(end + 1);
    else if (*end) return -1;
    return p->budget > 0 ? 0 : -1;
}

static lupe_status pretrain_synth(const trn_cfg *c, const pretrain_spec *p, train_ui *ui, char **init, int *stopped)
{
    lupe_status st = LUPE_OK;
    char *dir = lupe_asprintf("runs/pretrain-synth%ld-%s-%d-%.0fs", p->count, c->scale, c->imgsz, p->budget);
    char *data = dir ? lupe_path_join(dir, "data") : NULL;
    char *run = dir ? lupe_path_join(dir, "run") : NULL;
    char *done = dir ? lupe_path_join(dir, "done") : NULL;
    char *last = run ? lupe_path_join(run, "weights/last.ckpt") : NULL;
    char *cfgpath = run ? lupe_path_join(run, "config.json") : NULL;
    char *storage = NULL;
    trn_result res = {0};
    *stopped = 0;
    if (!data || !run || !done || !last || !cfgpath) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if (access(done, F_OK) != 0) {
        if ((st = lupe_mkdirs(dir))) goto out;
        if (access(data, F_OK) != 0) {
            fprintf(stderr, "pretrain: %ld synthetic tags into %s\n", p->count, data);
            if ((st = cli_synth_folder(1, p->count, data))) goto out;
        }
        trn_cfg pc = *c;
        if (access(last, F_OK) == 0) {
            fprintf(stderr, "pretrain: resuming %s\n", run);
            trn_cfg_default(&pc);
            if ((st = trn_cfg_load(&pc, cfgpath, &storage))) goto out;
            pc.resume = 1;
        } else {
            fprintf(stderr, "pretrain: training on them for %.0f s into %s\n", p->budget, run);
            pc.data = data;
            pc.epochs = 100;
            pc.time_budget = p->budget;
            pc.seed = 0;
            pc.init = NULL;
            pc.val_every = 100000; /* validate (on the training images) only at the end */
            pc.previews = 0;
            pc.stop_after = 0;
        }
        pc.out = run;
        pc.ws_dir = c->ws_dir;
        pc.quiet = c->quiet;
        if ((st = trn_train(&pc, on_progress, ui, &res))) goto out;
        if (res.stopped) {
            *stopped = 1;
            goto out;
        }
        fprintf(stderr, "pretrain: %d epochs in %.0f s; on the synthetic images mAP50 %.3f mAP50-95 %.3f\n",
                res.epochs, res.seconds, res.val[2], res.val[3]);
        if ((st = lupe_file_write_atomic(done, "", 0))) goto out;
    } else {
        fprintf(stderr, "pretrain: reusing %s\n", run);
    }
    if (!(*init = lupe_path_join(run, "weights/best.ckpt"))) st = LUPE_ENOMEM;
out:
    lupe_free(res.dir);
    lupe_free(storage);
    lupe_free(cfgpath);
    lupe_free(last);
    lupe_free(done);
    lupe_free(run);
    lupe_free(data);
    lupe_free(dir);
    return st;
}

int cmd_train(cli_ctx *ctx, int argc, char **argv)
{
    enum {
        O_NBS = 1000, O_CLOSE, O_OPT, O_LR0, O_LRF, O_COS, O_WORKERS, O_THREADS, O_PREC, O_VALEVERY, O_INIT,
        O_RESUME, O_NOPREV, O_FLIPUD, O_FLIPLR, O_MOSAIC, O_SCALEAUG, O_WARMUP, O_STOPAFTER, O_NOAUG, O_PRETRAIN,
        O_REGISTER, O_GATE
    };
    static const struct option opts[] = {
        {"scale", required_argument, NULL, 's'},     {"imgsz", required_argument, NULL, 'i'},
        {"batch", required_argument, NULL, 'b'},     {"epochs", required_argument, NULL, 'e'},
        {"time-budget", required_argument, NULL, 't'}, {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 'S'},      {"nbs", required_argument, NULL, O_NBS},
        {"close-mosaic", required_argument, NULL, O_CLOSE}, {"optimizer", required_argument, NULL, O_OPT},
        {"lr0", required_argument, NULL, O_LR0},     {"lrf", required_argument, NULL, O_LRF},
        {"cos-lr", no_argument, NULL, O_COS},        {"workers", required_argument, NULL, O_WORKERS},
        {"threads", required_argument, NULL, O_THREADS}, {"precision", required_argument, NULL, O_PREC},
        {"val-every", required_argument, NULL, O_VALEVERY}, {"init", required_argument, NULL, O_INIT},
        {"resume", required_argument, NULL, O_RESUME}, {"no-previews", no_argument, NULL, O_NOPREV},
        {"flipud", required_argument, NULL, O_FLIPUD}, {"fliplr", required_argument, NULL, O_FLIPLR},
        {"mosaic", required_argument, NULL, O_MOSAIC}, {"scale-aug", required_argument, NULL, O_SCALEAUG},
        {"warmup-epochs", required_argument, NULL, O_WARMUP}, {"stop-after", required_argument, NULL, O_STOPAFTER},
        {"no-augment", no_argument, NULL, O_NOAUG}, {"pretrain", required_argument, NULL, O_PRETRAIN},
        {"register", required_argument, NULL, O_REGISTER}, {"gate", required_argument, NULL, O_GATE},
        {0},
    };
    int rc = cli_getopt_help("train", argc, argv);
    if (rc >= 0) return rc;
    trn_cfg c;
    trn_cfg_default(&c);
    c.ws_dir = ctx->workspace;
    c.quiet = ctx->quiet;
    const char *resume_dir = NULL, *register_group = NULL, *gate_rules = NULL;
    int64_t stop_after = 0;
    pretrain_spec pre = {0};
    char *pre_init = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "s:i:b:e:t:o:S:", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 's':
            if (strcmp(optarg, "n") && strcmp(optarg, "s"))
                return cli_usage_error("train", "--scale: expected n or s (got '%s')", optarg);
            c.scale = optarg;
            break;
        case 'i': bad = cli_parse_int(optarg, 32, 4096, &c.imgsz) || c.imgsz % 32; break;
        case 'b': bad = cli_parse_int(optarg, 1, 1024, &c.batch); break;
        case 'e': bad = cli_parse_int(optarg, 1, 100000, &c.epochs); break;
        case 't':
            c.time_budget = parse_duration(optarg);
            bad = c.time_budget <= 0;
            break;
        case 'o': c.out = optarg; break;
        case 'S': bad = cli_parse_u64(optarg, &c.seed); break;
        case O_NBS: bad = cli_parse_int(optarg, 1, 4096, &c.nbs); break;
        case O_CLOSE: bad = cli_parse_int(optarg, 0, 100000, &c.close_mosaic); break;
        case O_OPT:
            if (strcmp(optarg, "auto") && strcmp(optarg, "sgd") && strcmp(optarg, "adamw"))
                return cli_usage_error("train", "--optimizer: expected auto, sgd or adamw (got '%s')", optarg);
            c.optimizer = optarg;
            break;
        case O_LR0: bad = cli_parse_float(optarg, 0, 10, &c.lr0); break;
        case O_LRF: bad = cli_parse_float(optarg, 0, 1, &c.lrf); break;
        case O_COS: c.cos_lr = 1; break;
        case O_WORKERS: bad = cli_parse_int(optarg, 0, 64, &c.workers); break;
        case O_THREADS: bad = cli_parse_int(optarg, 0, 1024, &c.threads); break;
        case O_PREC:
            c.precision = parse_precision(optarg);
            if (c.precision < 0)
                return cli_usage_error("train", "--precision: expected auto, f32 or bf16 (got '%s')", optarg);
            break;
        case O_VALEVERY: bad = cli_parse_int(optarg, 1, 100000, &c.val_every); break;
        case O_INIT: c.init = optarg; break;
        case O_RESUME: resume_dir = optarg; break;
        case O_NOPREV: c.previews = 0; break;
        case O_FLIPUD: bad = cli_parse_float(optarg, 0, 1, &c.aug.flipud); break;
        case O_FLIPLR: bad = cli_parse_float(optarg, 0, 1, &c.aug.fliplr); break;
        case O_MOSAIC: bad = cli_parse_float(optarg, 0, 1, &c.aug.mosaic); break;
        case O_SCALEAUG: bad = cli_parse_float(optarg, 0, 0.95, &c.aug.scale); break;
        case O_WARMUP: bad = cli_parse_float(optarg, 0, 1000, &c.warmup_epochs); break;
        case O_NOAUG: memset(&c.aug, 0, sizeof c.aug); break;
        case O_PRETRAIN:
            if (parse_pretrain(optarg, &pre))
                return cli_usage_error("train", "--pretrain: expected synth:N or synth:N:BUDGET with N from 16 (got '%s')",
                                       optarg);
            break;
        case O_REGISTER: register_group = optarg; break;
        case O_GATE: gate_rules = optarg; break;
        case O_STOPAFTER: {
            int n = 0;
            bad = cli_parse_int(optarg, 1, 1 << 30, &n);
            c.stop_after = stop_after = n;
            break;
        }
        default: return cli_usage_error("train", "bad option (see lupe train --help)");
        }
        if (bad) return cli_usage_error("train", "bad value '%s' for %s", optarg, argv[optind - 1]);
    }
    if (gate_rules && !register_group) return cli_usage_error("train", "--gate goes with --register GROUP");
    if (register_group) {
        /* Found out before hours of training, not after. */
        reg_gate_rules rules;
        if (gate_rules && reg_gate_parse(gate_rules, &rules))
            return cli_usage_error("train", "--gate: %s", lupe_errmsg());
        lupe_ws *ws = NULL;
        lupe_status wst = cli_open_ws(ctx, &ws);
        lupe_ws_close(ws);
        if (wst) return cli_fail("train");
    }
    char *storage = NULL;
    if (pre.count && (resume_dir || c.init))
        return cli_usage_error("train", "--pretrain makes the starting weights itself: not with --init or --resume");
    if (resume_dir) {
        if (optind < argc) return cli_usage_error("train", "--resume takes the run folder only, not DATA");
        char *cfg = lupe_path_join(resume_dir, "config.json");
        trn_cfg_default(&c);
        lupe_status st = cfg ? trn_cfg_load(&c, cfg, &storage) : LUPE_ENOMEM;
        lupe_free(cfg);
        if (st) return cli_fail("train");
        c.resume = 1;
        c.out = resume_dir;
        c.stop_after = stop_after;
        c.ws_dir = ctx->workspace;
    } else {
        if (optind != argc - 1)
            return cli_usage_error("train", "expected one DATA argument: a dataset version (NAME@N) or a YOLO folder");
        c.data = argv[optind];
    }
    train_ui ui = {.tty = isatty(2), .quiet = ctx->quiet};
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    trn_result res = {0};
    lupe_status st = LUPE_OK;
    if (pre.count) {
        int stopped = 0;
        st = pretrain_synth(&c, &pre, &ui, &pre_init, &stopped);
        if (st || stopped) {
            sigaction(SIGINT, &old, NULL);
            lupe_free(storage);
            if (stopped) printf("pretraining stopped; the same command resumes it\n");
            return st ? cli_fail("train") : EXIT_OK;
        }
        c.init = pre_init;
    }
    st = trn_train(&c, on_progress, &ui, &res);
    sigaction(SIGINT, &old, NULL);
    lupe_free(storage);
    lupe_free(pre_init);
    if (st) {
        if (res.dir) fprintf(stderr, "lupe train: run folder %s\n", res.dir);
        lupe_free(res.dir);
        return cli_fail("train");
    }
    if (res.stopped) {
        printf("stopped after %d epochs; continue with: lupe train --resume %s\n", res.epochs, res.dir);
    } else {
        printf("run: %s (%d epochs, %.0f s, %.1f training images/s)\n", res.dir, res.epochs, res.seconds,
               res.train_images_per_s);
        printf("val:  P %.3f  R %.3f  mAP50 %.3f  mAP50-95 %.3f\n", res.val[0], res.val[1], res.val[2], res.val[3]);
        if (res.test[0] >= 0)
            printf("test: P %.3f  R %.3f  mAP50 %.3f  mAP50-95 %.3f\n", res.test[0], res.test[1], res.test[2],
                   res.test[3]);
    }
    rc = EXIT_OK;
    if (register_group && res.stopped) {
        printf("not registered: the run has not finished\n");
    } else if (register_group) {
        lupe_ws *ws = NULL;
        if (cli_open_ws(ctx, &ws)) rc = cli_fail("train");
        else rc = cli_models_register(ctx, ws, res.dir, register_group, gate_rules, 1, NULL, NULL, c.threads);
        lupe_ws_close(ws);
    }
    lupe_free(res.dir);
    return rc;
}

int cmd_val(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"split", required_argument, NULL, 's'},   {"conf", required_argument, NULL, 'c'},
        {"iou", required_argument, NULL, 'u'},     {"batch", required_argument, NULL, 'b'},
        {"plots", required_argument, NULL, 'p'},   {"threads", required_argument, NULL, 'T'},
        {"precision", required_argument, NULL, 'P'}, {"json", no_argument, NULL, 'j'},
        {0},
    };
    int rc = cli_getopt_help("val", argc, argv);
    if (rc >= 0) return rc;
    trn_val_cfg c;
    trn_val_cfg_default(&c);
    c.ws_dir = ctx->workspace;
    int o, json = 0;
    while ((o = getopt_long(argc, argv, "s:c:u:b:p:T:P:j", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 's':
            c.split = lupe_split_parse(optarg);
            bad = c.split < 0;
            break;
        case 'c': bad = cli_parse_float(optarg, 0, 1, &c.conf); break;
        case 'u': bad = cli_parse_float(optarg, 0, 1, &c.iou); break;
        case 'b': bad = cli_parse_int(optarg, 1, 1024, &c.batch); break;
        case 'p': c.plots = optarg; break;
        case 'T': bad = cli_parse_int(optarg, 0, 1024, &c.threads); break;
        case 'P':
            c.precision = parse_precision(optarg);
            bad = c.precision < 0;
            break;
        case 'j': json = 1; break;
        default: return cli_usage_error("val", "bad option (see lupe val --help)");
        }
        if (bad) return cli_usage_error("val", "bad value '%s' for %s", optarg, argv[optind - 1]);
    }
    if (optind != argc - 2) return cli_usage_error("val", "expected MODEL and DATA");
    c.weights = argv[optind];
    c.data = argv[optind + 1];
    eval_result r;
    char **classes = NULL;
    int nc = 0;
    if (trn_val(&c, &r, &classes, &nc)) return cli_fail("val");
    if (json) {
        json_t *cls = json_array();
        for (int i = 0; i < nc; i++)
            json_array_append_new(cls, json_pack("{s:s, s:i, s:f, s:f, s:f, s:f}", "name", classes[i], "boxes",
                                                 r.ngt[i], "precision", r.p_class[i], "recall", r.r_class[i], "map50",
                                                 r.ap50[i], "map50_95", r.ap[i]));
        json_t *j = json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:o}", "split", lupe_split_name(c.split), "precision",
                              r.p, "recall", r.r, "map50", r.map50, "map50_95", r.map, "conf", r.conf, "classes", cls);
        char *text = lupe_json_dump(j, 1);
        json_decref(j);
        if (text) printf("%s\n", text);
        lupe_free(text);
    } else {
        printf("%-16s %7s %7s %7s %7s %9s\n", "class", "boxes", "P", "R", "mAP50", "mAP50-95");
        int all = 0;
        for (int i = 0; i < nc; i++) all += r.ngt[i];
        printf("%-16s %7d %7.3f %7.3f %7.3f %9.3f\n", "all", all, r.p, r.r, r.map50, r.map);
        if (nc > 1)
            for (int i = 0; i < nc; i++)
                printf("%-16s %7d %7.3f %7.3f %7.3f %9.3f\n", classes[i], r.ngt[i], r.p_class[i], r.r_class[i],
                       r.ap50[i], r.ap[i]);
        printf("confidence at max F1: %.3f\n", r.conf);
        if (c.plots) printf("plots: %s/\n", c.plots);
    }
    for (int i = 0; i < nc; i++) lupe_free(classes[i]);
    lupe_free(classes);
    eval_result_free(&r);
    return EXIT_OK;
}
