/*
 * Verifying a model package: the signature over the manifest's exact bytes
 * first, then the manifest, then every file's size and SHA-256, then that
 * nothing unlisted lies beside them. Each failure says which check failed
 * and on which file. This file needs only the base library (no SQLite, no
 * training code), so the edge agent can link it alone.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "lupe/registry.h"

#define MANIFEST_MAX_BYTES ((size_t)4 << 20)
#define SIG_FILE_MAX 4096

static const char *const check_names[] = {
    [REG_VERIFY_OK] = "ok",
    [REG_VERIFY_READ] = "read",
    [REG_VERIFY_SIG_SIZE] = "signature size",
    [REG_VERIFY_WRONG_KEY] = "signer",
    [REG_VERIFY_SIGNATURE] = "signature",
    [REG_VERIFY_MANIFEST] = "manifest",
    [REG_VERIFY_FILE_MISSING] = "file presence",
    [REG_VERIFY_FILE_SIZE] = "file size",
    [REG_VERIFY_FILE_HASH] = "file hash",
    [REG_VERIFY_EXTRA_FILE] = "unlisted files",
};

const char *reg_verify_check_name(reg_verify_check c)
{
    return (unsigned)c < sizeof check_names / sizeof *check_names ? check_names[c] : "?";
}

/* Key ids and public keys are read here, not in keys.c, so that a device
 * verifying packages needs this file alone. */
void reg_key_id(const uint8_t pk[LUPE_ED25519_PK], char out[REG_KEY_ID_HEX])
{
    uint8_t d[LUPE_SHA256_BYTES];
    lupe_sha256(pk, LUPE_ED25519_PK, d);
    lupe_hex(d, (REG_KEY_ID_HEX - 1) / 2, out);
}

lupe_status reg_pubkey_parse(const char *hex, uint8_t pk[LUPE_ED25519_PK])
{
    size_t n = strlen(hex);
    while (n && (hex[n - 1] == '\n' || hex[n - 1] == ' ' || hex[n - 1] == '\r')) n--;
    char buf[2 * LUPE_ED25519_PK + 1];
    if (n != 2 * LUPE_ED25519_PK)
        return lupe_err(LUPE_EARG, "a public key is %d hex digits; this one has %zu characters", 2 * LUPE_ED25519_PK, n);
    memcpy(buf, hex, n);
    buf[n] = 0;
    if (lupe_unhex(buf, pk, LUPE_ED25519_PK)) return lupe_err(LUPE_EARG, "the public key is not hex digits");
    return LUPE_OK;
}

/* A file name a package may hold: plain, no folders, not hidden. */
static int plain_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof ((reg_manifest_file *)0)->name || s[0] == '.') return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return 0;
    return 1;
}

static int lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static lupe_status parse_files(json_t *files, reg_manifest *out)
{
    if (!json_is_array(files) || json_array_size(files) == 0 || json_array_size(files) > REG_PACKAGE_MAX_FILES)
        return lupe_err(LUPE_EFORMAT, "\"files\" must be a list of 1 to %d files", REG_PACKAGE_MAX_FILES);
    int weights = 0;
    for (size_t i = 0; i < json_array_size(files); i++) {
        const char *name = NULL, *sha = NULL;
        json_int_t size = -1;
        if (json_unpack(json_array_get(files, i), "{s:s, s:I, s:s}", "name", &name, "size", &size, "sha256", &sha))
            return lupe_err(LUPE_EFORMAT, "files[%zu] needs name, size and sha256", i);
        if (!plain_name(name) || !strcmp(name, "manifest.json") || !strcmp(name, "manifest.sig"))
            return lupe_err(LUPE_EFORMAT, "files[%zu]: '%.64s' is not a plain file name of a package", i, name);
        if (size < 0) return lupe_err(LUPE_EFORMAT, "files[%zu] (%s): negative size", i, name);
        if (!lower_hex(sha, 64)) return lupe_err(LUPE_EFORMAT, "files[%zu] (%s): sha256 is not 64 hex digits", i, name);
        for (int k = 0; k < out->nfiles; k++)
            if (!strcmp(out->files[k].name, name))
                return lupe_err(LUPE_EFORMAT, "files[%zu]: %s is listed twice", i, name);
        reg_manifest_file *f = &out->files[out->nfiles++];
        snprintf(f->name, sizeof f->name, "%s", name);
        f->size = size;
        memcpy(f->sha256, sha, LUPE_SHA256_HEX);
        weights |= !strcmp(name, "weights.ckpt");
    }
    if (!weights) return lupe_err(LUPE_EFORMAT, "the manifest lists no weights.ckpt");
    return LUPE_OK;
}

