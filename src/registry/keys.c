/*
 * Signing keys of a workspace: Ed25519 key pairs in .lupe/keys/. The secret
 * half (NAME.key) is written 0600 from its first byte and atomically; the
 * public half (NAME.pub, hex) is what devices are given. Loading a pair
 * checks that the halves belong together by signing and verifying.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "registry/registry_internal.h"

#define KEY_MAGIC "lupe-ed25519-secret-key v1\n"
#define KEY_FILE_MAX 4096

static char *keys_dir(lupe_ws *ws)
{
    return lupe_asprintf("%s/%s/keys", lupe_ws_root(ws), LUPE_WS_DIR);
}

static char *key_path(lupe_ws *ws, const char *name, const char *ext)
{
    return lupe_asprintf("%s/%s/keys/%s.%s", lupe_ws_root(ws), LUPE_WS_DIR, name, ext);
}

static lupe_status check_name(const char *name)
{
    if (!reg__valid_name(name))
        return lupe_err(LUPE_EARG, "'%s' is not a key name ([A-Za-z0-9_.-], at most %d characters)", name,
                        REG_NAME_MAX);
    return LUPE_OK;
}

lupe_status reg_key_create(lupe_ws *ws, const char *name, uint8_t pk[LUPE_ED25519_PK])
{
    lupe_status st = check_name(name);
    if (st) return st;
    char *dir = keys_dir(ws), *kp = key_path(ws, name, "key"), *pp = key_path(ws, name, "pub");
    uint8_t sk[LUPE_ED25519_SK];
    char text[sizeof KEY_MAGIC + 2 * LUPE_ED25519_SK + 2], pub[2 * LUPE_ED25519_PK + 2];
    if (!dir || !kp || !pp) {
        st = LUPE_ENOMEM;
        goto out;
    }
    /* The folder is private too: names of keys are nobody else's business. */
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        st = lupe_err(LUPE_EIO, "%s: mkdir: %s", dir, strerror(errno));
        goto out;
    }
    if (lupe_path_exists(kp) || lupe_path_exists(pp)) {
        st = lupe_err(LUPE_EEXIST, "key '%s' already exists (%s)", name, lupe_path_exists(kp) ? kp : pp);
        goto out;
    }
    if ((st = lupe_ed25519_keypair(pk, sk))) goto out;
    memcpy(text, KEY_MAGIC, sizeof KEY_MAGIC - 1);
    lupe_hex(sk, sizeof sk, text + sizeof KEY_MAGIC - 1);
    strcat(text, "\n");
    lupe_hex(pk, LUPE_ED25519_PK, pub);
    strcat(pub, "\n");
    /* Secret first: a public half never exists without its secret. */
    if ((st = lupe_file_write_atomic_mode(kp, NULL, text, strlen(text), 0600)) ||
        (st = lupe_file_write_atomic_mode(pp, NULL, pub, strlen(pub), 0644)))
        goto out;
out:
    /* Secrets do not linger in freed stack memory. */
    memset(sk, 0, sizeof sk);
    memset(text, 0, sizeof text);
    if (st) st = lupe_err_ctx(st, "creating key %s", name);
    lupe_free(dir);
    lupe_free(kp);
    lupe_free(pp);
    return st;
}

static lupe_status read_pub(const char *path, uint8_t pk[LUPE_ED25519_PK])
{
    uint8_t *buf = NULL;
    size_t len = 0;
    lupe_status st = lupe_file_read(path, KEY_FILE_MAX, &buf, &len);
    if (st) return st;
    char text[KEY_FILE_MAX + 1];
    memcpy(text, buf, len);
    text[len] = 0;
    lupe_free(buf);
    if (strlen(text) != len) return lupe_err(LUPE_EFORMAT, "%s: not a public key file", path);
    st = reg_pubkey_parse(text, pk);
    return st ? lupe_err_ctx(st, "%s", path) : LUPE_OK;
}

