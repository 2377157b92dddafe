/*
 * lupe registry: model groups and their numbered versions (what each was
 * trained on, by which lupe, with which settings, and how it scored), the
 * approval status with its history, aliases such as `production`, the
 * approval gate (absolute thresholds and champion/challenger), signing keys,
 * and signed model packages. A package is contract 4 between stages: the
 * weights, a manifest listing the SHA-256 of every file, and an Ed25519
 * signature over the manifest (docs/registry.md, docs/package.md).
 *
 *     reg_register_opts o = {.run_dir = "runs/train-3", .group = "tag-scratch"};
 *     reg_version v;
 *     if (reg_register(ws, &o, &v)) die(lupe_errmsg());
 *     reg_gate_opts g;
 *     reg_gate_opts_default(&g);            // test mAP50-95 >= 0.4, beat production
 *     reg_gate_result r;
 *     reg_gate_run(ws, "tag-scratch:3", &g, &r);   // approves when it passes
 *     printf("%s\n", r.pass ? "approved" : r.reason);
 *     reg_gate_result_cleanup(&r);
 *     reg_version_cleanup(&v);
 *
 *     uint8_t pk[32];                       // on the edge: base + verify.c only
 *     if (reg_package_verify("pkg/", pk, NULL)) refuse(lupe_errmsg());
 */
#ifndef LUPE_REGISTRY_H
#define LUPE_REGISTRY_H

#include <stdint.h>

#include "lupe/store.h"

#define REG_NAME_MAX 100 /* group, alias and key names: [A-Za-z0-9_.-]+ */

/* ---- versions (src/registry/version.c) ----------------------------------- */
typedef enum { REG_PENDING, REG_APPROVED, REG_REJECTED, REG_ARCHIVED, REG_NSTATUS } reg_status;
const char *reg_status_name(reg_status s); /* "pending", ... */
int reg_status_parse(const char *s);        /* -1 if unknown */

/* The user a change is recorded under: $LUPE_USER, else the login name. */
const char *reg_default_user(void);

typedef struct reg_version {
    int64_t id;                   /* row id */
    char *group;
    int version;                  /* 1, 2, 3 ... within the group */
    char *arch;                   /* "yolov8" */
    char scale[2];                /* "n" or "s" */
    int imgsz;
    char *classes;                /* JSON array of names */
    int nc;
    char dataset_id[LUPE_SHA256_HEX]; /* "" for a model trained on a folder */
    char *dataset_name;           /* "metal-tags@2", or the folder */
    char *source_commit;          /* lupe's commit that trained it */
    char *hyperparams;            /* the run's config.json */
    char *run_dir;                /* absolute path of the run folder then */
    char *metrics;                /* JSON {"val": {...}, "test": {...} or null}; see trn_metrics_json */
    char weights[LUPE_SHA256_HEX];/* object id of best.ckpt */
    int64_t weights_size;
    char results[LUPE_SHA256_HEX];/* object id of results.csv, "" if none */
    char *gate;                   /* JSON of the last gate run, NULL if never gated */
    char *note;                   /* NULL if none */
    reg_status status;
    char *registered_by;
    int64_t registered_at;
} reg_version;
void reg_version_cleanup(reg_version *v);

typedef struct reg_register_opts {
    const char *run_dir;          /* a finished run folder (metrics.json, weights/best.ckpt) */
    const char *group;            /* made on first use */
    const char *by;               /* NULL: reg_default_user() */
    const char *note;             /* NULL: none */
} reg_register_opts;

/* Registers the run as the group's next version, status pending: the
 * weights and results.csv go into the object store (durably, first), then
 * the rows in one transaction. Refuses a run without metrics.json (not
 * finished) or whose best.ckpt no longer hashes as metrics.json recorded. */
lupe_status reg_register(lupe_ws *ws, const reg_register_opts *o, reg_version *out);

