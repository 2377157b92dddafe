/*
 * lupe_fmt_write: checks a document against what the format can hold, then
 * builds the export in OUT.partial (every file and folder fsynced, images
 * hard-linked or copied) and renames it to OUT, so OUT either does not exist
 * or is complete, whenever the process dies.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/internal.h"

const char *fmt__export_name(const lupe_fmt_item *it)
{
    return it->export_name ? it->export_name : fmt__basename(it->image ? it->image : "");
}

void fmt__stem(const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s", name);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

void fmt__box_pixels(const lupe_fmt_item *it, size_t i, double *x, double *y, double *w, double *h)
{
    const lupe_fmt_box *b = &it->boxes[i];
    double sx = it->normalized ? it->width : 1, sy = it->normalized ? it->height : 1;
    *x = b->x * sx, *y = b->y * sy, *w = b->w * sx, *h = b->h * sy;
}

static bool has_dir(const fmt__out *o, const char *rel)
{
    for (size_t i = 0; i < o->ndirs; i++)
        if (strcmp(o->dirs[i], rel) == 0) return true;
    return false;
}

lupe_status fmt__out_mkdir(fmt__out *o, const char *rel)
{
    char *p = lupe_strdup(rel);
    lupe_status st = LUPE_OK;
    if (!p) return LUPE_ENOMEM;
    /* Each prefix in turn, parents before children, so the list is in
     * creation order and can be fsynced children first by walking it back. */
    for (char *s = p;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        if (!has_dir(o, p)) {
            char *full = lupe_path_join(o->root, p);
            if (!full) {
                st = LUPE_ENOMEM;
                goto out;
            }
            int rc = mkdir(full, 0755);
            int e = errno;
            lupe_free(full);
            if (rc != 0 && e != EEXIST) {
                st = lupe_err(LUPE_EIO, "%s/%s: mkdir: %s", o->root, p, strerror(e));
                goto out;
            }
            size_t cap = o->dirs ? lupe_alloc_size(o->dirs) / sizeof *o->dirs : 0;
            if (o->ndirs == cap) {
                char **d = lupe_realloc(o->dirs, (cap ? cap * 2 : 16) * sizeof *d);
                if (!d) {
                    st = LUPE_ENOMEM;
                    goto out;
                }
                o->dirs = d;
            }
            if (!(o->dirs[o->ndirs] = lupe_strdup(p))) {
                st = LUPE_ENOMEM;
                goto out;
            }
            o->ndirs++;
        }
        *s = c;
        if (!c) break;
    }
out:
    lupe_free(p);
    return st;
}

static lupe_status mkparent(fmt__out *o, const char *rel)
{
    const char *slash = strrchr(rel, '/');
    if (!slash) return LUPE_OK;
    char *dir = lupe_strndup(rel, (size_t)(slash - rel));
    if (!dir) return LUPE_ENOMEM;
    lupe_status st = fmt__out_mkdir(o, dir);
    lupe_free(dir);
    return st;
}

/* Creates full (which must not exist), lets fill() write it, fsyncs it. */
static lupe_status finish_file(int fd, const char *full, lupe_status st)
{
    if (st == LUPE_OK && fsync(fd) != 0) st = lupe_err(LUPE_EIO, "%s: fsync: %s", full, strerror(errno));
    if (close(fd) != 0 && st == LUPE_OK) st = lupe_err(LUPE_EIO, "%s: close: %s", full, strerror(errno));
    return st;
}

lupe_status fmt__out_file(fmt__out *o, const char *rel, const void *data, size_t len)
{
    lupe_status st = mkparent(o, rel);
    if (st) return st;
    char *full = lupe_path_join(o->root, rel);
    if (!full) return LUPE_ENOMEM;
    int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = lupe_err(errno == EEXIST ? LUPE_EEXIST : LUPE_EIO, "%s: create: %s", full, strerror(errno));
    } else {
        st = finish_file(fd, full, lupe_write_all(fd, data, len, full));
    }
    lupe_free(full);
    return st;
}

static lupe_status copy_file(const char *src, const char *dst)
{
    lupe_status st = LUPE_OK;
    int in = -1, out = -1;
    char *buf = NULL;
    struct stat sb;
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0 || fstat(in, &sb) != 0) {
        st = lupe_err(errno == ENOENT ? LUPE_ENOTFOUND : LUPE_EIO, "image %s: %s", src, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = lupe_err(LUPE_EARG, "image %s: not a regular file", src);
        goto out;
    }
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
        st = lupe_err(errno == EEXIST ? LUPE_EEXIST : LUPE_EIO, "%s: create: %s", dst, strerror(errno));
        goto out;
    }
    size_t bufsz = 1 << 20;
    if (!(buf = lupe_malloc(bufsz))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(in, buf, bufsz);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = lupe_err(LUPE_EIO, "image %s: read: %s", src, strerror(errno));
            goto out;
        }
        if (r == 0) break;
        if ((st = lupe_write_all(out, buf, (size_t)r, dst))) goto out;
    }
