/*
 * yolo: "class cx cy w h" lines (fractions, centre) in labels/ mirroring
 * images/. Label-file parser, folder reader (an image without a label file is
 * a negative, by YOLO convention) and writer (per split, data.yaml, classes).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "formats/internal.h"

const char *const fmt__yolo_image_exts[] = {".jpg", ".jpeg", ".png", NULL};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Checks one label line's fields; on success fills the box (top-left). */
static const char *check_line(const lupe_fmt_doc *doc, const char *f[5], const size_t fl[5], lupe_fmt_box *b,
                              char *msg, size_t msgsz)
{
    static const char *const what[5] = {"class", "cx", "cy", "w", "h"};
    char q[64];
    double v[5];
    for (int k = 0; k < 5; k++) {
        int is_int;
        if (fmt__parse_number(f[k], fl[k], &v[k], &is_int) != 0 || !isfinite(v[k]))
            return snprintf(msg, msgsz, "%s %s is not a number", what[k], fmt__quote(q, sizeof q, f[k], fl[k])), msg;
    }
    /* Ultralytics reads the class with int(float(x)); an integral value in
     * any spelling is accepted, a fraction is not. */
    if (v[0] != floor(v[0]) || v[0] < 0)
        return snprintf(msg, msgsz, "class %s is not a class index", fmt__quote(q, sizeof q, f[0], fl[0])), msg;
    if (v[0] >= (double)doc->nclasses)
        return snprintf(msg, msgsz, "class %.0f is not one of the %zu classes", v[0], doc->nclasses), msg;
    for (int k = 1; k < 5; k++) {
        double lo = k < 3 ? -FMT_YOLO_TOL : 0;
        if (v[k] < lo || v[k] > 1 + FMT_YOLO_TOL) {
            snprintf(msg, msgsz, "%s %s is outside [0, 1]", what[k], fmt__quote(q, sizeof q, f[k], fl[k]));
            return msg;
        }
        if (k >= 3 && v[k] == 0) return snprintf(msg, msgsz, "%s is 0", what[k]), msg;
    }
    b->cls = (int)v[0];
    b->w = v[3];
    b->h = v[4];
    b->x = v[1] - v[3] / 2;
    b->y = v[2] - v[4] / 2;
    return NULL;
}

lupe_status lupe_fmt_parse_yolo_labels(lupe_fmt_doc *doc, const char *image, const char *buf, size_t len,
                                       const char *source_name)
{
    if (!doc || !image || (!buf && len)) return lupe_err(LUPE_EARG, "lupe_fmt_parse_yolo_labels: NULL argument");
    const char *src = source_name ? source_name : "<yolo>";
    lupe_status st = LUPE_OK;
    fmt__mark mark;
    fmt__doc_mark(doc, &mark);
    lupe_fmt_item *it = NULL;
    if ((st = fmt__add_item(doc, image, strlen(image), &it))) goto out;
    it->normalized = 1;
    it->labeled = 1;
    it->line = (int)doc->nitems;
    int line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        line++;
        const char *f[5];
        size_t fl[5], nf = 0;
        for (size_t i = pos; i < end;) {
            while (i < end && is_ws(buf[i])) i++;
            if (i >= end) break;
            size_t s = i;
            while (i < end && !is_ws(buf[i])) i++;
            if (nf < 5) f[nf] = buf + s, fl[nf] = i - s;
            nf++;
        }
        pos = end + 1;
        if (nf == 0) continue;
        if (nf != 5) {
            if ((st = lupe_fmt_doc_skip(doc, "%s:%d: %zu fields, expected 5 (class cx cy w h)", src, line, nf)))
                goto out;
            continue;
        }
        lupe_fmt_box b;
        char msg[160];
        const char *bad = check_line(doc, f, fl, &b, msg, sizeof msg);
        if (bad) {
            if ((st = lupe_fmt_doc_skip(doc, "%s:%d: %s", src, line, bad))) goto out;
            continue;
        }
        if ((st = lupe_fmt_item_add_box(it, b.cls, b.x, b.y, b.w, b.h))) {
            st = lupe_err_ctx(st, "%s:%d", src, line);
            goto out;
        }
    }
