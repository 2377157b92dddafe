/*
 * The content-addressed object folder: objects/ab/cdef... where the name is
 * the SHA-256 of the bytes. Objects are written to .lupe/tmp first and
 * renamed into place, so objects/ only ever holds complete files.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store_internal.h"

#define OBJ_MAX_BYTES ((size_t)4 << 30)

int lupe_obj_id_valid(const char *id)
{
    for (int i = 0; i < 64; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return 0;
    return id[64] == 0;
}

char *lupe_obj_path(const lupe_ws *ws, const char *id)
{
    return lupe_asprintf("%s/%.2s/%s", ws->objects, id, id + 2);
}

lupe_status lupe_obj_put(lupe_ws *ws, const void *data, size_t len, char out_id[LUPE_SHA256_HEX], int *out_existed)
{
    uint8_t d[LUPE_SHA256_BYTES];
    lupe_sha256(data, len, d);
    lupe_hex(d, sizeof d, out_id);
    lupe_status st = LUPE_OK;
    char *path = lupe_obj_path(ws, out_id);
    char *fan = lupe_asprintf("%s/%.2s", ws->objects, out_id);
    if (!path || !fan) {
        st = LUPE_ENOMEM;
        goto out;
    }
    struct stat sb;
    /* A file under the object's name was renamed into place whole, so it is
     * complete; fsck, not every put, re-hashes it. */
    if (stat(path, &sb) == 0 && (size_t)sb.st_size == len) {
        if (out_existed) *out_existed = 1;
        goto out;
    }
    if (out_existed) *out_existed = 0;
    if (mkdir(fan, 0755) == 0) {
        if ((st = lupe_fsync_dir(ws->objects))) goto out;
    } else if (errno != EEXIST) {
        st = lupe_err(LUPE_EIO, "%s: mkdir: %s", fan, strerror(errno));
        goto out;
    }
    st = lupe_file_write_atomic_tmp(path, ws->tmp, data, len);
out:
    if (st) st = lupe_err_ctx(st, "storing object %.12s", out_id);
    lupe_free(path);
    lupe_free(fan);
    return st;
}

lupe_status lupe_obj_get(lupe_ws *ws, const char *id, uint8_t **out, size_t *out_len)
{
    if (!lupe_obj_id_valid(id)) return lupe_err(LUPE_EARG, "'%s' is not an object id (64 hex digits)", id);
    char *path = lupe_obj_path(ws, id);
    if (!path) return LUPE_ENOMEM;
    uint8_t *buf = NULL;
    size_t len = 0;
    lupe_status st = lupe_file_read(path, OBJ_MAX_BYTES, &buf, &len);
    if (st) {
        st = lupe_err_ctx(st, "reading object %.12s", id);
        goto out;
    }
    uint8_t d[LUPE_SHA256_BYTES];
    char hex[LUPE_SHA256_HEX];
    lupe_sha256(buf, len, d);
    lupe_hex(d, sizeof d, hex);
    if (strcmp(hex, id) != 0) {
        st = lupe_err(LUPE_ECORRUPT, "object %s: content hashes to %s", path, hex);
        goto out;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    lupe_free(buf);
    lupe_free(path);
    return st;
}