out:
    if (out >= 0) {
        st = finish_file(out, dst, st);
    }
    if (in >= 0) close(in);
    lupe_free(buf);
    return st;
}

lupe_status fmt__out_image(fmt__out *o, const char *rel, const lupe_fmt_item *it)
{
    if (!it->src_path) return LUPE_OK;
    lupe_status st = mkparent(o, rel);
    if (st) return st;
    char *dst = lupe_path_join(o->root, rel);
    if (!dst) return LUPE_ENOMEM;
    /* Always a copy, never a hard link: an exported folder is handed to
     * other tools, and one that edited an image in place would otherwise
     * change the workspace's object behind its hash. */
    st = copy_file(it->src_path, dst);
    lupe_free(dst);
    return st;
}

/* Whether a name can be a plain file name in every layout we write. */
static bool good_name(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 255 && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\') && fmt__clean_text(s);
}

static lupe_status check_doc(const fmt__format *f, const lupe_fmt_doc *doc)
{
    lupe_status st = LUPE_OK;
    fmt__map names = {0}, stems = {0};
    if (doc->nclasses > FMT_MAX_CLASSES) return lupe_err(LUPE_ELIMIT, "more than %zu classes", FMT_MAX_CLASSES);
    for (size_t c = 0; c < doc->nclasses; c++) {
        if (!doc->classes[c] || !doc->classes[c][0] || !fmt__clean_text(doc->classes[c]) ||
            strlen(doc->classes[c]) > FMT_MAX_STR)
            return lupe_err(LUPE_EARG, "class %zu: a name must be non-empty UTF-8 text without control characters", c);
    }
    for (size_t i = 0; i < doc->nitems; i++) {
        const lupe_fmt_item *it = &doc->items[i];
        if (!it->labeled) continue;
        const char *name = fmt__export_name(it);
        char stem[512];
        size_t dummy;
        if (!good_name(name)) {
            st = lupe_err(LUPE_EARG, "item %zu: export name '%s' is not a plain file name", i + 1, name);
            goto out;
        }
        if (fmt__map_get(&names, name, &dummy)) {
            st = lupe_err(LUPE_EARG, "item %zu: export name '%s' is used twice", i + 1, name);
            goto out;
        }
        if ((st = fmt__map_put(&names, name, i))) goto out;
        if (f->stem_unique) {
            fmt__stem(name, stem, sizeof stem);
            if (fmt__map_get(&stems, stem, &dummy)) {
                st = lupe_err(LUPE_EARG, "item %zu: '%s' has the same stem as another image; %s names label files by stem",
                              i + 1, name, f->name);
                goto out;
            }
            if ((st = fmt__map_put(&stems, stem, i))) goto out;
        }
        if (f->image_exts) {
            bool ok = false;
            for (const char *const *e = f->image_exts; *e; e++) ok = ok || fmt__ends_with_ci(name, *e);
            if (!ok) {
                st = lupe_err(LUPE_EARG, "item %zu: '%s' needs a .jpg, .jpeg or .png extension for %s tools to find it",
                              i + 1, name, f->name);
                goto out;
            }
        }
        if (it->split && strcmp(it->split, "train") && strcmp(it->split, "val") && strcmp(it->split, "test")) {
            st = lupe_err(LUPE_EARG, "item %zu: split '%s' is not train, val or test", i + 1, it->split);
            goto out;
        }
        if (it->width < 0 || it->height < 0) {
            st = lupe_err(LUPE_EARG, "item %zu: negative image size", i + 1);
            goto out;
        }
        bool sized = it->width > 0 && it->height > 0;
        if (it->nboxes && !sized && (it->normalized != f->writes_normalized)) {
            st = lupe_err(LUPE_EARG, "item %zu (%s): %s needs the image size to convert its %s boxes", i + 1, name,
                          f->name, it->normalized ? "normalized" : "pixel");
            goto out;
        }
        for (size_t k = 0; k < it->nboxes; k++) {
            const lupe_fmt_box *b = &it->boxes[k];
            if (b->cls < 0 || (size_t)b->cls >= doc->nclasses) {
                st = lupe_err(LUPE_EARG, "item %zu (%s): box %zu: class %d is not one of the %zu classes", i + 1, name,
                              k + 1, b->cls, doc->nclasses);
                goto out;
            }
            if (!isfinite(b->x) || !isfinite(b->y) || !(b->w > 0) || !(b->h > 0) || !isfinite(b->w) ||
                !isfinite(b->h)) {
                st = lupe_err(LUPE_EARG, "item %zu (%s): box %zu: needs finite coordinates and a positive size", i + 1,
                              name, k + 1);
                goto out;
            }
        }
    }
out:
    fmt__map_cleanup(&names);
    fmt__map_cleanup(&stems);
    return st;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes a leftover OUT.partial; FTW_PHYS so links are removed, not followed. */
static lupe_status remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return LUPE_OK;
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return lupe_err(LUPE_EIO, "%s: removing a leftover partial export: %s", path, strerror(errno));
    return LUPE_OK;
}