lupe_status reg_manifest_parse(const char *text, size_t len, reg_manifest *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = NULL;
    lupe_status st = lupe_json_parse(text, len, "manifest.json", &j);
    if (st) return st;
    const char *fmt = NULL, *key = NULL;
    json_int_t version = 0;
    json_t *files = NULL;
    if (json_unpack(j, "{s:s, s:I, s:s, s:o}", "format", &fmt, "format_version", &version, "key_id", &key, "files",
                    &files) ||
        strcmp(fmt, REG_PACKAGE_FORMAT)) {
        st = lupe_err(LUPE_EFORMAT, "not a lupe model package manifest (format %s with format_version, key_id and "
                                    "files)", REG_PACKAGE_FORMAT);
        goto out;
    }
    if (version != REG_PACKAGE_VERSION) {
        st = lupe_err(LUPE_EUNSUPPORTED, "package format version %lld; this lupe reads version %d", (long long)version,
                      REG_PACKAGE_VERSION);
        goto out;
    }
    if (!lower_hex(key, REG_KEY_ID_HEX - 1)) {
        st = lupe_err(LUPE_EFORMAT, "key_id is not %d hex digits", REG_KEY_ID_HEX - 1);
        goto out;
    }
    out->format_version = (int)version;
    memcpy(out->key_id, key, REG_KEY_ID_HEX);
    st = parse_files(files, out);
out:
    json_decref(j);
    return st;
}

/* Sets the report and the message; returns LUPE_EVERIFY. */
static lupe_status fail(reg_verify_report *r, reg_verify_check c, const char *file, const char *fmt, ...)
    LUPE_PRINTF(4, 5);
static lupe_status fail(reg_verify_report *r, reg_verify_check c, const char *file, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->failed = c;
    snprintf(r->file, sizeof r->file, "%s", file ? file : "");
    return lupe_err(LUPE_EVERIFY, "%s check failed: %s", reg_verify_check_name(c), msg);
}

/* The key id an unverified manifest claims, to word a refusal only: the
 * verdict is already "refused" when this is read. */
static void claimed_key_id(const uint8_t *text, size_t len, char out[REG_KEY_ID_HEX])
{
    out[0] = 0;
    json_t *j = json_loadb((const char *)text, len, 0, NULL);
    const char *k = json_string_value(json_object_get(j, "key_id"));
    if (k && lower_hex(k, REG_KEY_ID_HEX - 1)) memcpy(out, k, REG_KEY_ID_HEX);
    json_decref(j);
}

static lupe_status check_files(const char *dir, const reg_manifest *m, reg_verify_report *r)
{
    for (int i = 0; i < m->nfiles; i++) {
        const reg_manifest_file *f = &m->files[i];
        char *p = lupe_path_join(dir, f->name);
        if (!p) return LUPE_ENOMEM;
        struct stat sb;
        char hex[LUPE_SHA256_HEX];
        lupe_status st = LUPE_OK;
        /* lstat: a link could point anywhere after the check. */
        if (lstat(p, &sb) != 0)
            st = fail(r, REG_VERIFY_FILE_MISSING, f->name, "%s is missing from the package", f->name);
        else if (!S_ISREG(sb.st_mode))
            st = fail(r, REG_VERIFY_FILE_MISSING, f->name, "%s is not a regular file", f->name);
        else if ((int64_t)sb.st_size != f->size)
            st = fail(r, REG_VERIFY_FILE_SIZE, f->name, "%s is %lld bytes; the manifest says %lld", f->name,
                      (long long)sb.st_size, (long long)f->size);
        else if ((st = lupe_sha256_file(p, hex)))
            st = fail(r, REG_VERIFY_READ, f->name, "%s", lupe_errmsg());
        else if (strcmp(hex, f->sha256))
            st = fail(r, REG_VERIFY_FILE_HASH, f->name, "%s hashes to %.16s...; the manifest says %.16s... (changed "
                      "after signing)", f->name, hex, f->sha256);
        lupe_free(p);
        if (st) return st;
        r->nfiles++;
    }
    return LUPE_OK;
}

