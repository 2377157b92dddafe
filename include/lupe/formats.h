/*
 * lupe label formats: readers and writers for the bounding-box label files
 * other tools use, over one in-memory document. The formats library knows
 * nothing of workspaces: the store imports a document (ingesting the images
 * it references, creating label revisions) and exports dataset versions by
 * filling a document and calling a writer.
 *
 *     lupe_fmt_doc *doc = NULL;
 *     if (lupe_fmt_read(LUPE_FMT_COCO, "instances.json", &doc)) die(lupe_errmsg());
 *     for (size_t i = 0; i < doc->nskipped; i++) printf("skipped: %s\n", doc->skipped[i]);
 *     for (size_t i = 0; i < doc->nitems; i++) use(doc->items[i].image, doc->items[i].boxes);
 *     lupe_fmt_doc_free(doc);
 *
 * Supported: gt-csv (the seed's Ground-Truth-style CSV), gt-manifest
 * (SageMaker Ground Truth augmented manifest, JSON lines), yolo (txt per
 * image plus a classes file), coco (JSON), voc (Pascal VOC XML per image).
 */
#ifndef LUPE_FORMATS_H
#define LUPE_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "lupe/base.h"

typedef enum {
    LUPE_FMT_GT_CSV,
    LUPE_FMT_GT_MANIFEST,
    LUPE_FMT_YOLO,
    LUPE_FMT_COCO,
    LUPE_FMT_VOC,
    LUPE_FMT_COUNT
} lupe_fmt_kind;

/* "gt-csv", "gt-manifest", "yolo", "coco", "voc"; -1 if unknown. */
int lupe_fmt_from_name(const char *name);
const char *lupe_fmt_name(lupe_fmt_kind k);

/* A box: class index into doc->classes; x, y = top-left corner, w, h; in
 * pixels of the image, or as fractions of its size when the item says
 * `normalized` (YOLO files do not record the image size). */
typedef struct lupe_fmt_box {
    int cls;
    double x, y, w, h;
} lupe_fmt_box;

typedef struct lupe_fmt_item {
    char *image;        /* image reference as written in the file: a path
                           (relative to the label file's folder), a file
                           name or a URI such as s3://bucket/a/b.jpg */
    int width, height;  /* 0 when the file does not say */
    int normalized;     /* boxes are fractions of width/height */
    int labeled;        /* the file holds a label for this image; an empty
                           box list with labeled = 1 is a labeled negative */
    lupe_fmt_box *boxes;
    size_t nboxes;
    char *split;        /* "train", "val", "test" or NULL */
    char *src_path;     /* export only: file to copy the image from */
    char *export_name;  /* export only: file name to give the image, unique */
    int64_t time;       /* label time if the file records one, else 0 */
    int line;           /* where the item came from (line or element index) */
} lupe_fmt_item;

typedef struct lupe_fmt_doc {
    char **classes;     /* class names in index order */
    size_t nclasses;
    lupe_fmt_item *items;
    size_t nitems;
    char **skipped;     /* one message per row, record or box the reader
                           skipped: "labels.csv:17: box 2: width is 0" */
    size_t nskipped;
} lupe_fmt_doc;

lupe_fmt_doc *lupe_fmt_doc_new(void);
void lupe_fmt_doc_free(lupe_fmt_doc *doc);
/* Building helpers (used by readers, the store's exporter and tests). */
lupe_status lupe_fmt_doc_add_class(lupe_fmt_doc *doc, const char *name, int *out_index);
lupe_fmt_item *lupe_fmt_doc_add_item(lupe_fmt_doc *doc, const char *image);
lupe_status lupe_fmt_item_add_box(lupe_fmt_item *it, int cls, double x, double y, double w, double h);
lupe_status lupe_fmt_doc_skip(lupe_fmt_doc *doc, const char *fmt, ...) LUPE_PRINTF(2, 3);

/* Reads a label file or folder (gt-csv: a .csv file or a folder with
 * labels.csv; gt-manifest: a file or a folder with output.manifest; coco: a
 * .json file or a folder with annotations/ holding .json files; yolo: a folder with
 * labels/ and a classes file; voc: a folder of .xml files or one file). A file that cannot be understood at all
 * is an error naming file, line or byte; a row or box that is wrong is
 * skipped and listed in doc->skipped, so nothing is silently dropped.
 * Caps: 1 GiB per file, 10M items, 10k boxes per image, 10k classes. */
lupe_status lupe_fmt_read(lupe_fmt_kind kind, const char *path, lupe_fmt_doc **out);

/* Parsers over a buffer, for one file's worth of bytes (fuzz targets call
 * these). source_name is used in messages. YOLO: one label .txt for image
 * `image`, into doc, with classes already in doc; and the classes file. */
lupe_status lupe_fmt_parse_gt_csv(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name);
lupe_status lupe_fmt_parse_gt_manifest(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name);
lupe_status lupe_fmt_parse_coco(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name);
lupe_status lupe_fmt_parse_voc(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name);
lupe_status lupe_fmt_parse_yolo_classes(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name);
lupe_status lupe_fmt_parse_yolo_labels(lupe_fmt_doc *doc, const char *image, const char *buf, size_t len,
                                       const char *source_name);

/* Writes doc as a folder any other tool can train on, copying each item's
 * src_path to its export_name (a copy, so edits in the export cannot reach
 * the workspace). Boxes must be in pixels and width/height known. The
 * folder is built under OUT.partial and renamed to out_dir when complete;
 * out_dir must not exist. Layouts are in docs/formats-labels.md. */
lupe_status lupe_fmt_write(lupe_fmt_kind kind, const lupe_fmt_doc *doc, const char *out_dir);

#endif