/* ref: "GROUP:V", "GROUP@ALIAS" or "GROUP" (its newest version). */
lupe_status reg_get(lupe_ws *ws, const char *ref, reg_version *out);
/* Versions of one group (NULL: all), by group name then version. fn
 * returns nonzero to stop; the record is valid during the call only. */
lupe_status reg_each(lupe_ws *ws, const char *group, int (*fn)(void *ud, const reg_version *v), void *ud);
/* A number from a version's metrics JSON: split "val" or "test", metric
 * "p", "r", "f1", "map50", "map50_95" or "conf". LUPE_ENOTFOUND if the
 * split or metric is absent. */
lupe_status reg_metric(const char *metrics_json, const char *split, const char *metric, double *out);

/* ---- status and aliases (src/registry/status.c) ---------------------------
 * pending -> approved | rejected; approved -> archived; rejected ->
 * archived. Every change records who, when and why. */
lupe_status reg_set_status(lupe_ws *ws, const char *ref, reg_status to, const char *who, const char *why);
/* 1 if from -> to is allowed. */
int reg_transition_allowed(reg_status from, reg_status to);

typedef struct reg_status_change {
    int version;
    const char *from;             /* NULL for the registration */
    const char *to, *who, *why;
    int64_t at;
} reg_status_change;
lupe_status reg_status_log_each(lupe_ws *ws, const char *ref, int (*fn)(void *ud, const reg_status_change *c),
                                 void *ud);

/* Points GROUP's alias NAME at version V, recording the move (who, when,
 * from, to, why; why may be NULL). *out_prev (may be NULL) gets the version
 * it pointed at before, 0 if it is new; pointing it where it already points
 * changes and records nothing. An alias may not point at a rejected or
 * archived version, `production` only at an approved one; and a version an
 * alias points at cannot be rejected or archived. */
lupe_status reg_alias_set(lupe_ws *ws, const char *group, const char *name, int version, const char *who,
                          const char *why, int *out_prev);
typedef struct reg_alias {
    const char *group, *name;
    int version;
} reg_alias;
lupe_status reg_alias_each(lupe_ws *ws, const char *group, int (*fn)(void *ud, const reg_alias *a), void *ud);
typedef struct reg_alias_move {
    const char *group, *name;
    int from;                     /* 0: the alias was new */
    int to;
    const char *who, *why;        /* why may be NULL */
    int64_t at;
} reg_alias_move;
lupe_status reg_alias_log_each(lupe_ws *ws, const char *group, int (*fn)(void *ud, const reg_alias_move *m),
                               void *ud);

/* ---- the gate (src/registry/gate.c) ---------------------------------------
 * Absolute rules on one split's metrics, "map50_95>=0.4,map50>=0.8" (split
 * test unless a rule says "val.map50>=0.8"; operators >=, >, <=, <), AND a
 * strictly higher test mAP50-95 than the version `production` points to,
 * on the same test split: a champion evaluated on another dataset is
 * evaluated again on this version's test split. */
#define REG_GATE_MAX_RULES 16
#define REG_GATE_DEFAULT "map50_95>=0.4"

typedef struct reg_gate_rule {
    char split[8];                /* "test" or "val" */
    char metric[16];              /* as reg_metric */
    char op[3];                   /* ">=", ">", "<=", "<" */
    double threshold;
} reg_gate_rule;

typedef struct reg_gate_rules {
    reg_gate_rule r[REG_GATE_MAX_RULES];
    int n;
} reg_gate_rules;
lupe_status reg_gate_parse(const char *text, reg_gate_rules *out);

/* Evaluates a checkpoint file on the test split of data (a dataset id or
 * folder) into *metrics_json (a funnel string, the form of
 * trn_metrics_json). The default runs trn_val; tests pass their own. */
typedef lupe_status (*reg_eval_fn)(void *ud, lupe_ws *ws, const char *weights_path, const char *data,
                                   char **metrics_json);

