/*
 * Writing a signed model package: a folder with the weights (from the
 * object store, hash-checked on the way out), the training log, any extra
 * files a plugged-in exporter writes (model.onnx), manifest.json (what the
 * registry records about the version, and the size and SHA-256 of every
 * file) and manifest.sig (Ed25519 over the manifest's exact bytes). It is
 * built in a temp folder and renamed into place: complete or absent.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "registry/registry_internal.h"

/* The NMS IoU a package's thresholds name: the one validation used. */
#define PACKAGE_IOU 0.7

/* Removes a folder this process made and the plain files in it. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = lupe_path_join(dir, e->d_name);
            if (p) unlink(p);
            lupe_free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static lupe_status write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char *p = lupe_path_join(dir, name);
    if (!p) return LUPE_ENOMEM;
    lupe_status st = lupe_file_write_atomic(p, data, len);
    lupe_free(p);
    return st;
}

/* Copies an object out of the store (lupe_obj_get checks its hash). */
static lupe_status export_object(lupe_ws *ws, const char *id, const char *dir, const char *name)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    lupe_status st = lupe_obj_get(ws, id, &buf, &len);
    if (!st) st = write_file(dir, name, buf, len);
    lupe_free(buf);
    return st ? lupe_err_ctx(st, "writing %s", name) : LUPE_OK;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, by name, with its size and hash. */
static lupe_status list_files(const char *dir, json_t *files)
{
    DIR *d = opendir(dir);
    if (!d) return lupe_err(LUPE_EIO, "%s: %s", dir, strerror(errno));
    char *names[REG_PACKAGE_MAX_FILES];
    int n = 0;
    lupe_status st = LUPE_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == REG_PACKAGE_MAX_FILES) st = lupe_err(LUPE_ELIMIT, "more than %d files in a package", n);
        else if (!(names[n++] = lupe_strdup(e->d_name))) st = LUPE_ENOMEM, n--;
    }
    closedir(d);
    if (!st) qsort(names, (size_t)n, sizeof *names, cmp_name);
    for (int i = 0; i < n && !st; i++) {
        char *p = lupe_path_join(dir, names[i]);
        char hex[LUPE_SHA256_HEX];
        struct stat sb;
        if (!p) st = LUPE_ENOMEM;
        else if (lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode))
            st = lupe_err(LUPE_EARG, "%s: a package holds plain files only", p);
        else if (!(st = lupe_sha256_file(p, hex)))
            json_array_append_new(files, json_pack("{s:s, s:I, s:s}", "name", names[i], "size",
                                                   (json_int_t)sb.st_size, "sha256", hex));
        lupe_free(p);
    }
    for (int i = 0; i < n; i++) lupe_free(names[i]);
    return st;
}

static int log_row(void *ud, const reg_status_change *c)
{
    char t[32];
    lupe_time_iso(c->at, t, sizeof t);
    json_array_append_new(ud, json_pack("{s:s?, s:s, s:s, s:s, s:s}", "from", c->from, "to", c->to, "who", c->who,
                                        "at", t, "why", c->why));
    return 0;
}

/* A JSON text column as a value (null when absent or not JSON). */
static json_t *json_col(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    return j ? j : json_null();
}

/* The "model" object: everything the registry records about the version. */
static lupe_status model_json(lupe_ws *ws, const reg_version *v, json_t **out)
{
    char reg_at[32], ref[2 * REG_NAME_MAX + 16];
    lupe_time_iso(v->registered_at, reg_at, sizeof reg_at);
    snprintf(ref, sizeof ref, "%s:%d", v->group, v->version);
    json_t *log = json_array();
    lupe_status st = log ? reg_status_log_each(ws, ref, log_row, log) : LUPE_ENOMEM;
    if (st) {
        json_decref(log);
        return st;
    }
    /* The operating point: the confidence of maximum F1 on test (val
     * when there is no test split), and validation's NMS IoU. */
    double conf = 0.25;
    if (reg_metric(v->metrics, "test", "conf", &conf) && reg_metric(v->metrics, "val", "conf", &conf)) conf = 0.25;
    lupe_err_clear();
    json_t *m = json_pack(
        "{s:s, s:i, s:s, s:{s:s, s:s, s:i, s:i}, s:o, s:{s:i, s:i, s:i, s:s}, s:{s:f, s:f}, s:o, "
        "s:{s:s, s:s, s:s, s:s, s:o}, s:o, s:s, s:s, s:s?, s:o}",
        "group", v->group, "version", v->version, "status", reg_status_name(v->status), "arch", "family", v->arch,
        "scale", v->scale, "imgsz", v->imgsz, "nc", v->nc, "classes", json_col(v->classes), "input", "width", v->imgsz,
        "height", v->imgsz, "channels", 3, "pixels", "RGB, 0..1, letterboxed (grey 114/255 padding)", "thresholds",
        "conf", conf, "iou", PACKAGE_IOU, "metrics", json_col(v->metrics), "lineage", "dataset_id", v->dataset_id,
        "dataset_name", v->dataset_name, "source_commit", v->source_commit, "run_dir", v->run_dir, "hyperparameters",
        json_col(v->hyperparams), "gate", json_col(v->gate), "registered_by", v->registered_by, "registered_at",
        reg_at, "note", v->note, "status_log", log);
    if (!m) return LUPE_ENOMEM;
    if (v->results[0]) json_object_set_new(m, "training_log", json_string("results.csv"));
    *out = m;
    return LUPE_OK;
}