static lupe_status sync_dirs(const fmt__out *o)
{
    lupe_status st;
    for (size_t i = o->ndirs; i-- > 0;) {
        char *full = lupe_path_join(o->root, o->dirs[i]);
        if (!full) return LUPE_ENOMEM;
        st = lupe_fsync_dir(full);
        lupe_free(full);
        if (st) return st;
    }
    return lupe_fsync_dir(o->root);
}

static char *parent_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return lupe_strdup(".");
    if (slash == path) return lupe_strdup("/");
    return lupe_strndup(path, (size_t)(slash - path));
}

lupe_status lupe_fmt_write(lupe_fmt_kind kind, const lupe_fmt_doc *doc, const char *out_dir)
{
    const fmt__format *f = fmt__format_get(kind);
    if (!f) return lupe_err(LUPE_EARG, "unknown label format %d", (int)kind);
    if (!doc || !out_dir || !*out_dir) return lupe_err(LUPE_EARG, "lupe_fmt_write: no document or folder given");
    lupe_status st = LUPE_OK;
    char *partial = NULL, *parent = NULL, *trimmed = NULL;
    fmt__out o = {0};
    bool made = false, ctx = true; /* ctx: prefix "writing FMT to OUT" */
    struct stat sb;

    /* "out/" and "out" are the same folder; OUT.partial must sit beside it. */
    size_t n = strlen(out_dir);
    while (n > 1 && out_dir[n - 1] == '/') n--;
    if (!(trimmed = lupe_strndup(out_dir, n))) return LUPE_ENOMEM;
    if ((st = check_doc(f, doc))) goto out;
    if (lstat(trimmed, &sb) == 0) {
        st = lupe_err(LUPE_EEXIST, "writing %s: %s already exists", f->name, trimmed);
        ctx = false;
        goto out;
    }
    if (!(partial = lupe_asprintf("%s.partial", trimmed)) || !(parent = parent_of(trimmed))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    /* A partial folder is what a crashed export left behind: never used. */
    if ((st = remove_tree(partial)) || (st = lupe_mkdirs(partial))) goto out;
    made = true;
    o.root = partial;
    if ((st = f->write(doc, &o)) || (st = sync_dirs(&o))) goto out;
    /* RENAME_NOREPLACE: a folder created at OUT meanwhile (even an empty
     * one, which plain rename() would replace) makes this fail. */
    if (renameat2(AT_FDCWD, partial, AT_FDCWD, trimmed, RENAME_NOREPLACE) != 0) {
        int e = errno;
        if ((e == ENOSYS || e == EINVAL) && lstat(trimmed, &sb) != 0 && rename(partial, trimmed) == 0) {
            e = 0;
        }
        if (e) {
            st = lupe_err(e == EEXIST ? LUPE_EEXIST : LUPE_EIO, "%s: rename into place: %s", trimmed, strerror(e));
            goto out;
        }
    }
    made = false;
    st = lupe_fsync_dir(parent);
out:
    if (st && made) {
        /* Keep the real error's message, not the clean-up's. */
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", lupe_errmsg());
        (void)remove_tree(partial);
        lupe_err(st, "%s", keep);
    }
    if (st && ctx) lupe_err_ctx(st, "writing %s to %s", f->name, trimmed);
    for (size_t i = 0; i < o.ndirs; i++) lupe_free(o.dirs[i]);
    lupe_free(o.dirs);
    lupe_free(partial);
    lupe_free(parent);
    lupe_free(trimmed);
    return st;
}
