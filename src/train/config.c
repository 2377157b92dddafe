/*
 * Training configuration: the defaults (YOLOv8's recipe), and the run's
 * config.json written from and read back into trn_cfg through one table of
 * fields, so a resumed run uses exactly the settings it started with.
 */
#include <stddef.h>
#include <string.h>

#include <jansson.h>

#include "lupe/train.h"
#include "train/train_internal.h"

void trn_cfg_default(trn_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->scale = "n";
    c->imgsz = 480, c->batch = 16, c->nbs = 64;
    c->epochs = 100;
    c->close_mosaic = 10;
    c->optimizer = "auto";
    c->lr0 = 0.01f, c->lrf = 0.01f, c->momentum = 0.937f, c->weight_decay = 5e-4f;
    c->warmup_epochs = 3.0f, c->warmup_momentum = 0.8f, c->warmup_bias_lr = 0.1f;
    c->ema_decay = 0.9999f, c->ema_tau = 2000.0f;
    c->clip_norm = 10.0f;
    c->seed = 0;
    c->workers = 2;
    c->precision = ENG_PREC_AUTO;
    c->val_every = 1;
    c->previews = 1;
    trn_aug_default(&c->aug);
}

enum { F_STR, F_INT, F_FLOAT, F_DOUBLE, F_U64 };
static const struct field {
    const char *name;
    int type;
    size_t off;
} fields[] = {
#define F(name, type) {#name, type, offsetof(trn_cfg, name)}
    F(data, F_STR), F(scale, F_STR), F(imgsz, F_INT), F(batch, F_INT), F(nbs, F_INT), F(epochs, F_INT),
    F(time_budget, F_DOUBLE), F(close_mosaic, F_INT), F(optimizer, F_STR), F(lr0, F_FLOAT), F(lrf, F_FLOAT),
    F(momentum, F_FLOAT), F(weight_decay, F_FLOAT), F(warmup_epochs, F_FLOAT), F(warmup_momentum, F_FLOAT),
    F(warmup_bias_lr, F_FLOAT), F(cos_lr, F_INT), F(ema_decay, F_FLOAT), F(ema_tau, F_FLOAT),
    F(clip_norm, F_FLOAT), F(seed, F_U64), F(workers, F_INT), F(threads, F_INT), F(precision, F_INT),
    F(val_every, F_INT), F(init, F_STR), F(previews, F_INT),
#undef F
#define A(name) {"aug." #name, F_FLOAT, offsetof(trn_cfg, aug) + offsetof(trn_aug, name)}
    A(hsv_h), A(hsv_s), A(hsv_v), A(translate), A(scale), A(fliplr), A(flipud), A(mosaic),
#undef A
};

char *trn__cfg_json(const trn_cfg *c)
{
    json_t *j = json_object();
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const struct field *f = &fields[i];
        const char *p = (const char *)c + f->off;
        json_t *v = NULL;
        switch (f->type) {
        case F_STR: v = *(const char *const *)p ? json_string(*(const char *const *)p) : json_null(); break;
        case F_INT: v = json_integer(*(const int *)p); break;
        case F_FLOAT: v = json_real((double)*(const float *)p); break;
        case F_DOUBLE: v = json_real(*(const double *)p); break;
        case F_U64: v = json_integer((json_int_t) * (const uint64_t *)p); break;
        }
        json_object_set_new(j, f->name, v);
    }
    char *s = lupe_json_dump(j, 1);
    json_decref(j);
    return s;
}

lupe_status trn_cfg_load(trn_cfg *c, const char *path, char **storage)
{
    json_t *j = NULL;
    *storage = NULL;
    lupe_status st = lupe_json_load_file(path, 1 << 20, &j);
    if (st) return st;
    if (!json_is_object(j)) {
        json_decref(j);
        return lupe_err(LUPE_EFORMAT, "%s: expected a JSON object", path);
    }
    /* Strings go into one funnel block: all of them fit in the file's size. */
    size_t cap = 1, used = 0;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) if (json_is_string(v)) cap += json_string_length(v) + 1;
    char *store = lupe_malloc(cap);
    if (!store) {
        json_decref(j);
        return LUPE_ENOMEM;
    }
    for (size_t i = 0; i < sizeof fields / sizeof *fields && !st; i++) {
        const struct field *f = &fields[i];
        char *p = (char *)c + f->off;
        v = json_object_get(j, f->name);
        if (!v) continue; /* older runs: keep the default */
        int ok = 1;
        switch (f->type) {
        case F_STR:
            if (json_is_null(v)) {
                *(const char **)p = NULL;
            } else if ((ok = json_is_string(v))) {
                size_t n = json_string_length(v);
                memcpy(store + used, json_string_value(v), n + 1);
                *(const char **)p = store + used;
                used += n + 1;
            }
            break;
        case F_INT:
            if ((ok = json_is_integer(v))) *(int *)p = (int)json_integer_value(v);
            break;
        case F_FLOAT:
            if ((ok = json_is_number(v))) *(float *)p = (float)json_number_value(v);
            break;
        case F_DOUBLE:
            if ((ok = json_is_number(v))) *(double *)p = json_number_value(v);
            break;
        case F_U64:
            if ((ok = json_is_integer(v))) *(uint64_t *)p = (uint64_t)json_integer_value(v);
            break;
        }
        if (!ok) st = lupe_err(LUPE_EFORMAT, "%s: \"%s\" has the wrong type", path, f->name);
    }
    json_decref(j);
    if (st) {
        lupe_free(store);
        return st;
    }
    *storage = store;
    return LUPE_OK;
}
