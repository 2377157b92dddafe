/*
 * A split's evaluation as JSON: what a run folder's metrics.json holds for
 * val and test, and what the model registry stores and compares, so the two
 * cannot disagree on names or on which numbers they keep.
 */
#include <jansson.h>

#include "lupe/eval.h"
#include "lupe/train.h"

json_t *trn_metrics_json(const eval_result *r, char *const *classes, int nc)
{
    json_t *cls = json_array(), *j = NULL;
    if (!cls) return NULL;
    int64_t boxes = 0;
    for (int i = 0; i < nc; i++) {
        boxes += r->ngt[i];
        json_t *c = json_pack("{s:s, s:i, s:f, s:f, s:f, s:f}", "name", classes[i], "boxes", r->ngt[i], "p",
                              r->p_class[i], "r", r->r_class[i], "ap50", r->ap50[i], "ap50_95", r->ap[i]);
        if (!c || json_array_append_new(cls, c)) {
            json_decref(cls);
            return NULL;
        }
    }
    j = json_pack("{s:i, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:o}", "images", r->nimages, "boxes", (json_int_t)boxes,
                  "p", r->p, "r", r->r, "f1", r->f1, "map50", r->map50, "map50_95", r->map, "conf", r->conf,
                  "classes", cls);
    return j; /* json_pack's "o" took cls, also on failure */
}
