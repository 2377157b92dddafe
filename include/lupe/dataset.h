/*
 * lupe datasets: immutable, content-addressed dataset versions. A version
 * freezes, for one label set, the approved label of every image and the
 * split it belongs to, as a manifest whose SHA-256 is the version's id and
 * whose readable name is NAME@N. This is contract 3 between stages: training
 * reads a manifest and the objects it names, nothing else.
 *
 *     lupe_dataset_opts o = lupe_dataset_default_opts();
 *     o.name = "metal-tags";
 *     o.group_by = "image-(.*)-cropped";   // all crops of a photo on one side
 *     lupe_dataset_info v;
 *     if (lupe_dataset_create(ws, &o, &v, NULL)) die(lupe_errmsg());
 *     printf("%s@%d %s\n", v.name, v.version, v.id);
 *     lupe_dataset_info_cleanup(&v);
 */
#ifndef LUPE_DATASET_H
#define LUPE_DATASET_H

#include <stdint.h>

#include "lupe/formats.h"
#include "lupe/label.h"

enum { LUPE_SPLIT_TRAIN, LUPE_SPLIT_VAL, LUPE_SPLIT_TEST, LUPE_SPLIT_COUNT };
const char *lupe_split_name(int split); /* "train", "val", "test" */
int lupe_split_parse(const char *s);     /* -1 if unknown */

typedef enum { LUPE_FROM_APPROVED, LUPE_FROM_SUBMITTED } lupe_label_from;

typedef struct lupe_dataset_opts {
    const char *name;        /* required: [A-Za-z0-9_.-]+ */
    const char *labelset;    /* default "default" */
    lupe_label_from from;    /* approved labels only (default), or submitted too */
    int ratios[3];           /* train/val/test percentages, summing to 100; default 70/15/15 */
    const char *group_by;    /* NULL: each image alone; "tag:KEY": the tag's value;
                                else an extended regex over the file name: the first
                                capture group (or the whole match) names the group */
    const char *split_from;  /* folder with train.txt, val.txt, test.txt listing file
                                names: use that split instead of computing one */
    uint64_t seed;
    const char *author;
} lupe_dataset_opts;
lupe_dataset_opts lupe_dataset_default_opts(void);
/* Parses "70/15/15" into ratios; 0 or -1. */
int lupe_dataset_parse_ratios(const char *s, int ratios[3]);

typedef struct lupe_dataset_info {
    char id[LUPE_SHA256_HEX];
    char *name;
    int version;
    char *labelset;
    char parent[LUPE_SHA256_HEX]; /* "" for the first version */
    int64_t items, boxes, split_items[3];
    char *created_by;
    int64_t created_at;
    char *params;                 /* JSON of the options that made it */
} lupe_dataset_info;
void lupe_dataset_info_cleanup(lupe_dataset_info *d);

/* Freezes a new version NAME@N+1. Images keep the split they had in NAME@N
 * where they can (their group decides when groups disagree); new groups are
 * placed deterministically from the seed. If the manifest equals the
 * newest version's, nothing is created and *out_unchanged (may be NULL) is
 * set. Crash-safe: the manifest object is durable before the version row. */
lupe_status lupe_dataset_create(lupe_ws *ws, const lupe_dataset_opts *o, lupe_dataset_info *out, int *out_unchanged);
/* ref: "NAME@N", "NAME" (newest version) or an id prefix of 8+ hex digits. */
lupe_status lupe_dataset_get(lupe_ws *ws, const char *ref, lupe_dataset_info *out);
lupe_status lupe_dataset_each(lupe_ws *ws, int (*fn)(void *ud, const lupe_dataset_info *d), void *ud);

/* A loaded manifest. */
typedef struct lupe_dataset_item {
    char image[LUPE_SHA256_HEX];
    char label[LUPE_SHA256_HEX];  /* label revision hash */
    int split;
    int width, height;
    char *group;
    char *file_name;              /* base name of the image's original path */
    lupe_box *boxes;
    int nboxes;
} lupe_dataset_item;

typedef struct lupe_manifest {
    char id[LUPE_SHA256_HEX];
    char *name, *labelset;
    char **classes;
    int nclasses;
    lupe_dataset_item *items;     /* sorted by image id */
    int64_t nitems;
} lupe_manifest;
lupe_status lupe_dataset_load(lupe_ws *ws, const char *ref, lupe_manifest **out);
void lupe_manifest_free(lupe_manifest *m);

typedef struct lupe_dataset_stats {
    int64_t images[3], boxes[3], negatives[3];
    int64_t *class_boxes;         /* [nclasses * 3]: class c, split s at c*3+s */
    int nclasses;
    int64_t size_hist[8];         /* boxes by sqrt(w*h): <8, <16, <32, <64, <128, <256, <512, larger */
    int64_t groups[3];
    int64_t duplicate_boxes;      /* pairs of boxes of one class in one image with IoU > 0.9 */
    int64_t groups_split;         /* groups found on more than one side (should be 0) */
} lupe_dataset_stats;
lupe_status lupe_dataset_stats_get(const lupe_manifest *m, lupe_dataset_stats *out);
void lupe_dataset_stats_cleanup(lupe_dataset_stats *s);

/* Differences between two versions, reported one line at a time:
 * "added 1f2e3d4c5b6a (train, 2 boxes)", "removed ...", "moved ... val -> test",
 * "label 1f2e3d4c5b6a: box added scratch 10,20 30x40", "...: box removed ...",
 * "...: box changed scratch 10,20 30x40 -> 11,20 30x40". */
typedef struct lupe_dataset_diff {
    int64_t added, removed, moved, relabeled, boxes_added, boxes_removed, boxes_changed;
} lupe_dataset_diff;
lupe_status lupe_dataset_diff_get(const lupe_manifest *a, const lupe_manifest *b,
                                  void (*line)(void *ud, const char *text), void *ud, lupe_dataset_diff *out);

/* Writes a version as a folder in a format other tools train on. */
lupe_status lupe_dataset_export(lupe_ws *ws, const char *ref, lupe_fmt_kind kind, const char *out_dir);

#endif
