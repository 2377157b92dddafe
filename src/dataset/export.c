/*
 * Exporting a dataset version: the manifest becomes a label-format document
 * whose images are the workspace's objects, and a format writer lays it out
 * as a folder other tools can train on.
 */
#include <string.h>

#include "dataset/dataset_internal.h"

lupe_status lupe_dataset_export(lupe_ws *ws, const char *ref, lupe_fmt_kind kind, const char *out_dir)
{
    lupe_manifest *m = NULL;
    lupe_fmt_doc *doc = NULL;
    lupe_status st = lupe_dataset_load(ws, ref, &m);
    if (st) return st;
    if (!(doc = lupe_fmt_doc_new())) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (int i = 0; i < m->nclasses && !st; i++) st = lupe_fmt_doc_add_class(doc, m->classes[i], NULL);
    for (int64_t i = 0; i < m->nitems && !st; i++) {
        const lupe_dataset_item *it = &m->items[i];
        lupe_fmt_item *fi = lupe_fmt_doc_add_item(doc, it->file_name);
        if (!fi) {
            st = LUPE_ENOMEM;
            break;
        }
        fi->width = it->width;
        fi->height = it->height;
        fi->labeled = 1;
        fi->split = lupe_strdup(lupe_split_name(it->split));
        fi->src_path = lupe_obj_path(ws, it->image);
        /* File names can repeat across source folders; the id prefix keeps
         * exported names unique without losing the original name. The
         * extension follows the content (a PNG ingested as x.bin exports as
         * .png), since YOLO tools find images by extension. */
        lupe_image im;
        if ((st = lupe_image_get(ws, it->image, &im))) break;
        const char *dot = strrchr(it->file_name, '.');
        int stem = dot && dot != it->file_name ? (int)(dot - it->file_name) : (int)strlen(it->file_name);
        fi->export_name = lupe_asprintf("%.12s-%.*s.%s", it->image, stem, it->file_name,
                                        strcmp(im.format, "png") == 0 ? "png" : "jpg");
        lupe_image_cleanup(&im);
        if (!fi->split || !fi->src_path || !fi->export_name) {
            st = LUPE_ENOMEM;
            break;
        }
        for (int k = 0; k < it->nboxes && !st; k++) {
            const lupe_box *b = &it->boxes[k];
            st = lupe_fmt_item_add_box(fi, b->cls, b->x, b->y, b->w, b->h);
        }
    }
    if (!st) st = lupe_fmt_write(kind, doc, out_dir);
out:
    if (st) st = lupe_err_ctx(st, "exporting %s as %s", ref, lupe_fmt_name(kind));
    lupe_fmt_doc_free(doc);
    lupe_manifest_free(m);
    return st;
}
