/*
 * Importing labels made elsewhere. The label file is read into a format
 * document; each item's image reference is resolved to a file (under the
 * images folder, trying ever shorter tails of the reference, then among
 * images already in the workspace); images are checked, ingested, and their
 * boxes checked against the real image size. Only then are all label
 * revisions written, in one transaction, so an import is never half done.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "label/label_internal.h"
#include "lupe/formats.h"

lupe_import_opts lupe_import_default_opts(void)
{
    lupe_import_opts o = {0};
    o.labelset = LUPE_DEFAULT_LABELSET;
    o.author = "import";
    o.status = LUPE_LABEL_APPROVED;
    return o;
}

typedef struct plan {
    char *file;                  /* resolved image file, or NULL if the image is already stored */
    char id[LUPE_SHA256_HEX];    /* image id, once known */
    int w, h;
    lupe_box *boxes;
    int nboxes, skip;
} plan;

typedef struct import_ctx {
    lupe_ws *ws;
    const lupe_import_opts *o;
    lupe_import_summary *sum;
} import_ctx;

static void skip(import_ctx *c, const char *fmt, ...) LUPE_PRINTF(2, 3);
static void skip(import_ctx *c, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->sum->skipped++;
    if (c->o->on_skip) c->o->on_skip(c->o->ud, msg);
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Finds an image already in the workspace whose recorded path ends in
 * "/tail". Fills id on success. */
static int find_stored(lupe_ws *ws, const char *tail, char id[LUPE_SHA256_HEX])
{
    sqlite3_stmt *s = NULL;
    if (store__prepare(ws, "SELECT image_id FROM image_paths WHERE substr(path, -length(?1)) = ?1 "
                           "ORDER BY image_id LIMIT 2", &s))
        return 0;
    char *pat = lupe_asprintf("/%s", tail);
    int found = 0;
    if (pat) {
        sqlite3_bind_text(s, 1, pat, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW) {
            snprintf(id, LUPE_SHA256_HEX, "%s", (const char *)sqlite3_column_text(s, 0));
            found = sqlite3_step(s) != SQLITE_ROW; /* ambiguous tails do not count */
        }
    }
    lupe_free(pat);
    sqlite3_finalize(s);
    return found;
}

/* Resolves a reference such as s3://bucket/a/b/c.jpg or a/b/c.jpg: tries
 * DIR/a/b/c.jpg, DIR/b/c.jpg, DIR/c.jpg, then the same tails among stored
 * images. Returns 1 with *out_file (funnel string) set for a file, 2 with id
 * set for a stored image, 0 if not found. */
static int resolve(lupe_ws *ws, const char *dir, const char *ref, char **out_file, char id[LUPE_SHA256_HEX])
{
    const char *p = ref;
    const char *scheme = strstr(ref, "://");
    if (scheme) {
        p = strchr(scheme + 3, '/'); /* drop the scheme and bucket or host */
        if (!p) return 0;
    }
    while (*p == '/') p++;
    if (ref[0] == '/' && !scheme && is_file(ref)) return (*out_file = lupe_strdup(ref)) ? 1 : 0;
    for (const char *t = p; t && *t; t = strchr(t, '/') ? strchr(t, '/') + 1 : NULL) {
        char *cand = lupe_path_join(dir, t);
        if (cand && is_file(cand)) {
            *out_file = cand;
            return 1;
        }
        lupe_free(cand);
    }
    for (const char *t = p; t && *t; t = strchr(t, '/') ? strchr(t, '/') + 1 : NULL)
        if (find_stored(ws, t, id)) return 2;
    return 0;
}

/* Maps the document's class ids to label set ids; -1 where the set lacks
 * the class. Creates the set, or adds classes, when asked to. */
static lupe_status map_classes(import_ctx *c, lupe_fmt_doc *doc, lupe_labelset *ls, int *map)
{
    const lupe_import_opts *o = c->o;
    if (o->classes) {
        if ((size_t)o->nclasses < doc->nclasses)
            return lupe_err(LUPE_EARG, "the file uses %zu class ids but only %d class names were given", doc->nclasses,
                            o->nclasses);
        for (size_t i = 0; i < doc->nclasses; i++) {
            char *n = lupe_strdup(o->classes[i]);
            if (!n) return LUPE_ENOMEM;
            lupe_free(doc->classes[i]);
            doc->classes[i] = n;
        }
    }
    lupe_status st = lupe_labelset_get(c->ws, o->labelset, ls);
    if (st == LUPE_ENOTFOUND) {
        const char *const *names = o->classes ? o->classes : (const char *const *)doc->classes;
        int n = o->classes ? o->nclasses : (int)doc->nclasses;
        if (n == 0) return lupe_err(LUPE_EARG, "the file names no classes; give them with --classes");
        if ((st = lupe_labelset_create(c->ws, o->labelset, names, n, o->author))) return st;
        st = lupe_labelset_get(c->ws, o->labelset, ls);
    }
    if (st) return st;
    for (size_t i = 0; i < doc->nclasses; i++) {
        map[i] = lupe_labelset_class(ls, doc->classes[i]);
        if (map[i] >= 0 && strcmp(ls->classes[map[i]], doc->classes[i]) != 0) map[i] = -1; /* names, not numbers */
        if (map[i] < 0 && o->add_classes) {
            if ((st = lupe_labelset_add_class(c->ws, o->labelset, doc->classes[i], o->author))) return st;
            lupe_labelset_cleanup(ls);
            if ((st = lupe_labelset_get(c->ws, o->labelset, ls))) return st;
            map[i] = lupe_labelset_class(ls, doc->classes[i]);
        }
    }
    return LUPE_OK;
}

/* Reads the header of an image file for its size. */
static lupe_status probe_file(const char *path, int *w, int *h)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    lupe_status st = lupe_file_read(path, 256u << 20, &buf, &len);
    if (st) return st;
    lupe_img_info info;
    st = lupe_img_probe(buf, len, &info);
    lupe_free(buf);
    if (!st) *w = info.w, *h = info.h;
    return st;
}