typedef struct reg_gate_opts {
    reg_gate_rules rules;
    const char *champion_alias;   /* default "production" */
    const char *by;               /* who the gate's status change is recorded under; default "gate" */
    int threads;                  /* for a re-evaluation; 0 = all cores */
    reg_eval_fn evaluate;         /* NULL: trn_val */
    void *evaluate_ud;
} reg_gate_opts;
void reg_gate_opts_default(reg_gate_opts *o);

typedef struct reg_gate_result {
    int pass;
    int champion_version;         /* 0: there is no champion */
    int reevaluated;              /* the champion was evaluated again on this test split */
    char *reason;                 /* one line: what passed or why it failed */
    char *json;                   /* what was stored on the version */
} reg_gate_result;
void reg_gate_result_cleanup(reg_gate_result *r);

/* The decision alone, without the database: challenger and champion
 * metrics JSON (champion NULL: none). */
lupe_status reg_gate_decide(const reg_gate_rules *rules, const char *challenger_metrics, const char *champion_metrics,
                            int champion_version, reg_gate_result *out);
/* Gates a pending version: stores the comparison on it and, if it passes,
 * approves it (by o->by, why = the reason). A failing version stays
 * pending. LUPE_EARG if the version is not pending. */
lupe_status reg_gate_run(lupe_ws *ws, const char *ref, const reg_gate_opts *o, reg_gate_result *out);

/* ---- signing keys (src/registry/keys.c) -----------------------------------
 * .lupe/keys/NAME.key holds the Ed25519 secret key (mode 0600), NAME.pub
 * the public key as 64 hex digits. A key's id is the first 16 hex digits
 * of the SHA-256 of the public key. */
#define REG_KEY_ID_HEX 17

lupe_status reg_key_create(lupe_ws *ws, const char *name, uint8_t pk[LUPE_ED25519_PK]);
lupe_status reg_key_public(lupe_ws *ws, const char *name, uint8_t pk[LUPE_ED25519_PK]);
/* Loads both halves and checks they belong together. */
lupe_status reg_key_load(lupe_ws *ws, const char *name, uint8_t pk[LUPE_ED25519_PK], uint8_t sk[LUPE_ED25519_SK]);
/* Names of the keys with a public half, in name order. */
lupe_status reg_key_each(lupe_ws *ws, int (*fn)(void *ud, const char *name, const uint8_t pk[LUPE_ED25519_PK]),
                         void *ud);
void reg_key_id(const uint8_t pk[LUPE_ED25519_PK], char out[REG_KEY_ID_HEX]);
/* Parses 64 hex digits; LUPE_EARG naming what is wrong. */
lupe_status reg_pubkey_parse(const char *hex, uint8_t pk[LUPE_ED25519_PK]);

/* ---- packages (src/registry/package.c, src/registry/verify.c) -------------
 * A folder: weights.ckpt, results.csv (when recorded), model.onnx (when an
 * exporter is plugged in), manifest.json and manifest.sig. */
#define REG_PACKAGE_FORMAT "lupe-model-package"
#define REG_PACKAGE_VERSION 1
#define REG_PACKAGE_MAX_FILES 64

/* Writes the files a package carries beyond the weights (the ONNX export,
 * model.onnx) into dir, the package being built; weights_path is the
 * checkpoint. Every regular file in dir is then listed in the manifest. */
typedef lupe_status (*reg_extra_files_fn)(void *ud, const reg_version *v, const char *weights_path, const char *dir);

typedef struct reg_package_opts {
    const char *out;              /* folder to create; must not exist */
    const uint8_t *pk, *sk;       /* signing key (reg_key_load) */
    const char *by;               /* recorded as created_by; NULL: reg_default_user() */
    reg_extra_files_fn extra_files; /* NULL: no ONNX file (no exporter yet) */
    void *extra_ud;
} reg_package_opts;

/* Builds the package in a temp folder beside out and renames it into
 * place, so out appears complete or not at all. */
