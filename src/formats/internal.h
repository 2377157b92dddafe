/*
 * Helpers shared between the files of the label-formats library
 * (src/formats/). Not API: the public interface is include/lupe/formats.h.
 * Names carry the fmt__ prefix; caps that every reader enforces live here.
 */
#ifndef LUPE_FORMATS_INTERNAL_H
#define LUPE_FORMATS_INTERNAL_H

#include <stdbool.h>

#include "lupe/formats.h"

/* ---- caps -----------------------------------------------------------------
 * Every buffer that grows with input has one; going past a cap is a hard
 * LUPE_ELIMIT error naming the cap, never a silent truncation. */
#define FMT_MAX_FILE ((size_t)1 << 30)   /* bytes per label file */
#define FMT_MAX_ITEMS ((size_t)10000000) /* items per document */
#define FMT_MAX_BOXES ((size_t)10000)    /* boxes per item */
#define FMT_MAX_CLASSES ((size_t)10000)  /* classes per document */
#define FMT_MAX_STR ((size_t)4096)       /* image references, class names */
#define FMT_MAX_SKIPPED ((size_t)10000)  /* messages kept; later ones are counted */
#define FMT_MAX_DEPTH 32                 /* nesting of Python literals and XML */
#define FMT_MAX_FILES ((size_t)10000000) /* files listed in one folder tree */
#define FMT_MAX_DIR_DEPTH 16             /* folder nesting walked by readers */
/* Pixel coordinates and sizes beyond this are not a real image: the box is
 * skipped as out of range rather than overflowing an int downstream. */
#define FMT_MAX_COORD 1048576.0
/* YOLO values may stray this far outside [0, 1] from rounding in the tool
 * that wrote them before the line is refused. */
#define FMT_YOLO_TOL 1e-3

/* ---- document internals (doc.c) -------------------------------------------
 * A mark records a document's counts before a parse, so a hard error can
 * put the document back exactly as it was ("never a partial document"). */
typedef struct fmt__mark {
    size_t nclasses, nitems, nskipped, skipped_more;
} fmt__mark;

void fmt__doc_mark(const lupe_fmt_doc *doc, fmt__mark *m);
void fmt__doc_rollback(lupe_fmt_doc *doc, const fmt__mark *m);
/* Adds an item; LUPE_ELIMIT past FMT_MAX_ITEMS or an image reference longer
 * than FMT_MAX_STR. `image` need not be NUL-terminated (len bytes). The
 * pointer is valid until the next item is added. */
lupe_status fmt__add_item(lupe_fmt_doc *doc, const char *image, size_t len, lupe_fmt_item **out);
/* Index of a class by name, or -1. */
int fmt__find_class(lupe_fmt_doc *doc, const char *name);
/* Index of the class, adding it at the end when it is new. */
lupe_status fmt__class_index(lupe_fmt_doc *doc, const char *name, int *out);
/* Makes sure classes 0..cls exist, naming new ones "class<i>" (gt-csv and
 * gt-manifest without a class map only know numbers). */
lupe_status fmt__ensure_numbered_classes(lupe_fmt_doc *doc, int cls);
/* Checks what every reader promises of a document it returns: images set,
 * classes named and unique, boxes finite with a positive size and a class
 * in range, caps kept. NULL if all holds, else what does not. For tests and
 * fuzz targets. */
const char *fmt__doc_check(lupe_fmt_doc *doc);
/* Last component of a path, for messages ("a/b/labels.csv" -> "labels.csv"). */
const char *fmt__basename(const char *path);

/* The funnel's count of failed allocations (all threads). jansson does not
 * always report a failed allocation as one: under memory pressure a dump
 * can come out with a key missing and a parse can fail as a syntax error.
 * Code around jansson compares this count before and after instead. */
static inline uint64_t fmt__alloc_failures(void)
{
    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    return s.failures;
}

/* ---- string map (map.c) ----------------------------------------------------
 * Open-addressing hash from NUL-terminated strings to size_t; the map owns
 * copies of the keys. Used for class names, image ids and export names. */
typedef struct fmt__map {
    char **keys;
    size_t *vals;
    size_t cap, count;
} fmt__map;

void fmt__map_cleanup(fmt__map *m);
/* Returns 1 and sets *val if present, 0 otherwise. */
int fmt__map_get(const fmt__map *m, const char *key, size_t *val);
/* Inserts or replaces. */
lupe_status fmt__map_put(fmt__map *m, const char *key, size_t val);