static lupe_status plan_item(import_ctx *c, const char *dir, const lupe_fmt_doc *doc, const lupe_fmt_item *it,
                             const int *map, const lupe_labelset *ls, plan *p)
{
    lupe_ws *ws = c->ws;
    char where[64];
    snprintf(where, sizeof where, "%s %d", lupe_fmt_name((lupe_fmt_kind)c->o->format), it->line);
    int r = resolve(ws, dir, it->image, &p->file, p->id);
    if (r == 0) {
        skip(c, "%s: image '%s' not found under %s or in the workspace", where, it->image, dir);
        p->skip = 1;
        return LUPE_OK;
    }
    lupe_status st;
    if (r == 1) {
        if ((st = probe_file(p->file, &p->w, &p->h))) {
            if (st == LUPE_ENOMEM) return st;
            skip(c, "%s: image %s: %s", where, p->file, lupe_errmsg());
            p->skip = 1;
            return LUPE_OK;
        }
    } else {
        lupe_image im;
        if ((st = lupe_image_get(ws, p->id, &im))) return st;
        p->w = im.width, p->h = im.height;
        lupe_image_cleanup(&im);
    }
    if (it->width && it->height && (it->width != p->w || it->height != p->h)) {
        skip(c, "%s: the file says image '%s' is %dx%d but it is %dx%d", where, it->image, it->width, it->height, p->w,
             p->h);
        p->skip = 1;
        return LUPE_OK;
    }
    p->boxes = lupe_malloc((it->nboxes ? it->nboxes : 1) * sizeof *p->boxes);
    lupe_box *in = lupe_malloc((it->nboxes ? it->nboxes : 1) * sizeof *in);
    if (!p->boxes || !in) {
        lupe_free(in);
        return LUPE_ENOMEM;
    }
    for (size_t k = 0; k < it->nboxes; k++) {
        const lupe_fmt_box *b = &it->boxes[k];
        int cls = b->cls >= 0 && (size_t)b->cls < doc->nclasses ? map[b->cls] : -1;
        if (cls < 0) {
            skip(c, "%s: image '%s', box %zu: class '%s' is not in label set '%s' (use --add-classes)", where,
                 it->image, k + 1, b->cls >= 0 && (size_t)b->cls < doc->nclasses ? doc->classes[b->cls] : "?",
                 ls->name);
            p->skip = 1;
            lupe_free(in);
            return LUPE_OK;
        }
        double sx = it->normalized ? p->w : 1, sy = it->normalized ? p->h : 1;
        in[k] = (lupe_box){cls, b->x * sx, b->y * sy, b->w * sx, b->h * sy};
    }
    int clipped = 0;
    st = lupe_label_check_boxes(r == 2 ? p->id : it->image, p->w, p->h, ls,
                                (lupe_oob_policy)ws->cfg.labels_out_of_bounds, in, (int)it->nboxes, p->boxes, &clipped);
    lupe_free(in);
    if (st == LUPE_ENOMEM) return st;
    if (st) {
        skip(c, "%s: %s", where, lupe_errmsg());
        p->skip = 1;
        return LUPE_OK;
    }
    c->sum->clipped += (size_t)clipped;
    p->nboxes = (int)it->nboxes;
    return LUPE_OK;
}

