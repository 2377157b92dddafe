/*
 * lupe labels: label sets (ordered class names), label revisions (the boxes
 * of one image, who made them, their review status), the labeling queue,
 * labeling jobs and review. Every change is a new revision; nothing is
 * overwritten. This is contract 2 between stages (see docs/architecture.md).
 *
 *     lupe_box b = {.cls = 0, .x = 81, .y = 123, .w = 82, .h = 97};
 *     lupe_label_new n = {.boxes = &b, .nboxes = 1, .status = LUPE_LABEL_SUBMITTED,
 *                         .source = LUPE_SRC_HUMAN, .author = "ana"};
 *     int64_t rev;
 *     if (lupe_label_add(ws, "default", "1f2e3d4c", &n, &rev)) die(lupe_errmsg());
 *     lupe_label_review(ws, "default", "1f2e3d4c", &(lupe_review){.action = LUPE_REVIEW_APPROVE,
 *                       .reviewer = "ben"}, &rev);
 */
#ifndef LUPE_LABEL_H
#define LUPE_LABEL_H

#include <stdint.h>

#include "lupe/store.h"

#define LUPE_LABEL_MAX_BOXES 10000
#define LUPE_LABEL_MAX_CLASSES 10000
#define LUPE_DEFAULT_LABELSET "default"

/* ---- label sets ---------------------------------------------------------- */
typedef struct lupe_labelset {
    int64_t id;
    char *name;
    char **classes; /* index = class id */
    int nclasses;
    int64_t created_at;
} lupe_labelset;
void lupe_labelset_cleanup(lupe_labelset *s);

lupe_status lupe_labelset_create(lupe_ws *ws, const char *name, const char *const *classes, int n, const char *author);
lupe_status lupe_labelset_get(lupe_ws *ws, const char *name, lupe_labelset *out);
/* Adding and renaming classes are recorded operations (see _log_each). */
lupe_status lupe_labelset_add_class(lupe_ws *ws, const char *name, const char *cls, const char *author);
lupe_status lupe_labelset_rename_class(lupe_ws *ws, const char *name, const char *from, const char *to,
                                       const char *author);
lupe_status lupe_labelset_each(lupe_ws *ws, int (*fn)(void *ud, const lupe_labelset *s), void *ud);
typedef struct lupe_labelset_op {
    const char *op, *detail, *author;
    int64_t at;
} lupe_labelset_op;
lupe_status lupe_labelset_log_each(lupe_ws *ws, const char *name, int (*fn)(void *ud, const lupe_labelset_op *op),
                                   void *ud);
/* Class index by name, or by decimal index; -1 if neither. */
int lupe_labelset_class(const lupe_labelset *s, const char *name_or_index);

/* ---- label revisions ----------------------------------------------------- */
typedef struct lupe_box {
    int cls;
    double x, y, w, h; /* pixels of the stored image; x, y = top-left */
} lupe_box;

typedef enum { LUPE_LABEL_DRAFT, LUPE_LABEL_SUBMITTED, LUPE_LABEL_APPROVED, LUPE_LABEL_REJECTED } lupe_label_status;
typedef enum { LUPE_SRC_HUMAN, LUPE_SRC_MODEL, LUPE_SRC_IMPORT } lupe_label_source;
const char *lupe_label_status_name(lupe_label_status s);
const char *lupe_label_source_name(lupe_label_source s);
int lupe_label_status_parse(const char *s);  /* -1 if unknown */
int lupe_label_source_parse(const char *s);

typedef struct lupe_label_rev {
    int64_t id, parent_id, job_id; /* parent_id, job_id: 0 if none */
    char image_id[LUPE_SHA256_HEX];
    char hash[LUPE_SHA256_HEX];    /* SHA-256 of the image id and the canonical boxes */
    lupe_box *boxes;
    int nboxes;
    lupe_label_status status;
    lupe_label_source source;
    char *author, *comment, *verdict; /* comment and verdict may be NULL */
    int64_t created_at;
} lupe_label_rev;
void lupe_label_rev_cleanup(lupe_label_rev *r);

typedef struct lupe_label_new {
    const lupe_box *boxes;
    int nboxes;
    lupe_label_status status;
    lupe_label_source source;
    const char *author;
    const char *comment;  /* may be NULL */
    const char *verdict;  /* review verdict, may be NULL */
    int64_t job_id;       /* 0 = none */
} lupe_label_new;

/* Box checks against the image size and the label set. Boxes outside the
 * image are clipped or rejected per the workspace setting
 * labels.out_of_bounds; boxes under 1 pixel wide or high and unknown classes
 * are rejected. Writes the checked boxes to out (n entries). The error
 * names the image and the box: "image 1f2e3d4c5b6a, box 2 (scratch 440,10
 * 30x20): extends past the 450x300 image". */
