/*
 * What the label files share: lookups of label sets and images, the
 * canonical JSON form of a box list (what is stored and hashed), and the
 * one function that inserts a revision.
 */
#ifndef LUPE_LABEL_INTERNAL_H
#define LUPE_LABEL_INTERNAL_H

#include "lupe/label.h"
#include "store/store_internal.h"

lupe_status label__set_id(lupe_ws *ws, const char *name, int64_t *out);
/* Full id and size of an image given by id or unique prefix. */
lupe_status label__image(lupe_ws *ws, const char *image, char id[LUPE_SHA256_HEX], int *w, int *h);
/* Canonical JSON of boxes: sorted, coordinates rounded to 1/1000 pixel. */
char *label__boxes_json(const lupe_box *boxes, int n);
lupe_status label__boxes_parse(const char *json, lupe_box **out, int *n);
void label__hash(const char *image_id, const char *boxes_json, char out[LUPE_SHA256_HEX]);
/* Inserts a revision whose boxes are already checked; runs inside the
 * caller's transaction. */
lupe_status label__insert(lupe_ws *ws, int64_t set_id, const char *image_id, const lupe_label_new *n, int64_t *out_rev);
lupe_status label__latest_by_id(lupe_ws *ws, int64_t set_id, const char *image_id, lupe_label_rev *out);

#endif
