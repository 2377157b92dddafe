/*
 * lupe_fmt_read: dispatch to a format's reader through the format table,
 * and the file-system helpers readers share: capped whole-file reads and a
 * sorted, capped listing of a folder tree that never follows links to
 * folders (a loop of links must not hang an import).
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/internal.h"

bool fmt__is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

lupe_status fmt__read_file(const char *path, char **buf, size_t *len)
{
    uint8_t *b = NULL;
    lupe_status st = lupe_file_read(path, FMT_MAX_FILE, &b, len);
    *buf = (char *)b;
    return st;
}

void fmt__list_cleanup(fmt__list *l)
{
    for (size_t i = 0; i < l->n; i++) lupe_free(l->paths[i]);
    lupe_free(l->paths);
    memset(l, 0, sizeof *l);
}

static lupe_status list_add(fmt__list *l, char *path)
{
    if (l->n >= FMT_MAX_FILES) {
        lupe_free(path);
        return lupe_err(LUPE_ELIMIT, "more than %zu files", FMT_MAX_FILES);
    }
    size_t cap = l->paths ? lupe_alloc_size(l->paths) / sizeof *l->paths : 0;
    if (l->n == cap) {
        char **p = lupe_realloc(l->paths, (cap ? cap * 2 : 64) * sizeof *p);
        if (!p) {
            lupe_free(path);
            return LUPE_ENOMEM;
        }
        l->paths = p;
    }
    l->paths[l->n++] = path;
    return LUPE_OK;
}

static lupe_status walk(const char *root, const char *rel, int depth, bool recursive, bool (*keep)(const char *),
                        fmt__list *out)
{
    lupe_status st = LUPE_OK;
    char *dir = rel[0] ? lupe_path_join(root, rel) : lupe_strdup(root);
    DIR *d = NULL;
    if (!dir) return LUPE_ENOMEM;
    if (depth > FMT_MAX_DIR_DEPTH) {
        st = lupe_err(LUPE_ELIMIT, "%s: folders nested deeper than %d levels", dir, FMT_MAX_DIR_DEPTH);
        goto out;
    }
    if (!(d = opendir(dir))) {
        st = lupe_err(errno == ENOENT ? LUPE_ENOTFOUND : LUPE_EIO, "%s: %s", dir, strerror(errno));
        goto out;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        /* Hidden files include macOS's "._x.jpg" resource forks, which look
         * like images by name and are not. */
        if (e->d_name[0] == '.') continue;
        char *sub = rel[0] ? lupe_asprintf("%s/%s", rel, e->d_name) : lupe_strdup(e->d_name);
        char *full = sub ? lupe_path_join(root, sub) : NULL;
        struct stat sb;
        if (!sub || !full) {
            lupe_free(sub);
            lupe_free(full);
            st = LUPE_ENOMEM;
            goto out;
        }
        int isdir = lstat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
        int isfile = !isdir && stat(full, &sb) == 0 && S_ISREG(sb.st_mode); /* links to files are fine */
        lupe_free(full);
        if (isdir && recursive) {
            st = walk(root, sub, depth + 1, recursive, keep, out);
            lupe_free(sub);
            if (st) goto out;
        } else if (isfile && (!keep || keep(e->d_name))) {
            if ((st = list_add(out, sub))) goto out;
        } else {
            lupe_free(sub);
        }
    }
out:
    if (d) closedir(d);
    lupe_free(dir);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

lupe_status fmt__list_files(const char *root, const char *sub, bool recursive, bool (*keep)(const char *name),
                            fmt__list *out)
{
    memset(out, 0, sizeof *out);
    lupe_status st = walk(root, sub ? sub : "", 0, recursive, keep, out);
    if (st) {
        fmt__list_cleanup(out);
        return st;
    }
    /* readdir order is the file system's; sorting makes reads repeatable. */
    if (out->n > 1) qsort(out->paths, out->n, sizeof *out->paths, cmp_str);
    return LUPE_OK;
}

lupe_status lupe_fmt_read(lupe_fmt_kind kind, const char *path, lupe_fmt_doc **out)
{
    if (out) *out = NULL;
    const fmt__format *f = fmt__format_get(kind);
    if (!f) return lupe_err(LUPE_EARG, "unknown label format %d", (int)kind);
    if (!path || !*path || !out) return lupe_err(LUPE_EARG, "lupe_fmt_read: no path or output given");
    if (!lupe_path_exists(path)) return lupe_err(LUPE_ENOTFOUND, "reading %s labels: %s: no such file or folder", f->name, path);
    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    if (!doc) return LUPE_ENOMEM;
    lupe_status st = f->read(doc, path);
    if (st) {
        /* Never hand out a partial document: the caller gets all or nothing. */
        lupe_fmt_doc_free(doc);
        return lupe_err_ctx(st, "reading %s labels from %s", f->name, path);
    }
    *out = doc;
    return LUPE_OK;
}

lupe_status fmt__read_single(lupe_fmt_doc *doc, const char *path, const char *default_name,
                             lupe_status (*parse)(lupe_fmt_doc *, const char *, size_t, const char *))
{
    char *file = fmt__is_dir(path) ? lupe_path_join(path, default_name) : lupe_strdup(path);
    char *buf = NULL;
    size_t len = 0;
    lupe_status st = LUPE_ENOMEM;
    if (!file) goto out;
    if ((st = fmt__read_file(file, &buf, &len))) goto out;
    st = parse(doc, buf, len, fmt__basename(file));
out:
    lupe_free(buf);
    lupe_free(file);
    return st;
}