static lupe_status check_extra(const char *dir, const reg_manifest *m, reg_verify_report *r)
{
    DIR *d = opendir(dir);
    if (!d) return fail(r, REG_VERIFY_READ, NULL, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    lupe_status st = LUPE_OK;
    while (!st && (e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] == '.' || !strcmp(n, "manifest.json") || !strcmp(n, "manifest.sig")) continue;
        int listed = 0;
        for (int i = 0; i < m->nfiles && !listed; i++) listed = !strcmp(m->files[i].name, n);
        if (!listed) st = fail(r, REG_VERIFY_EXTRA_FILE, n, "%s is in the package but not in its manifest", n);
    }
    closedir(d);
    return st;
}

lupe_status reg_package_verify(const char *dir, const uint8_t pk[LUPE_ED25519_PK], reg_verify_report *report)
{
    reg_verify_report local;
    reg_verify_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    char *mp = lupe_path_join(dir, "manifest.json"), *sp = lupe_path_join(dir, "manifest.sig");
    uint8_t *man = NULL, *sig = NULL;
    size_t mlen = 0, slen = 0;
    reg_manifest *m = NULL;
    char want[REG_KEY_ID_HEX], claimed[REG_KEY_ID_HEX];
    lupe_status st = LUPE_OK;
    if (!mp || !sp) {
        st = LUPE_ENOMEM;
        goto out;
    }
    reg_key_id(pk, want);
    if (lupe_file_read(mp, MANIFEST_MAX_BYTES, &man, &mlen)) {
        st = fail(r, REG_VERIFY_READ, "manifest.json", "%s", lupe_errmsg());
        goto out;
    }
    if (lupe_file_read(sp, SIG_FILE_MAX, &sig, &slen)) {
        st = fail(r, REG_VERIFY_READ, "manifest.sig", "%s", lupe_errmsg());
        goto out;
    }
    if (slen != LUPE_ED25519_SIG) {
        st = fail(r, REG_VERIFY_SIG_SIZE, "manifest.sig", "manifest.sig is %zu bytes; an Ed25519 signature is %d "
                  "(truncated, or not a signature)", slen, LUPE_ED25519_SIG);
        goto out;
    }
    if (lupe_ed25519_verify(sig, man, mlen, pk)) {
        claimed_key_id(man, mlen, claimed);
        memcpy(r->key_id, claimed, sizeof claimed);
        if (claimed[0] && strcmp(claimed, want))
            st = fail(r, REG_VERIFY_WRONG_KEY, "manifest.sig", "the package is signed by key %s, not by the key given "
                      "(%s)", claimed, want);
        else
            st = fail(r, REG_VERIFY_SIGNATURE, "manifest.json", "manifest.sig does not verify manifest.json with key "
                      "%s: the manifest was changed after signing, or the signature is damaged", want);
        goto out;
    }
    /* Signed by the key given: only now is the manifest read. */
    if (!(m = lupe_malloc(sizeof *m))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if (reg_manifest_parse((const char *)man, mlen, m)) {
        st = fail(r, REG_VERIFY_MANIFEST, "manifest.json", "%s", lupe_errmsg());
        goto out;
    }
    memcpy(r->key_id, m->key_id, sizeof m->key_id);
    if (strcmp(m->key_id, want)) {
        st = fail(r, REG_VERIFY_MANIFEST, "manifest.json", "the manifest names key %s but was signed by %s", m->key_id,
                  want);
        goto out;
    }
    if ((st = check_files(dir, m, r)) || (st = check_extra(dir, m, r))) goto out;
out:
    lupe_free(mp);
    lupe_free(sp);
    lupe_free(man);
    lupe_free(sig);
    lupe_free(m);
    return st;
}
