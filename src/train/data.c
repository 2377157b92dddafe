/*
 * Training data: turns a dataset version (its manifest and the image
 * objects it names) or a YOLO folder into per-split sample arrays for the
 * loader. Boxes become corner boxes in pixels of the stored image.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lupe/dataset.h"
#include "lupe/img.h"
#include "lupe/store.h"
#include "lupe/train.h"

void trn_data_free(trn_data *d)
{
    if (!d) return;
    for (int i = 0; i < d->nc; i++) lupe_free(d->classes[i]);
    lupe_free(d->classes);
    for (size_t i = 0; i < d->npaths; i++) lupe_free(d->paths[i]);
    lupe_free(d->paths);
    for (int s = 0; s < 3; s++) /* a split may be borrowed from another (val = train) */
        if (s == 0 || (d->split[s] != d->split[0] && (s < 2 || d->split[s] != d->split[1]))) lupe_free(d->split[s]);
    lupe_free(d->boxes);
    lupe_free(d->name);
    lupe_free(d);
}

/* Sizes the arrays for nitems samples and nboxes boxes in all. */
static lupe_status data_alloc(trn_data *d, size_t nitems, size_t nboxes)
{
    d->paths = lupe_calloc(nitems ? nitems : 1, sizeof *d->paths);
    d->boxes = lupe_calloc(nboxes ? nboxes : 1, sizeof *d->boxes);
    for (int s = 0; s < 3; s++) d->split[s] = lupe_calloc(nitems ? nitems : 1, sizeof *d->split[s]);
    if (!d->paths || !d->boxes || !d->split[0] || !d->split[1] || !d->split[2]) return LUPE_ENOMEM;
    return LUPE_OK;
}

static lupe_status copy_classes(trn_data *d, char *const *names, size_t n)
{
    if (n == 0) return lupe_err(LUPE_EFORMAT, "%s: no classes", d->name);
    d->classes = lupe_calloc(n, sizeof *d->classes);
    if (!d->classes) return LUPE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(d->classes[i] = lupe_strdup(names[i]))) return LUPE_ENOMEM;
        d->nc = (int)i + 1;
    }
    return LUPE_OK;
}

/* Appends one sample; the path is taken over. */
static void add_sample(trn_data *d, int split, char *path, int nbox)
{
    d->paths[d->npaths++] = path;
    trn_sample *s = &d->split[split][d->n[split]++];
    s->path = path;
    s->nbox = nbox;
    s->boxes = d->boxes + d->nboxes;
}

static lupe_status load_version(trn_data *d, const char *ref, const char *ws_dir)
{
    lupe_ws *ws = NULL;
    lupe_manifest *m = NULL;
    lupe_status st = lupe_ws_open(ws_dir ? ws_dir : ".", LUPE_WS_FIND, &ws);
    if (st) {
        st = lupe_err_ctx(st, "%s is not a folder, nor a dataset version here", ref);
        goto out;
    }
    if ((st = lupe_dataset_load(ws, ref, &m))) goto out;
    size_t nb = 0;
    for (int64_t i = 0; i < m->nitems; i++) nb += (size_t)m->items[i].nboxes;
    d->name = lupe_asprintf("%s", ref);
    memcpy(d->id, m->id, sizeof d->id < sizeof m->id ? sizeof d->id : sizeof m->id);
    d->id[sizeof d->id - 1] = 0;
    if (!d->name || (st = data_alloc(d, (size_t)m->nitems, nb)) || (st = copy_classes(d, m->classes, (size_t)m->nclasses)))
        goto out;
    for (int64_t i = 0; i < m->nitems; i++) {
        const lupe_dataset_item *it = &m->items[i];
        char *path = lupe_obj_path(ws, it->image);
        if (!path) {
            st = LUPE_ENOMEM;
            goto out;
        }
        add_sample(d, it->split, path, it->nboxes);
        for (int b = 0; b < it->nboxes; b++) {
            const lupe_box *x = &it->boxes[b];
            d->boxes[d->nboxes++] = (det_box){0, x->cls, (float)x->x, (float)x->y, (float)(x->x + x->w),
                                              (float)(x->y + x->h)};
        }
    }
out:
    lupe_manifest_free(m);
    lupe_ws_close(ws);
    return st;
}

static lupe_status load_folder(trn_data *d, const char *dir)
{
    lupe_fmt_doc *doc = NULL;
    lupe_status st = lupe_fmt_read(LUPE_FMT_YOLO, dir, &doc);
    if (st) return lupe_err_ctx(st, "reading %s as a YOLO folder", dir);
    size_t nb = 0;
    for (size_t i = 0; i < doc->nitems; i++) nb += doc->items[i].nboxes;
    d->name = lupe_strdup(dir);
    if (!d->name || (st = data_alloc(d, doc->nitems, nb)) || (st = copy_classes(d, doc->classes, doc->nclasses)))
        goto out;
    for (size_t i = 0; i < doc->nitems; i++) {
        const lupe_fmt_item *it = &doc->items[i];
        char *path = lupe_path_join(dir, it->image);
        if (!path) {
            st = LUPE_ENOMEM;
            goto out;
        }
        int w = it->width, h = it->height;
        if (it->normalized && (w <= 0 || h <= 0)) {
            /* YOLO labels are fractions of the image size: read it from the
             * file's header, without decoding the pixels. */
            size_t len = 0;
            uint8_t *buf = NULL;
            lupe_img_info info;
            if ((st = lupe_file_read(path, 1u << 26, &buf, &len)) || (st = lupe_img_probe(buf, len, &info))) {
                lupe_free(buf);
                lupe_free(path);
                st = lupe_err_ctx(st, "%s", it->image);
                goto out;
            }
            lupe_free(buf);
            w = info.w, h = info.h;
        }
        int split = it->split ? lupe_split_parse(it->split) : LUPE_SPLIT_TRAIN;
        if (split < 0) split = LUPE_SPLIT_TRAIN;
        add_sample(d, split, path, (int)it->nboxes);
        for (size_t b = 0; b < it->nboxes; b++) {
            const lupe_fmt_box *x = &it->boxes[b];
            double sx = it->normalized ? w : 1, sy = it->normalized ? h : 1;
            /* The doc model keeps YOLO's centre boxes as top-left + size. */
            d->boxes[d->nboxes++] = (det_box){0, x->cls, (float)(x->x * sx), (float)(x->y * sy),
                                              (float)((x->x + x->w) * sx), (float)((x->y + x->h) * sy)};
        }
    }
out:
    lupe_fmt_doc_free(doc);
    return st;
}

lupe_status trn_data_load(const char *ref, const char *ws_dir, trn_data **out)
{
    *out = NULL;
    trn_data *d = lupe_calloc(1, sizeof *d);
    if (!d) return LUPE_ENOMEM;
    struct stat sb;
    lupe_status st = stat(ref, &sb) == 0 && S_ISDIR(sb.st_mode) ? load_folder(d, ref) : load_version(d, ref, ws_dir);
    if (st == LUPE_OK && d->n[LUPE_SPLIT_TRAIN] == 0) st = lupe_err(LUPE_EARG, "%s: no training images", ref);
    if (st) {
        trn_data_free(d);
        return st;
    }
    *out = d;
    return LUPE_OK;
}