lupe_status reg_package(lupe_ws *ws, const char *ref, const reg_package_opts *o);

/* Which check failed (reg_verify_report.failed). */
typedef enum {
    REG_VERIFY_OK,
    REG_VERIFY_READ,              /* manifest.json or manifest.sig missing or unreadable */
    REG_VERIFY_SIG_SIZE,          /* manifest.sig is not 64 bytes */
    REG_VERIFY_WRONG_KEY,         /* signed by another key */
    REG_VERIFY_SIGNATURE,         /* the signature does not match the manifest's bytes */
    REG_VERIFY_MANIFEST,          /* signed, but not a manifest this lupe reads */
    REG_VERIFY_FILE_MISSING,
    REG_VERIFY_FILE_SIZE,
    REG_VERIFY_FILE_HASH,
    REG_VERIFY_EXTRA_FILE,        /* a file in the folder the manifest does not list */
} reg_verify_check;
const char *reg_verify_check_name(reg_verify_check c);

typedef struct reg_verify_report {
    reg_verify_check failed;
    char file[128];               /* the file concerned, "" if none */
    char key_id[REG_KEY_ID_HEX];  /* the manifest's key id */
    int nfiles;                   /* files checked */
} reg_verify_report;

/* Checks, in this order: the signature over manifest.json's exact bytes
 * with pk (a wrong key and a changed manifest are told apart by the key
 * id); only then parses the manifest; each listed file's size and SHA-256;
 * that the folder holds no file the manifest does not list (names starting
 * with '.' are ignored). LUPE_EVERIFY with a message naming the check (and
 * the file); report (may be NULL) says which. Needs only the base library,
 * so the edge agent links it alone. */
lupe_status reg_package_verify(const char *dir, const uint8_t pk[LUPE_ED25519_PK], reg_verify_report *report);

/* A parsed manifest's file list (signature already checked). */
typedef struct reg_manifest_file {
    char name[128];
    int64_t size;
    char sha256[LUPE_SHA256_HEX];
} reg_manifest_file;
typedef struct reg_manifest {
    int format_version;
    char key_id[REG_KEY_ID_HEX];
    reg_manifest_file files[REG_PACKAGE_MAX_FILES];
    int nfiles;
} reg_manifest;
/* Parses manifest bytes (hostile input: every field checked, file names
 * plain, no duplicates). */
lupe_status reg_manifest_parse(const char *text, size_t len, reg_manifest *out);

/* ---- compare (src/registry/compare.c) ------------------------------------ */
typedef struct reg_disagreement {
    int index;                    /* sample index in the split */
    char image[LUPE_SHA256_HEX];  /* image id (dataset) or file name (folder) */
    int na, nb;                   /* boxes over the confidence of each model */
    int matched;                  /* pairs of the same class with IoU >= 0.1 */
    double mean_iou;              /* of the matched pairs */
    double score;                 /* (1 - mean_iou, 0 without pairs) + unmatched boxes */
} reg_disagreement;

typedef struct reg_compare_opts {
    const char *data;             /* NULL: version a's dataset */
    int split;                    /* LUPE_SPLIT_*; default test */
    float conf;                   /* boxes counted: score >= conf (default 0.25) */
    int top;                      /* images kept, most disagreement first (default 5) */
    int threads;
} reg_compare_opts;
void reg_compare_opts_default(reg_compare_opts *o);

/* One image's disagreement between boxes a and b (those over the
 * confidence already): fills na, nb, matched, mean_iou and score. */
struct det_pred;
lupe_status reg_disagree(const struct det_pred *a, int na, const struct det_pred *b, int nb, reg_disagreement *out);

/* Runs both versions on the split and ranks its images by disagreement.
 * *out gets up to o->top entries (lupe_free), *nimages the images seen. */
lupe_status reg_compare(lupe_ws *ws, const char *ref_a, const char *ref_b, const reg_compare_opts *o,
                        reg_disagreement **out, int *nout, int *nimages);

#endif