static lupe_status build(lupe_ws *ws, const reg_version *v, const reg_package_opts *o, const char *tmp)
{
    json_t *j = NULL, *files = json_array(), *model = NULL;
    char *text = NULL, *wpath = NULL;
    lupe_status st = files ? LUPE_OK : LUPE_ENOMEM;
    if (st || (st = export_object(ws, v->weights, tmp, "weights.ckpt"))) goto out;
    if (v->results[0] && (st = export_object(ws, v->results, tmp, "results.csv"))) goto out;
    if (o->extra_files) {
        if (!(wpath = lupe_path_join(tmp, "weights.ckpt"))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = o->extra_files(o->extra_ud, v, wpath, tmp))) {
            st = lupe_err_ctx(st, "writing the package's extra files");
            goto out;
        }
    }
    if ((st = list_files(tmp, files)) || (st = model_json(ws, v, &model))) goto out;
    char key_id[REG_KEY_ID_HEX], when[32];
    reg_key_id(o->pk, key_id);
    lupe_time_iso(lupe_time_unix(), when, sizeof when);
    j = json_pack("{s:s, s:i, s:s, s:s, s:s, s:o, s:o}", "format", REG_PACKAGE_FORMAT, "format_version",
                  REG_PACKAGE_VERSION, "key_id", key_id, "created_at", when, "created_by",
                  o->by ? o->by : reg_default_user(), "model", model, "files", files);
    model = files = NULL; /* taken by json_pack */
    if (!j || !(text = lupe_json_dump(j, 1))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    /* The signature covers exactly the bytes written, newline included. */
    size_t len = strlen(text);
    uint8_t sig[LUPE_ED25519_SIG];
    lupe_ed25519_sign(sig, text, len, o->sk);
    if ((st = write_file(tmp, "manifest.json", text, len)) || (st = write_file(tmp, "manifest.sig", sig, sizeof sig)))
        goto out;
out:
    json_decref(j);
    json_decref(files);
    json_decref(model);
    lupe_free(text);
    lupe_free(wpath);
    return st;
}

lupe_status reg_package(lupe_ws *ws, const char *ref, const reg_package_opts *o)
{
    reg_version v;
    char *tmp = NULL, *parent = NULL;
    int made = 0;
    lupe_status st = reg_get(ws, ref, &v);
    if (st) return lupe_err_ctx(st, "packaging %s", ref);
    if (v.status == REG_REJECTED || v.status == REG_ARCHIVED) {
        st = lupe_err(LUPE_EARG, "%s:%d is %s: only pending and approved versions are packaged", v.group, v.version,
                      reg_status_name(v.status));
        goto out;
    }
    if (!o->out || !o->pk || !o->sk) {
        st = lupe_err(LUPE_EARG, "a package needs an output folder and a signing key");
        goto out;
    }
    if (lupe_path_exists(o->out)) {
        st = lupe_err(LUPE_EEXIST, "%s already exists", o->out);
        goto out;
    }
    const char *slash = strrchr(o->out, '/');
    parent = slash ? lupe_strndup(o->out, (size_t)(slash - o->out) + (slash == o->out)) : lupe_strdup(".");
    tmp = lupe_asprintf("%s.tmp.%ld", o->out, (long)getpid());
    if (!tmp || !parent) {
        st = LUPE_ENOMEM;
        goto out;
    }
    /* The parent folders are made as needed, like `mkdir -p`. */
    if ((st = lupe_mkdirs(parent))) goto out;
    if (mkdir(tmp, 0755) != 0) {
        st = lupe_err(LUPE_EIO, "%s: mkdir: %s", tmp, strerror(errno));
        goto out;
    }
    made = 1;
    if ((st = build(ws, &v, o, tmp)) || (st = lupe_fsync_dir(tmp))) goto out;
    if (rename(tmp, o->out) != 0) {
        st = lupe_err(LUPE_EIO, "%s: rename into place: %s", o->out, strerror(errno));
        goto out;
    }
    made = 0;
    st = lupe_fsync_dir(parent);
out:
    if (made) remove_tree(tmp);
    if (st) st = lupe_err_ctx(st, "packaging %s", ref);
    lupe_free(tmp);
    lupe_free(parent);
    reg_version_cleanup(&v);
    return st;
}