out:
    if (st) fmt__doc_rollback(doc, &mark);
    return st;
}

static bool is_image(const char *name)
{
    for (const char *const *e = fmt__yolo_image_exts; *e; e++)
        if (fmt__ends_with_ci(name, *e)) return true;
    return false;
}

static bool is_txt(const char *name)
{
    return fmt__ends_with_ci(name, ".txt");
}

/* "train/a/x.jpg" -> "train/a/x" into a funnel string. */
static char *stem_of(const char *rel)
{
    const char *dot = strrchr(rel, '.'), *slash = strrchr(rel, '/');
    size_t n = dot && (!slash || dot > slash + 1) ? (size_t)(dot - rel) : strlen(rel);
    return lupe_strndup(rel, n);
}

/* The split a path under images/ or labels/ is in, from its first folder. */
static const char *split_of(const char *rel)
{
    static const struct {
        const char *dir, *split;
    } map[] = {{"train/", "train"}, {"val/", "val"}, {"valid/", "val"}, {"validation/", "val"}, {"test/", "test"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strncmp(rel, map[i].dir, strlen(map[i].dir)) == 0) return map[i].split;
    return NULL;
}

static lupe_status read_classes(lupe_fmt_doc *doc, const char *root)
{
    static const char *const files[] = {"classes.txt", "obj.names", "data.yaml", "data.yml"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *p = lupe_path_join(root, files[i]), *buf = NULL;
        size_t len = 0;
        if (!p) return LUPE_ENOMEM;
        if (!lupe_path_exists(p)) {
            lupe_free(p);
            continue;
        }
        lupe_status st = fmt__read_file(p, &buf, &len);
        if (!st) st = lupe_fmt_parse_yolo_classes(doc, buf, len, files[i]);
        lupe_free(buf);
        lupe_free(p);
        return st;
    }
    return lupe_err(LUPE_ENOTFOUND, "%s: no classes.txt, obj.names or data.yaml", root);
}

static lupe_status add_labeled(lupe_fmt_doc *doc, const char *root, const char *img_rel, const char *lab_rel,
                               size_t index)
{
    char *img = lupe_asprintf("images/%s", img_rel), *lab = lupe_asprintf("labels/%s", lab_rel);
    char *path = lab ? lupe_path_join(root, lab) : NULL, *buf = NULL;
    size_t len = 0;
    lupe_status st = LUPE_ENOMEM;
    if (!img || !lab || !path) goto out;
    if ((st = fmt__read_file(path, &buf, &len))) goto out;
    if ((st = lupe_fmt_parse_yolo_labels(doc, img, buf, len, lab))) goto out;
    lupe_fmt_item *it = &doc->items[doc->nitems - 1];
    it->line = (int)index;
    const char *split = split_of(img_rel);
    if (split && !(it->split = lupe_strdup(split))) {
        st = LUPE_ENOMEM;
        goto out;
    }
out:
    lupe_free(img);
    lupe_free(lab);
    lupe_free(path);
    lupe_free(buf);
    return st;
}

static lupe_status add_negative(lupe_fmt_doc *doc, const char *img_rel, size_t index)
{
    char *img = lupe_asprintf("images/%s", img_rel);
    lupe_fmt_item *it = NULL;
    lupe_status st = img ? fmt__add_item(doc, img, strlen(img), &it) : LUPE_ENOMEM;
    lupe_free(img);
    if (st) return st;
    it->normalized = 1;
    it->labeled = 1;
    it->line = (int)index;
    const char *split = split_of(img_rel);
    if (split && !(it->split = lupe_strdup(split))) return LUPE_ENOMEM;
    return LUPE_OK;
}

lupe_status fmt__yolo_read(lupe_fmt_doc *doc, const char *root)
{
    lupe_status st = LUPE_OK;
    fmt__list imgs = {0}, labs = {0};
    fmt__map by_stem = {0}, lab_stem = {0};
    bool *used = NULL;
    if (!fmt__is_dir(root)) return lupe_err(LUPE_EARG, "%s: yolo labels are read from a folder", root);
    if ((st = read_classes(doc, root))) goto out;
    char *ldir = lupe_path_join(root, "labels"), *idir = lupe_path_join(root, "images");
    bool have_l = ldir && fmt__is_dir(ldir), have_i = idir && fmt__is_dir(idir);
    lupe_free(ldir);
    lupe_free(idir);
    if (!have_l || !have_i) {
        st = lupe_err(LUPE_ENOTFOUND, "%s: no %s folder", root, have_l ? "images/" : "labels/");
        goto out;
    }
    if ((st = fmt__list_files(root, "images", true, is_image, &imgs)) ||
        (st = fmt__list_files(root, "labels", true, is_txt, &labs)))
        goto out;
    /* Index both sides by stem relative to their folder ("train/x"). Two
     * images with one stem (x.jpg, x.png) cannot be told apart by a label
     * file: they are marked with SIZE_MAX and skipped with a message. */
    for (size_t i = 0; i < imgs.n; i++) {
        char *stem = stem_of(imgs.paths[i] + strlen("images/"));
        size_t prev;
        if (!stem) {
            st = LUPE_ENOMEM;
            goto out;
        }
        st = fmt__map_put(&by_stem, stem, fmt__map_get(&by_stem, stem, &prev) ? SIZE_MAX : i);
        lupe_free(stem);
        if (st) goto out;
    }
    for (size_t i = 0; i < labs.n; i++) {
        char *stem = stem_of(labs.paths[i] + strlen("labels/"));
        if (!stem) {
            st = LUPE_ENOMEM;
            goto out;
        }
        st = fmt__map_put(&lab_stem, stem, i);
        lupe_free(stem);
        if (st) goto out;
    }
    if (!(used = lupe_calloc(labs.n + 1, sizeof *used))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < imgs.n; i++) {
        const char *img_rel = imgs.paths[i] + strlen("images/");
        char *stem = stem_of(img_rel);
        size_t who = 0, lab = 0;
        if (!stem) {
            st = LUPE_ENOMEM;
            goto out;
        }
        (void)fmt__map_get(&by_stem, stem, &who);
        bool has_label = fmt__map_get(&lab_stem, stem, &lab);
        lupe_free(stem);
        if (who == SIZE_MAX) {
            if (has_label) used[lab] = true;
            st = lupe_fmt_doc_skip(doc, "%s: another image has the same name up to the extension", imgs.paths[i]);
        } else if (has_label) {
            used[lab] = true;
            st = add_labeled(doc, root, img_rel, labs.paths[lab] + strlen("labels/"), i + 1);
        } else {
            st = add_negative(doc, img_rel, i + 1);
        }
        if (st) goto out;
    }
    for (size_t i = 0; i < labs.n; i++) {
        if (used[i]) continue;
        char *stem = stem_of(labs.paths[i] + strlen("labels/"));
        if (!stem) {
            st = LUPE_ENOMEM;
            goto out;
        }
        st = lupe_fmt_doc_skip(doc, "%s: no image images/%s.jpg, .jpeg or .png", labs.paths[i], stem);
        lupe_free(stem);
        if (st) goto out;
    }
out:
    fmt__list_cleanup(&imgs);
    fmt__list_cleanup(&labs);
    fmt__map_cleanup(&by_stem);
    fmt__map_cleanup(&lab_stem);
    lupe_free(used);
    return st;
}

static void put_name_yaml(fmt__sb *b, const char *s)
{
    /* Single-quoted YAML: only the quote itself needs escaping (doubled). */
    fmt__sb_put(b, "'", 1);
    for (; *s; s++) {
        if (*s == '\'') fmt__sb_put(b, "''", 2);
        else fmt__sb_put(b, s, 1);
    }
    fmt__sb_put(b, "'", 1);
}

lupe_status fmt__yolo_write(const lupe_fmt_doc *doc, fmt__out *o)
{
    lupe_status st = LUPE_OK;
    fmt__sb lab = {0}, meta = {0};
    char *img_rel = NULL, *lab_rel = NULL;
    bool split_seen[3] = {false, false, false};
    static const char *const splits[3] = {"train", "val", "test"};
    bool any_split = false;
    for (size_t i = 0; i < doc->nitems; i++)
        if (doc->items[i].labeled && doc->items[i].split) any_split = true;
    for (size_t i = 0; i < doc->nitems; i++) {
        const lupe_fmt_item *it = &doc->items[i];
        if (!it->labeled) continue;
        const char *name = fmt__export_name(it);
        char stem[512];
        fmt__stem(name, stem, sizeof stem);
        for (int s = 0; s < 3; s++)
            if (it->split && strcmp(it->split, splits[s]) == 0) split_seen[s] = true;
        const char *dir = it->split ? it->split : NULL;
        lupe_free(img_rel);
        lupe_free(lab_rel);
        img_rel = dir ? lupe_asprintf("images/%s/%s", dir, name) : lupe_asprintf("images/%s", name);
        lab_rel = dir ? lupe_asprintf("labels/%s/%s.txt", dir, stem) : lupe_asprintf("labels/%s.txt", stem);
        if (!img_rel || !lab_rel) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = fmt__out_image(o, img_rel, it))) goto out;
        lab.len = 0;
        for (size_t k = 0; k < it->nboxes; k++) {
            const lupe_fmt_box *b = &it->boxes[k];
            double sx = it->normalized ? 1 : it->width, sy = it->normalized ? 1 : it->height;
            double v[4] = {(b->x + b->w / 2) / sx, (b->y + b->h / 2) / sy, b->w / sx, b->h / sy};
            fmt__sb_printf(&lab, "%d", b->cls);
            for (int c = 0; c < 4; c++) {
                char t[64];
                fmt__fmt_fixed(t, sizeof t, v[c], 6);
                fmt__sb_printf(&lab, " %s", t);
            }
            fmt__sb_put(&lab, "\n", 1);
        }
        /* An empty file says "labeled, nothing here": a negative. */
        if ((st = fmt__sb_status(&lab)) || (st = fmt__out_file(o, lab_rel, lab.s ? lab.s : "", lab.len))) goto out;
    }
    /* data.yaml without `path:`: Ultralytics then resolves the folders
     * against the yaml's own folder, while `path: .` would mean the current
     * directory of whoever trains. */
    if (any_split) {
        for (int s = 0; s < 3; s++)
            if (split_seen[s]) fmt__sb_printf(&meta, "%s: images/%s\n", splits[s], splits[s]);
    } else {
        fmt__sb_puts(&meta, "train: images\nval: images\n");
    }
    fmt__sb_printf(&meta, "nc: %zu\nnames: [", doc->nclasses);
    for (size_t c = 0; c < doc->nclasses; c++) {
        if (c) fmt__sb_puts(&meta, ", ");
        put_name_yaml(&meta, doc->classes[c]);
    }
    fmt__sb_puts(&meta, "]\n");
    if ((st = fmt__sb_status(&meta)) || (st = fmt__out_file(o, "data.yaml", meta.s, meta.len))) goto out;
    meta.len = 0;
    for (size_t c = 0; c < doc->nclasses; c++) fmt__sb_printf(&meta, "%s\n", doc->classes[c]);
    if ((st = fmt__sb_status(&meta))) goto out;
    st = fmt__out_file(o, "classes.txt", meta.s ? meta.s : "", meta.len);
out:
    lupe_free(img_rel);
    lupe_free(lab_rel);
    fmt__sb_cleanup(&lab);
    fmt__sb_cleanup(&meta);
    return st;
}
