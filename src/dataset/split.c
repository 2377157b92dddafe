/*
 * Splitting a dataset into train, val and test. Images are grouped first
 * (for metal tags: all crops of one photo) and a group never straddles two
 * splits, so near-duplicates cannot leak from train into test. Groups seen
 * in the previous version keep their side; new groups are visited in an
 * order given by hashing the seed with the group's name, and each goes to
 * the split furthest below its target share. The result depends only on
 * the images, their groups, the ratios and the seed.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dataset_internal.h"

lupe_status dataset__groups(lupe_ws *ws, lupe_dataset_item *items, int64_t n, const char *group_by)
{
    lupe_status st = LUPE_OK;
    regex_t re;
    int have_re = 0;
    const char *tag = NULL;
    sqlite3_stmt *s = NULL;
    if (group_by && strncmp(group_by, "tag:", 4) == 0) {
        tag = group_by + 4;
        if (!*tag) return lupe_err(LUPE_EARG, "--group-by tag: needs a tag key, as in tag:photo");
        if ((st = store__prepare(ws, "SELECT min(value) FROM image_tags WHERE image_id = ?1 AND key = ?2", &s)))
            return st;
    } else if (group_by) {
        int rc = regcomp(&re, group_by, REG_EXTENDED);
        if (rc) {
            char msg[256];
            regerror(rc, &re, msg, sizeof msg);
            return lupe_err(LUPE_EARG, "--group-by '%s': %s", group_by, msg);
        }
        have_re = 1;
    }
    for (int64_t i = 0; i < n && !st; i++) {
        lupe_dataset_item *it = &items[i];
        char *g = NULL;
        if (tag) {
            sqlite3_reset(s);
            sqlite3_bind_text(s, 1, it->image, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
            if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) g = store__col_strdup(s, 0);
        } else if (have_re) {
            regmatch_t m[2];
            if (regexec(&re, it->file_name, 2, m, 0) == 0) {
                int k = m[1].rm_so >= 0 ? 1 : 0;
                g = lupe_strndup(it->file_name + m[k].rm_so, (size_t)(m[k].rm_eo - m[k].rm_so));
            }
        }
        /* No group found: the image is a group of its own. */
        it->group = g ? g : lupe_strdup(it->image);
        if (!it->group) st = LUPE_ENOMEM;
    }
    if (have_re) regfree(&re);
    sqlite3_finalize(s);
    return st;
}

typedef struct group {
    const char *name;
    int64_t count;
    int split;       /* -1 until placed */
    int64_t votes[3];
    uint8_t order[8];
} group;

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int by_group_name(const void *a, const void *b)
{
    return strcmp(((const group *)a)->name, ((const group *)b)->name);
}

static int by_order(const void *a, const void *b)
{
    const group *x = a, *y = b;
    int c = memcmp(x->order, y->order, sizeof x->order);
    return c ? c : strcmp(x->name, y->name);
}

/* Previous split of an image, or -1. prev->items are sorted by image id. */
static int prev_split(const lupe_manifest *prev, const char *image)
{
    int64_t lo = 0, hi = prev ? prev->nitems : 0;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(prev->items[mid].image, image);
        if (c == 0) return prev->items[mid].split;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

lupe_status dataset__assign_splits(lupe_dataset_item *items, int64_t n, const int ratios[3], uint64_t seed,
                                   const lupe_manifest *prev)
{
    if (n == 0) return LUPE_OK;
    /* Distinct group names, by sorting pointers to them. */
    const char **names = lupe_malloc((size_t)n * sizeof *names);
    group *groups = lupe_calloc((size_t)n, sizeof *groups);
    if (!names || !groups) {
        lupe_free(names);
        lupe_free(groups);
        return LUPE_ENOMEM;
    }
    for (int64_t i = 0; i < n; i++) names[i] = items[i].group;
    qsort(names, (size_t)n, sizeof *names, by_name);
    int64_t ng = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0) groups[ng++] = (group){.name = names[i], .split = -1};
    /* Count members and the previous version's votes per group. */
    for (int64_t i = 0; i < n; i++) {
        int64_t lo = 0, hi = ng;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (strcmp(groups[mid].name, items[i].group) < 0) lo = mid + 1;
            else hi = mid;
        }
        groups[lo].count++;
        int ps = prev_split(prev, items[i].image);
        if (ps >= 0) groups[lo].votes[ps]++;
    }
    int64_t fill[3] = {0, 0, 0};
    for (int64_t g = 0; g < ng; g++) {
        group *gr = &groups[g];
        int64_t best = 0;
        for (int s = 0; s < 3; s++)
            if (gr->votes[s] > best) best = gr->votes[s], gr->split = s;
        if (gr->split >= 0) fill[gr->split] += gr->count;
        uint8_t d[LUPE_SHA256_BYTES];
        char *key = lupe_asprintf("%llu:%s", (unsigned long long)seed, gr->name);
        if (!key) {
            lupe_free(names);
            lupe_free(groups);
            return LUPE_ENOMEM;
        }
        lupe_sha256(key, strlen(key), d);
        lupe_free(key);
        memcpy(gr->order, d, sizeof gr->order);
    }
    qsort(groups, (size_t)ng, sizeof *groups, by_order);
    for (int64_t g = 0; g < ng; g++) {
        group *gr = &groups[g];
        if (gr->split >= 0) continue;
        /* The split with the largest shortfall against its target share
         * of everything placed so far plus this group. */
        int64_t total = fill[0] + fill[1] + fill[2] + gr->count;
        double bestd = -1e300;
        for (int s = 0; s < 3; s++) {
            if (ratios[s] == 0) continue;
            double deficit = ratios[s] / 100.0 * (double)total - (double)fill[s];
            if (deficit > bestd) bestd = deficit, gr->split = s;
        }
        fill[gr->split] += gr->count;
    }
    /* Back to items, looking each item's group up by name. */
    qsort(groups, (size_t)ng, sizeof *groups, by_group_name);
    for (int64_t i = 0; i < n; i++) {
        if (items[i].split >= 0) continue;
        group key = {.name = items[i].group};
        group *g = bsearch(&key, groups, (size_t)ng, sizeof *groups, by_group_name);
        items[i].split = g ? g->split : LUPE_SPLIT_TRAIN;
    }
    lupe_free(names);
    lupe_free(groups);
    return LUPE_OK;
}
