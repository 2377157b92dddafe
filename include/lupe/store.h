/*
 * lupe store: the workspace. A folder `.lupe/` holds an SQLite database (WAL
 * mode, versioned schema) and a content-addressed object folder
 * (`objects/ab/cdef...`, id = SHA-256 of the bytes). Raw images are the
 * first contract between stages: an image's id is the hash of its bytes and
 * its metadata says where it came from.
 *
 *     lupe_ws *ws = NULL;
 *     if (lupe_ws_open(".", LUPE_WS_FIND, &ws)) die(lupe_errmsg());
 *     lupe_ingest_opts o = lupe_ingest_default_opts(ws);
 *     o.source = "line-3-camera";
 *     lupe_ingest_summary sum;
 *     const char *paths[] = {"photos/"};
 *     lupe_ingest_paths(ws, paths, 1, &o, &sum);
 *     lupe_ws_close(ws);
 */
#ifndef LUPE_STORE_H
#define LUPE_STORE_H

#include <stdint.h>

#include "lupe/base.h"
#include "lupe/img.h"

#define LUPE_WS_DIR ".lupe"

typedef struct lupe_ws lupe_ws;

/* ---- workspace ----------------------------------------------------------- */
enum { LUPE_WS_FIND = 1 /* search DIR and its parents for .lupe/ */ };

/* Creates DIR/.lupe (DIR is made if missing). LUPE_EEXIST if one is there. */
lupe_status lupe_ws_init(const char *dir, lupe_ws **out);
/* Opens the workspace in DIR (or the nearest parent with LUPE_WS_FIND),
 * migrating its schema forward if it is older than this lupe. */
lupe_status lupe_ws_open(const char *dir, int flags, lupe_ws **out);
void lupe_ws_close(lupe_ws *ws);
const char *lupe_ws_root(const lupe_ws *ws);   /* the folder holding .lupe/ */
int lupe_ws_schema_version(const lupe_ws *ws);
int lupe_ws_schema_latest(void);

/* Workspace settings, from .lupe/config (a lupe config file). */
typedef struct lupe_ws_config {
    uint64_t ingest_max_file_size; /* bytes; default 256M */
    int64_t ingest_max_side;       /* default 32768 */
    int64_t ingest_max_pixels;     /* default 64M */
    char *ingest_default_source;   /* default NULL: none */
    int labels_out_of_bounds;      /* 0 = clip boxes to the image, 1 = reject them */
} lupe_ws_config;
const lupe_ws_config *lupe_ws_get_config(const lupe_ws *ws);

/* ---- objects ------------------------------------------------------------- */
/* Stores bytes under their SHA-256 (durably: temp, fsync, rename, fsync dir).
 * *out_existed (may be NULL) says whether the object was already there. */
lupe_status lupe_obj_put(lupe_ws *ws, const void *data, size_t len, char out_id[LUPE_SHA256_HEX], int *out_existed);
/* Reads an object and checks its hash; LUPE_ECORRUPT if it does not match. */
lupe_status lupe_obj_get(lupe_ws *ws, const char *id, uint8_t **out, size_t *out_len);
/* Path of an object's file (funnel string), whether or not it exists. */
char *lupe_obj_path(const lupe_ws *ws, const char *id);
int lupe_obj_id_valid(const char *id);

/* ---- images -------------------------------------------------------------- */
typedef struct lupe_image {
    char id[LUPE_SHA256_HEX];
    int64_t size;
    int width, height, channels;
    char format[8];          /* "jpeg" or "png" */
    int64_t captured_at;     /* unix time */
    char captured_from[8];   /* "exif" or "file" */
    char *source;            /* NULL if none */
    char *arrival;           /* "ingest", "edge", "import" */
    char *orig_path;
    int64_t ingested_at;
    char *tags;              /* "k=v,k=v" in key order, "" if none */
} lupe_image;
void lupe_image_cleanup(lupe_image *im);

typedef struct lupe_image_filter {
    const char *const *tags; /* "k=v" strings, all must match */
    int ntags;
    const char *source;      /* NULL = any */
    int64_t limit;           /* 0 = no limit */
} lupe_image_filter;

/* Calls fn for each matching image, oldest ingest first; fn returns nonzero
 * to stop. The record is only valid during the call. */
lupe_status lupe_images_each(lupe_ws *ws, const lupe_image_filter *f, int (*fn)(void *ud, const lupe_image *im),
                             void *ud);
lupe_status lupe_image_get(lupe_ws *ws, const char *id_or_prefix, lupe_image *out);

typedef struct lupe_ws_stats {
    int64_t images, bytes, paths, tags;
    int64_t by_format[3]; /* indexed by lupe_img_format */
} lupe_ws_stats;
lupe_status lupe_ws_stats_get(lupe_ws *ws, lupe_ws_stats *out);

/* ---- ingest -------------------------------------------------------------- */
typedef enum { LUPE_INGEST_STORED, LUPE_INGEST_DUPLICATE, LUPE_INGEST_REJECTED } lupe_ingest_outcome;

typedef struct lupe_ingest_event {
    const char *path;
    lupe_ingest_outcome outcome;
    const char *id;      /* stored or duplicate */
    const char *reason;  /* rejected: why */
    size_t index, total; /* 1-based position in the batch */
} lupe_ingest_event;

typedef struct lupe_ingest_opts {
    const char *source;          /* --source; NULL = the workspace default */
    const char *arrival;         /* default "ingest" */
    const char *const *tags;     /* "k=v" */
    int ntags;
    lupe_img_limits limits;
    size_t max_files;            /* cap on files per batch; default 10M */
    const char *include;         /* glob on file names found in folders (such as
                                    "*.jpg"); NULL = all. Files named directly
                                    are always taken. */
    void (*on_file)(void *ud, const lupe_ingest_event *ev);
    void *ud;
} lupe_ingest_opts;

typedef struct lupe_ingest_summary {
    size_t files, stored, duplicate, rejected;
    uint64_t bytes_stored;
} lupe_ingest_summary;

lupe_ingest_opts lupe_ingest_default_opts(const lupe_ws *ws);
/* Checks that a tag is "key=value" with a key of [A-Za-z0-9_.-]+. */
lupe_status lupe_tag_check(const char *tag);
/* Ingests files and folders (recursively, in name order). A file that is
 * not an acceptable image is rejected and reported through on_file; the
 * batch goes on. Returns an error only when the workspace itself fails
 * (disk, database), in which case what was already stored stays stored. */
lupe_status lupe_ingest_paths(lupe_ws *ws, const char *const *paths, int npaths, const lupe_ingest_opts *o,
                              lupe_ingest_summary *out);

/* ---- fsck ---------------------------------------------------------------- */
typedef struct lupe_fsck_opts {
    int quick;   /* skip hashing object contents */
    int repair;  /* remove stale temp files and old unreferenced objects */
    void (*on_problem)(void *ud, int is_error, const char *msg);
    void *ud;
} lupe_fsck_opts;

typedef struct lupe_fsck_report {
    int64_t images, objects, bytes_hashed;
    int64_t errors, warnings, repaired;
} lupe_fsck_report;

/* Checks the database and the objects agree. Problems are reported through
 * on_problem; the return value is LUPE_OK if the check could run at all. */
lupe_status lupe_fsck(lupe_ws *ws, const lupe_fsck_opts *o, lupe_fsck_report *out);

#endif
