/*
 * What the dataset files share: manifest encoding and the split assignment.
 */
#ifndef LUPE_DATASET_INTERNAL_H
#define LUPE_DATASET_INTERNAL_H

#include "label/label_internal.h"
#include "lupe/dataset.h"

#define DATASET_MAX_ITEMS 10000000

/* Encodes a manifest canonically (sorted keys, items sorted by image id);
 * returns a funnel string. params is the JSON text of the options. */
char *dataset__encode(const lupe_manifest *m, const char *params);
/* Decodes manifest bytes named id (already hash-checked). */
lupe_status dataset__decode(const char *id, const char *text, size_t len, lupe_manifest **out);
void dataset__item_cleanup(lupe_dataset_item *it);

/* Assigns items[i].split for the items whose split is -1: groups with an
 * image from prev (the previous version's image -> split, may be NULL) keep
 * that split; new groups are placed by seed. */
lupe_status dataset__assign_splits(lupe_dataset_item *items, int64_t n, const int ratios[3], uint64_t seed,
                                   const lupe_manifest *prev);
/* Intersection over union of two boxes (0 when both are empty). */
double dataset__iou(const lupe_box *a, const lupe_box *b);
/* Fills items[i].group from the group_by option. */
lupe_status dataset__groups(lupe_ws *ws, lupe_dataset_item *items, int64_t n, const char *group_by);

#endif