/* ---- text helpers (text.c) -------------------------------------------------- */
/* Parses a decimal number, strictly: [+-]digits[.digits][e[+-]digits] with
 * no spaces, no hex, no "nan"/"inf", whatever the process locale. Returns
 * 0 and sets *out (which may be +-inf for huge exponents), -1 otherwise.
 * *is_int (may be NULL) says there was neither '.' nor an exponent. */
int fmt__parse_number(const char *s, size_t len, double *out, int *is_int);
/* Parses a whole decimal integer in [lo, hi]; also accepts an integral
 * number such as "450.0". Returns 0 or -1. */
int fmt__parse_int(const char *s, size_t len, long long lo, long long hi, long long *out);
/* Shortest decimal text that reads back as exactly v, "C" locale: integers
 * print without a fraction ("82"), others as few digits as round-trip. */
void fmt__fmt_double(char *out, size_t outsz, double v);
/* Fixed decimals in the "C" locale ("%.*f"). */
void fmt__fmt_fixed(char *out, size_t outsz, double v, int decimals);
/* Quotes s for a message: at most 40 bytes, control bytes as '?'. */
const char *fmt__quote(char *out, size_t outsz, const char *s, size_t len);
/* Valid UTF-8 without control characters (names written into XML/JSON). */
bool fmt__clean_text(const char *s);
/* Case-insensitive suffix test. */
bool fmt__ends_with_ci(const char *s, const char *suffix);

/* A growable string buffer through the funnel. Appends after an allocation
 * failure are no-ops; fmt__sb_status() reports the failure once at the end,
 * so writers need not check every append. */
typedef struct fmt__sb {
    char *s;
    size_t len, cap;
    bool failed;
} fmt__sb;

void fmt__sb_cleanup(fmt__sb *b);
void fmt__sb_put(fmt__sb *b, const char *s, size_t n);
void fmt__sb_puts(fmt__sb *b, const char *s);
void fmt__sb_printf(fmt__sb *b, const char *fmt, ...) LUPE_PRINTF(2, 3);
void fmt__sb_double(fmt__sb *b, double v);
lupe_status fmt__sb_status(const fmt__sb *b);

/* ---- CSV (csv.c) ------------------------------------------------------------
 * RFC 4180 records over a buffer: quoted fields, doubled quotes, CRLF or LF.
 * Fields are unescaped into the reader's scratch space and NUL-terminated;
 * they stay valid until the next call. */
typedef struct fmt__csv {
    const char *buf, *name;
    size_t len, pos;
    int line;                 /* physical line at pos, 1-based */
    size_t line_start;        /* offset of that line's first byte */
    char *scratch;            /* field texts, each NUL-terminated */
    size_t scap;
    size_t *off, *flen;       /* per field: offset in scratch and length */
    size_t nf, fcap;
} fmt__csv;

void fmt__csv_init(fmt__csv *c, const char *buf, size_t len, const char *name);
void fmt__csv_cleanup(fmt__csv *c);
/* Reads the next record: LUPE_OK with c->nf > 0 and *line set, LUPE_OK with
 * c->nf == 0 at the end, or LUPE_EFORMAT on broken quoting or a NUL byte
 * ("labels.csv: line 7, column 3: ..."). A blank line is one empty field. */
lupe_status fmt__csv_next(fmt__csv *c, int *line);
static inline const char *fmt__csv_field(const fmt__csv *c, size_t i)
{
    return c->scratch + c->off[i];
}
/* Writes one field, quoted when it holds a comma, quote or line break. */
void fmt__csv_put_field(fmt__sb *b, const char *s);

/* ---- Python literals (pylit.c) ---------------------------------------------
 * The annotations column of gt-csv holds a Python literal; this parses the
 * safe subset (what ast.literal_eval accepts for lists of dicts of numbers
 * and strings) into a small tree. */
typedef enum { FMT_PY_NONE, FMT_PY_BOOL, FMT_PY_NUM, FMT_PY_STR, FMT_PY_LIST, FMT_PY_DICT } fmt__py_type;

typedef struct fmt__py {
    fmt__py_type type;
    bool is_int;              /* NUM written without '.' or exponent */
    bool b;                   /* BOOL */
    double num;               /* NUM (ints past 2^53 lose precision) */
    char *str;                /* STR, NUL-terminated (may hold NULs: see len) */
    size_t len;               /* STR length; LIST/DICT element count */
    struct fmt__py *elems;    /* LIST: len values; DICT: 2*len, key then value */
    size_t pos;               /* byte offset in the input, for messages */
} fmt__py;

/* On error returns LUPE_EFORMAT with "byte N: what" in the message (N is
 * 1-based), or LUPE_ELIMIT past FMT_PY_MAX_NODES values; *out stays NULL. */