typedef enum { LUPE_OOB_CLIP, LUPE_OOB_REJECT } lupe_oob_policy;
lupe_status lupe_label_check_boxes(const char *image_id, int img_w, int img_h, const lupe_labelset *set,
                                   lupe_oob_policy policy, const lupe_box *in, int n, lupe_box *out, int *out_clipped);

/* Adds a revision for an image (full id or unique prefix). */
lupe_status lupe_label_add(lupe_ws *ws, const char *set, const char *image, const lupe_label_new *n, int64_t *out_rev);
/* The newest revision of an image; LUPE_ENOTFOUND if it has none. */
lupe_status lupe_label_latest(lupe_ws *ws, const char *set, const char *image, lupe_label_rev *out);
lupe_status lupe_label_get(lupe_ws *ws, int64_t rev_id, lupe_label_rev *out);
/* All revisions of an image, oldest first. */
lupe_status lupe_label_history(lupe_ws *ws, const char *set, const char *image,
                               int (*fn)(void *ud, const lupe_label_rev *r), void *ud);

/* ---- review -------------------------------------------------------------- */
typedef enum { LUPE_REVIEW_APPROVE, LUPE_REVIEW_REJECT, LUPE_REVIEW_ADJUST } lupe_review_action;
typedef struct lupe_review {
    lupe_review_action action;
    const char *reviewer;
    const char *verdict;      /* reject: missed_object, box_inaccurate, wrong_class, other */
    const char *comment;
    const lupe_box *boxes;    /* adjust: the corrected boxes */
    int nboxes;
} lupe_review;
/* Reviews the image's newest revision, which must be submitted and made by
 * someone other than the reviewer. Adds the resulting revision. */
lupe_status lupe_label_review(lupe_ws *ws, const char *set, const char *image, const lupe_review *rv, int64_t *out_rev);

/* ---- queue and jobs ------------------------------------------------------ */
typedef struct lupe_queue_item {
    const char *image_id;
    const char *reason;   /* "uncertain at the edge", "rejected", "unlabeled", "needs review", "draft" */
    int priority;         /* higher first */
    const char *orig_path;
    int64_t job_id;       /* open job holding it, 0 if none */
} lupe_queue_item;
/* Images of the workspace without an approved label in the set. */
lupe_status lupe_label_queue(lupe_ws *ws, const char *set, int64_t limit,
                             int (*fn)(void *ud, const lupe_queue_item *it), void *ud);

typedef struct lupe_label_job {
    int64_t id;
    char *set, *name, *assignee, *reviewer, *created_by;
    int64_t created_at;
    int items, approved, submitted, rejected; /* progress, from the items' newest revisions */
} lupe_label_job;
void lupe_label_job_cleanup(lupe_label_job *j);
/* Takes up to count images that need labeling from the queue (highest
 * priority first, skipping those already in an open job). */
lupe_status lupe_label_job_create(lupe_ws *ws, const char *set, int count, const char *name, const char *assignee,
                                  const char *reviewer, const char *creator, int64_t *out_id, int *out_items);
lupe_status lupe_label_job_get(lupe_ws *ws, int64_t id, lupe_label_job *out);
lupe_status lupe_label_job_each(lupe_ws *ws, int (*fn)(void *ud, const lupe_label_job *j), void *ud);
lupe_status lupe_label_job_items(lupe_ws *ws, int64_t id, int (*fn)(void *ud, const char *image_id, const char *status),
                                 void *ud);

/* ---- import -------------------------------------------------------------- */
typedef struct lupe_import_opts {
    int format;                 /* lupe_fmt_kind */
    const char *path;           /* label file or folder */
    const char *images_dir;     /* where image references are looked up; NULL =
                                   the folder of the label file (or the folder given) */
    const char *labelset;       /* default "default"; created from the file's classes if missing */
    const char *const *classes; /* names for the file's class ids, in order (for
                                   formats without names, such as gt-csv); may be NULL */
    int nclasses;
    int add_classes;            /* add classes the label set lacks instead of skipping */
    const char *author;         /* default "import" */
    lupe_label_status status;   /* status of the created revisions; default approved */
    int strict;                 /* any skipped item fails the whole import, nothing written */
    const char *source;         /* ingest source of the images; default none */
    void (*on_skip)(void *ud, const char *msg);
    void (*on_image)(void *ud, const lupe_ingest_event *ev); /* ingest progress */
    void *ud;
} lupe_import_opts;

typedef struct lupe_import_summary {
    size_t items, labeled, unchanged, skipped, boxes, clipped;
    lupe_ingest_summary ingest;
} lupe_import_summary;

lupe_import_opts lupe_import_default_opts(void);
/* Reads a label file, ingests the images it references and adds a label
 * revision (source import) for each labeled image. Every skipped row, item
 * or box is reported through on_skip with the reason. The label revisions
 * are written in one transaction: all of them or none. */
lupe_status lupe_label_import(lupe_ws *ws, const lupe_import_opts *o, lupe_import_summary *out);

/* The user name recorded as author: $LUPE_USER, else $USER, else "unknown". */
const char *lupe_label_default_author(void);

#endif