lupe_status reg_key_public(lupe_ws *ws, const char *name, uint8_t pk[LUPE_ED25519_PK])
{
    lupe_status st = check_name(name);
    if (st) return st;
    char *pp = key_path(ws, name, "pub");
    if (!pp) return LUPE_ENOMEM;
    if (!lupe_path_exists(pp)) st = lupe_err(LUPE_ENOTFOUND, "no key '%s' (see 'lupe keys list')", name);
    else st = read_pub(pp, pk);
    lupe_free(pp);
    return st;
}

lupe_status reg_key_load(lupe_ws *ws, const char *name, uint8_t pk[LUPE_ED25519_PK], uint8_t sk[LUPE_ED25519_SK])
{
    lupe_status st = reg_key_public(ws, name, pk);
    if (st) return st;
    char *kp = key_path(ws, name, "key");
    uint8_t *buf = NULL;
    size_t len = 0;
    char hex[2 * LUPE_ED25519_SK + 1];
    if (!kp) return LUPE_ENOMEM;
    if (!lupe_path_exists(kp)) {
        st = lupe_err(LUPE_ENOTFOUND, "key '%s' has no secret half here (%s): it can verify, not sign", name, kp);
        goto out;
    }
    if ((st = lupe_file_read(kp, KEY_FILE_MAX, &buf, &len))) goto out;
    size_t ml = sizeof KEY_MAGIC - 1, hl = 2 * LUPE_ED25519_SK;
    if (len < ml + hl || memcmp(buf, KEY_MAGIC, ml) || (len > ml + hl && !(len == ml + hl + 1 && buf[len - 1] == '\n'))) {
        st = lupe_err(LUPE_EFORMAT, "%s: not a lupe secret key file", kp);
        goto out;
    }
    memcpy(hex, buf + ml, hl);
    hex[hl] = 0;
    if (lupe_unhex(hex, sk, LUPE_ED25519_SK)) {
        st = lupe_err(LUPE_EFORMAT, "%s: the secret key is not hex digits", kp);
        goto out;
    }
    /* A signature made with the secret half must verify with the public
     * one; otherwise packages would be signed with a key nobody trusts. */
    static const char probe[] = "lupe key check";
    uint8_t sig[LUPE_ED25519_SIG];
    lupe_ed25519_sign(sig, probe, sizeof probe, sk);
    if (lupe_ed25519_verify(sig, probe, sizeof probe, pk)) {
        st = lupe_err(LUPE_ECORRUPT, "%s and %s.pub do not belong together", kp, name);
        goto out;
    }
out:
    memset(hex, 0, sizeof hex);
    if (buf) memset(buf, 0, len);
    lupe_free(buf);
    lupe_free(kp);
    if (st) memset(sk, 0, LUPE_ED25519_SK);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

lupe_status reg_key_each(lupe_ws *ws, int (*fn)(void *ud, const char *name, const uint8_t pk[LUPE_ED25519_PK]),
                         void *ud)
{
    char *dir = keys_dir(ws);
    if (!dir) return LUPE_ENOMEM;
    DIR *d = opendir(dir);
    lupe_status st = LUPE_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (!d) {
        if (errno != ENOENT) st = lupe_err(LUPE_EIO, "%s: %s", dir, strerror(errno));
        goto out; /* no folder: no keys yet */
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 4 || strcmp(e->d_name + l - 4, ".pub") || e->d_name[0] == '.') continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = lupe_realloc(names, nc * sizeof *names);
            if (!nn) {
                st = LUPE_ENOMEM;
                break;
            }
            names = nn, cap = nc;
        }
        if (!(names[n] = lupe_strndup(e->d_name, l - 4))) {
            st = LUPE_ENOMEM;
            break;
        }
        if (reg__valid_name(names[n])) n++;
        else lupe_free(names[n]); /* not one lupe made */
    }
    closedir(d);
    if (st) goto out;
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        uint8_t pk[LUPE_ED25519_PK];
        if ((st = reg_key_public(ws, names[i], pk))) break;
        if (fn(ud, names[i], pk)) break;
    }
out:
    for (size_t i = 0; i < n; i++) lupe_free(names[i]);
    lupe_free(names);
    lupe_free(dir);
    return st;
}