#define FMT_PY_MAX_NODES ((size_t)1 << 20)
lupe_status fmt__py_parse(const char *s, size_t len, fmt__py **out);
void fmt__py_free(fmt__py *v);
/* Value under a string key in a dict; NULL if absent. *dup is set when the
 * key appears more than once (Python would keep the last; we refuse). */
const fmt__py *fmt__py_get(const fmt__py *dict, const char *key, bool *dup);

/* ---- folder reading (read.c) ------------------------------------------------ */
/* Sorted paths, relative to root, of the regular files under root/sub (sub
 * may be ""), down to FMT_MAX_DIR_DEPTH, not following symbolic links to
 * folders. keep() picks files by name (NULL keeps all). */
typedef struct fmt__list {
    char **paths;
    size_t n;
} fmt__list;
lupe_status fmt__list_files(const char *root, const char *sub, bool recursive, bool (*keep)(const char *name),
                            fmt__list *out);
void fmt__list_cleanup(fmt__list *l);
bool fmt__is_dir(const char *path);
/* Reads a whole label file with the FMT_MAX_FILE cap. */
lupe_status fmt__read_file(const char *path, char **buf, size_t *len);
/* Reads path (or, when it is a folder, path/default_name) and parses it. */
lupe_status fmt__read_single(lupe_fmt_doc *doc, const char *path, const char *default_name,
                             lupe_status (*parse)(lupe_fmt_doc *, const char *, size_t, const char *));

/* ---- export (write.c) --------------------------------------------------------
 * A writer builds the export under root (OUT.partial). Files are written
 * whole, fsynced, and their folders remembered so they are fsynced before
 * the final rename. */
typedef struct fmt__out {
    const char *root;
    char **dirs;              /* relative folders created, fsynced at the end */
    size_t ndirs;
} fmt__out;

lupe_status fmt__out_mkdir(fmt__out *o, const char *rel);
lupe_status fmt__out_file(fmt__out *o, const char *rel, const void *data, size_t len);
/* Puts the item's image at rel: a hard link to src_path, else a copy. No-op
 * when src_path is NULL (labels only). */
lupe_status fmt__out_image(fmt__out *o, const char *rel, const lupe_fmt_item *it);
/* The item's export name: export_name, else the last part of image. */
const char *fmt__export_name(const lupe_fmt_item *it);
/* Copies the name without its extension into out (the stem). */
void fmt__stem(const char *name, char *out, size_t outsz);
/* Box i of the item in pixels (normalized boxes scaled by the item size). */
void fmt__box_pixels(const lupe_fmt_item *it, size_t i, double *x, double *y, double *w, double *h);

/* ---- per-format entry points ------------------------------------------------
 * read_path gets a file or a folder, already known to exist; write gets a
 * validated document and the writer state. Both live in the format's file. */
lupe_status fmt__gt_csv_read(lupe_fmt_doc *doc, const char *path);
lupe_status fmt__gt_csv_write(const lupe_fmt_doc *doc, fmt__out *o);
lupe_status fmt__gt_manifest_read(lupe_fmt_doc *doc, const char *path);
lupe_status fmt__gt_manifest_write(const lupe_fmt_doc *doc, fmt__out *o);
lupe_status fmt__yolo_read(lupe_fmt_doc *doc, const char *path);
lupe_status fmt__yolo_write(const lupe_fmt_doc *doc, fmt__out *o);
lupe_status fmt__coco_read(lupe_fmt_doc *doc, const char *path);
lupe_status fmt__coco_write(const lupe_fmt_doc *doc, fmt__out *o);
lupe_status fmt__voc_read(lupe_fmt_doc *doc, const char *path);
lupe_status fmt__voc_write(const lupe_fmt_doc *doc, fmt__out *o);

/* The format table (doc.c). writes_normalized: boxes are written as
 * fractions, so pixel boxes need the item's size (and pixel formats need it
 * for normalized boxes); stem_unique: label files are named after the
 * image's stem, so stems must be unique too; image_exts: the extensions the
 * format's readers look for (NULL: any). */
typedef struct fmt__format {
    const char *name;
    lupe_status (*read)(lupe_fmt_doc *doc, const char *path);
    lupe_status (*write)(const lupe_fmt_doc *doc, fmt__out *o);
    bool writes_normalized, stem_unique;
    const char *const *image_exts;
    const char *help;
} fmt__format;
extern const char *const fmt__yolo_image_exts[];
const fmt__format *fmt__format_get(lupe_fmt_kind k);

#endif
