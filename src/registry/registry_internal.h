/*
 * What the registry's files share: the workspace internals (SQLite), name
 * checks, reading a version row and the one function that changes a
 * version's status inside a caller's transaction.
 */
#ifndef LUPE_REGISTRY_INTERNAL_H
#define LUPE_REGISTRY_INTERNAL_H

#include "lupe/registry.h"
#include "store/store_internal.h"

/* [A-Za-z0-9_.-]+, at most REG_NAME_MAX characters, not starting with '.'. */
int reg__valid_name(const char *s);

/* Splits "G:V", "G@ALIAS" or "G" into its parts; LUPE_EARG if malformed. */
typedef struct reg__ref {
    char group[REG_NAME_MAX + 1];
    int version;                      /* 0 when not given */
    char alias[REG_NAME_MAX + 1];     /* "" when not given */
} reg__ref;
lupe_status reg__ref_parse(const char *ref, reg__ref *out);

/* Group row id by name; LUPE_ENOTFOUND naming it. */
lupe_status reg__group_id(lupe_ws *ws, const char *group, int64_t *out);

/* Changes a version's status and logs it; runs inside the caller's
 * transaction. Refused transitions are LUPE_EARG naming both states. */
lupe_status reg__set_status_tx(lupe_ws *ws, const reg_version *v, reg_status to, const char *who, const char *why);

/* Runs fn between BEGIN IMMEDIATE and COMMIT, rolling back on failure. */
lupe_status reg__tx(lupe_ws *ws, lupe_status (*fn)(lupe_ws *ws, void *ud), void *ud);

/* The version's object path of its weights (funnel string). */
char *reg__weights_path(lupe_ws *ws, const reg_version *v);

/* The data a version was evaluated on, as trn_data_load takes it: the
 * dataset id, or the folder (NULL if neither is known). Funnel string. */
char *reg__version_data(const reg_version *v);

#endif