lupe_status lupe_label_import(lupe_ws *ws, const lupe_import_opts *o, lupe_import_summary *out)
{
    import_ctx c = {ws, o, out};
    lupe_fmt_doc *doc = NULL;
    lupe_labelset ls = {0};
    plan *plans = NULL;
    int *map = NULL;
    char *dir = NULL;
    const char **files = NULL;
    lupe_status st;
    memset(out, 0, sizeof *out);
    if (o->format < 0 || o->format >= LUPE_FMT_COUNT) return lupe_err(LUPE_EARG, "unknown label format");
    if ((st = lupe_fmt_read((lupe_fmt_kind)o->format, o->path, &doc))) return lupe_err_ctx(st, "importing %s", o->path);
    for (size_t i = 0; i < doc->nskipped; i++) skip(&c, "%s", doc->skipped[i]);
    out->items = doc->nitems;

    struct stat sb;
    if (o->images_dir) {
        dir = lupe_strdup(o->images_dir);
    } else if (stat(o->path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        dir = lupe_strdup(o->path);
    } else {
        const char *slash = strrchr(o->path, '/');
        dir = slash ? lupe_strndup(o->path, (size_t)(slash - o->path)) : lupe_strdup(".");
    }
    map = lupe_calloc(doc->nclasses + 1, sizeof *map);
    plans = lupe_calloc(doc->nitems + 1, sizeof *plans);
    files = lupe_calloc(doc->nitems + 1, sizeof *files);
    if (!dir || !map || !plans || !files) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if ((st = map_classes(&c, doc, &ls, map))) goto out;

    /* Plan every item before writing anything. */
    for (size_t i = 0; i < doc->nitems && !st; i++) {
        if (!doc->items[i].labeled) {
            plans[i].skip = 2; /* an image the file lists without a label: ingest only */
            int r = resolve(ws, dir, doc->items[i].image, &plans[i].file, plans[i].id);
            if (r == 0) skip(&c, "%s %d: image '%s' not found", lupe_fmt_name((lupe_fmt_kind)o->format),
                             doc->items[i].line, doc->items[i].image);
            continue;
        }
        st = plan_item(&c, dir, doc, &doc->items[i], map, &ls, &plans[i]);
    }
    if (st) goto out;
    if (o->strict && out->skipped) {
        st = lupe_err(LUPE_EFORMAT, "%zu problems (listed above); --strict imports nothing", out->skipped);
        goto out;
    }

    /* Ingest the files, then learn their ids. */
    size_t nfiles = 0;
    for (size_t i = 0; i < doc->nitems; i++)
        if (plans[i].skip != 1 && plans[i].file) files[nfiles++] = plans[i].file;
    lupe_ingest_opts io = lupe_ingest_default_opts(ws);
    io.arrival = "import";
    if (o->source) io.source = o->source;
    io.on_file = o->on_image;
    io.ud = o->ud;
    if (nfiles && (st = lupe_ingest_paths(ws, files, (int)nfiles, &io, &out->ingest))) goto out;
    for (size_t i = 0; i < doc->nitems; i++) {
        plan *p = &plans[i];
        if (p->skip == 1 || !p->file) continue;
        char hex[LUPE_SHA256_HEX];
        lupe_image im;
        if (lupe_sha256_file(p->file, hex) || lupe_image_get(ws, hex, &im)) {
            if (p->skip == 0) skip(&c, "image %s could not be stored: %s", p->file, lupe_errmsg());
            p->skip = 1;
            continue;
        }
        memcpy(p->id, im.id, LUPE_SHA256_HEX);
        lupe_image_cleanup(&im);
    }
    if (o->strict && out->skipped) {
        st = lupe_err(LUPE_EFORMAT, "%zu problems (listed above); --strict imports no labels", out->skipped);
        goto out;
    }

    /* All label revisions in one transaction. */
    if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) goto out;
    for (size_t i = 0; i < doc->nitems && !st; i++) {
        plan *p = &plans[i];
        if (p->skip) continue;
        lupe_label_new n = {.boxes = p->boxes, .nboxes = p->nboxes, .status = o->status, .source = LUPE_SRC_IMPORT,
                            .author = o->author ? o->author : "import"};
        /* Re-importing the same labels adds nothing. */
        lupe_label_rev cur;
        lupe_status lst = label__latest_by_id(ws, ls.id, p->id, &cur);
        if (lst == LUPE_OK) {
            char *json = label__boxes_json(p->boxes, p->nboxes);
            char hash[LUPE_SHA256_HEX];
            if (json) label__hash(p->id, json, hash);
            int same = json && strcmp(hash, cur.hash) == 0 && cur.status == o->status;
            lupe_free(json);
            lupe_label_rev_cleanup(&cur);
            if (same) {
                out->unchanged++;
                continue;
            }
        } else if (lst != LUPE_ENOTFOUND) {
            st = lst;
            break;
        }
        if ((st = label__insert(ws, ls.id, p->id, &n, NULL))) break;
        out->labeled++;
        out->boxes += (size_t)p->nboxes;
    }
    if (st) {
        sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
        out->labeled = 0;
        out->boxes = 0;
    } else {
        st = store__exec(ws, "COMMIT");
    }
out:
    if (st) st = lupe_err_ctx(st, "importing %s", o->path);
    for (size_t i = 0; plans && i < doc->nitems; i++) {
        lupe_free(plans[i].file);
        lupe_free(plans[i].boxes);
    }
    lupe_free(plans);
    lupe_free(files);
    lupe_free(map);
    lupe_free(dir);
    lupe_labelset_cleanup(&ls);
    lupe_fmt_doc_free(doc);
    return st;
}
