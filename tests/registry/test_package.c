/*
 * Tests of signing keys and signed model packages: key files and their
 * modes, a package that verifies (with an exporter's extra file too), and
 * each way a package can be wrong (a flipped bit in the weights, a flipped
 * byte in the manifest, the wrong key, a missing file, a truncated
 * signature, a truncated or unlisted file, a hostile manifest signed by the
 * right key) refused by its own check with its own message. Also the
 * disagreement score of `lupe models compare` on hand-computed cases.
 */
#include <dirent.h>
#include <unistd.h>

#include "lupe/det.h"
#include "registry/fixtures.h"

typedef struct key_names {
    char name[4][32];
    int n;
} key_names;

static int on_key(void *ud, const char *name, const uint8_t *k)
{
    key_names *l = ud;
    (void)k;
    if (l->n < 4) snprintf(l->name[l->n], 32, "%s", name);
    l->n++;
    return 0;
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void test_keys(void **state)
{
    (void)state;
    lupe_ws *ws = fx_ws("ws-keys");
    uint8_t pk[LUPE_ED25519_PK], pk2[LUPE_ED25519_PK], sk[LUPE_ED25519_SK];
    assert_int_equal(reg_key_create(ws, "release", pk), LUPE_OK);
    struct stat sb;
    const char *dir = tu_path("ws-keys/.lupe/keys");
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(tu_path("ws-keys/.lupe/keys/release.key"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(tu_path("ws-keys/.lupe/keys/release.pub"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    assert_int_equal(reg_key_create(ws, "release", pk2), LUPE_EEXIST);
    assert_int_equal(reg_key_create(ws, "../evil", pk2), LUPE_EARG);
    assert_int_equal(reg_key_create(ws, ".hidden", pk2), LUPE_EARG);

    /* Both halves load and belong together. */
    assert_int_equal(reg_key_load(ws, "release", pk2, sk), LUPE_OK);
    assert_memory_equal(pk, pk2, sizeof pk);
    uint8_t sig[LUPE_ED25519_SIG];
    lupe_ed25519_sign(sig, "m", 1, sk);
    assert_int_equal(lupe_ed25519_verify(sig, "m", 1, pk), LUPE_OK);
    assert_int_equal(reg_key_public(ws, "nope", pk2), LUPE_ENOTFOUND);

    /* The public file as hex, the way `keys export` prints it. */
    size_t len = 0;
    uint8_t *pub = tu_read(tu_path("ws-keys/.lupe/keys/release.pub"), &len);
    assert_int_equal(len, 65);
    char line[80];
    memcpy(line, pub, len);
    line[len] = 0;
    lupe_free(pub);
    assert_int_equal(reg_pubkey_parse(line, pk2), LUPE_OK); /* the trailing newline is allowed */
    assert_memory_equal(pk, pk2, sizeof pk);
    line[63] = 0;
    assert_int_equal(reg_pubkey_parse(line, pk2), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "63 characters"));
    assert_int_equal(reg_pubkey_parse("abc", pk2), LUPE_EARG);
    assert_int_equal(reg_pubkey_parse("zz00000000000000000000000000000000000000000000000000000000000000", pk2),
                     LUPE_EARG);

    /* Listing, by name. */
    assert_int_equal(reg_key_create(ws, "alpha", pk2), LUPE_OK);
    key_names names = {0};
    assert_int_equal(reg_key_each(ws, on_key, &names), LUPE_OK);
    assert_int_equal(names.n, 2);
    assert_string_equal(names.name[0], "alpha");
    assert_string_equal(names.name[1], "release");

    /* A public half that is not the secret's partner is caught. */
    uint8_t *alpha = tu_read(tu_path("ws-keys/.lupe/keys/alpha.pub"), &len);
    tu_write(tu_path("ws-keys/.lupe/keys/release.pub"), alpha, len);
    lupe_free(alpha);
    assert_int_equal(reg_key_load(ws, "release", pk2, sk), LUPE_ECORRUPT);
    assert_non_null(strstr(lupe_errmsg(), "do not belong together"));
    /* A damaged secret file is named. */
    tu_write(tu_path("ws-keys/.lupe/keys/alpha.key"), "garbage\n", 8);
    assert_int_equal(reg_key_load(ws, "alpha", pk2, sk), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "alpha.key"));

    char id[REG_KEY_ID_HEX];
    reg_key_id(pk, id);
    assert_int_equal(strlen(id), 16);
    lupe_ws_close(ws);
}

/* ---- packages ------------------------------------------------------------- */

typedef struct pkg_fixture {
    lupe_ws *ws;
    uint8_t pk[LUPE_ED25519_PK], sk[LUPE_ED25519_SK];
    uint8_t other_pk[LUPE_ED25519_PK], other_sk[LUPE_ED25519_SK];
} pkg_fixture;

static pkg_fixture *fixture(void)
{
    static pkg_fixture f;
    if (f.ws) return &f;
    f.ws = fx_ws("ws-pkg");
    assert_int_equal(reg_key_create(f.ws, "signer", f.pk), LUPE_OK);
    assert_int_equal(reg_key_load(f.ws, "signer", f.pk, f.sk), LUPE_OK);
    assert_int_equal(reg_key_create(f.ws, "other", f.other_pk), LUPE_OK);
    assert_int_equal(reg_key_load(f.ws, "other", f.other_pk, f.other_sk), LUPE_OK);
    fx_register(f.ws, "g", fx_run("pkg-run-1", 41, 0.5, 0.5, FX_DATASET_A));
    fx_register(f.ws, "g", fx_run("pkg-run-2", 42, 0.5, 0.5, FX_DATASET_A));
    assert_int_equal(reg_set_status(f.ws, "g:1", REG_APPROVED, "ann", "ok"), LUPE_OK);
    assert_int_equal(reg_set_status(f.ws, "g:2", REG_REJECTED, "ann", "no"), LUPE_OK);
    return &f;
}

/* Packages g:1 into tu_path(name) and returns the folder. */
static const char *package(const char *name)
{
    pkg_fixture *f = fixture();
    const char *out = tu_path(name);
    reg_package_opts o = {.out = out, .pk = f->pk, .sk = f->sk, .by = "ann"};
    assert_int_equal(reg_package(f->ws, "g:1", &o), LUPE_OK);
    return out;
}

static reg_verify_check verify(const char *dir, const uint8_t *pk, reg_verify_report *r)
{
    lupe_status st = reg_package_verify(dir, pk, r);
    assert_int_equal(st, r->failed == REG_VERIFY_OK ? LUPE_OK : LUPE_EVERIFY);
    return r->failed;
}

static void flip(const char *path, long at)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x01, f);
    fclose(f);
}

static const char *file_in(const char *dir, const char *name)
{
    static char bufs[4][1200];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, 1200, "%s/%s", dir, name);
    return b;
}

static void test_package_verifies(void **state)
{
    (void)state;
    pkg_fixture *f = fixture();
    const char *dir = package("pkg-good");
    reg_verify_report r;
    assert_int_equal(verify(dir, f->pk, &r), REG_VERIFY_OK);
    assert_int_equal(r.nfiles, 2); /* weights.ckpt, results.csv */
    char id[REG_KEY_ID_HEX];
    reg_key_id(f->pk, id);
    assert_string_equal(r.key_id, id);
    /* The weights are the registered checkpoint's bytes. */
    reg_version v;
    assert_int_equal(reg_get(f->ws, "g:1", &v), LUPE_OK);
    char hex[LUPE_SHA256_HEX];
    assert_int_equal(lupe_sha256_file(file_in(dir, "weights.ckpt"), hex), LUPE_OK);
    assert_string_equal(hex, v.weights);
    reg_version_cleanup(&v);
    /* The manifest: what the version records, and the files. */
    size_t len = 0;
    uint8_t *text = tu_read(file_in(dir, "manifest.json"), &len);
    reg_manifest m;
    assert_int_equal(reg_manifest_parse((const char *)text, len, &m), LUPE_OK);
    assert_int_equal(m.nfiles, 2);
    assert_string_equal(m.files[0].name, "results.csv");
    assert_string_equal(m.files[1].name, "weights.ckpt");
    const char *want[] = {"\"group\": \"g\"", "\"status\": \"approved\"", "\"dataset_id\": \"" FX_DATASET_A "\"",
                          "\"source_commit\": \"0123456789ab\"", "\"hyperparameters\"", "\"map50_95\"",
                          "\"thresholds\"", "\"status_log\"", "\"created_by\": \"ann\""};
    char *s = lupe_strndup((const char *)text, len);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) assert_non_null(strstr(s, want[i]));
    lupe_free(s);
    lupe_free(text);
    assert_int_equal(file_size(file_in(dir, "manifest.sig")), LUPE_ED25519_SIG);

    /* An existing folder is not overwritten; rejected versions are not
     * packaged. */
    reg_package_opts o = {.out = dir, .pk = f->pk, .sk = f->sk};
    assert_int_equal(reg_package(f->ws, "g:1", &o), LUPE_EEXIST);
    o.out = tu_path("pkg-rejected");
    assert_int_equal(reg_package(f->ws, "g:2", &o), LUPE_EARG);
    assert_false(lupe_path_exists(o.out));
}

/* An exporter's hook: writes model.onnx, or fails. */
static lupe_status fake_onnx(void *ud, const reg_version *v, const char *weights, const char *dir)
{
    (void)v;
    assert_true(lupe_path_exists(weights));
    if (ud) return lupe_err(LUPE_EUNSUPPORTED, "no exporter");
    char p[1200];
    snprintf(p, sizeof p, "%s/model.onnx", dir);
    return lupe_file_write_atomic(p, "onnx bytes", 10);
}

static void test_package_extra_files(void **state)
{
    (void)state;
    pkg_fixture *f = fixture();
    reg_package_opts o = {.out = tu_path("pkg-onnx"), .pk = f->pk, .sk = f->sk, .extra_files = fake_onnx};
    assert_int_equal(reg_package(f->ws, "g:1", &o), LUPE_OK);
    reg_verify_report r;
    assert_int_equal(verify(o.out, f->pk, &r), REG_VERIFY_OK);
    assert_int_equal(r.nfiles, 3);
    flip(file_in(o.out, "model.onnx"), 3);
    assert_int_equal(verify(o.out, f->pk, &r), REG_VERIFY_FILE_HASH);
    assert_string_equal(r.file, "model.onnx");
    /* A failing hook leaves no package and no temp folder behind. */
    o.out = tu_path("pkg-onnx-fails");
    o.extra_ud = (void *)1;
    assert_int_equal(reg_package(f->ws, "g:1", &o), LUPE_EUNSUPPORTED);
    assert_non_null(strstr(lupe_errmsg(), "no exporter"));
    assert_false(lupe_path_exists(o.out));
    DIR *d = opendir(tu_tmpdir());
    struct dirent *e;
    while ((e = readdir(d))) assert_null(strstr(e->d_name, ".tmp."));
    closedir(d);
}

static void test_package_failures(void **state)
{
    (void)state;
    pkg_fixture *f = fixture();
    reg_verify_report r;

    /* A flipped bit in the weights. */
    const char *d = package("pkg-bit");
    flip(file_in(d, "weights.ckpt"), 100);
    assert_int_equal(verify(d, f->pk, &r), REG_VERIFY_FILE_HASH);
    assert_string_equal(r.file, "weights.ckpt");
    assert_non_null(strstr(lupe_errmsg(), "file hash check failed: weights.ckpt hashes to"));

    /* A flipped byte in the manifest. */
    d = package("pkg-manifest");
    flip(file_in(d, "manifest.json"), 200);
    assert_int_equal(verify(d, f->pk, &r), REG_VERIFY_SIGNATURE);
    assert_non_null(strstr(lupe_errmsg(), "signature check failed: manifest.sig does not verify manifest.json"));

    /* The wrong key. */
    d = package("pkg-key");
    assert_int_equal(verify(d, f->other_pk, &r), REG_VERIFY_WRONG_KEY);
    char id[REG_KEY_ID_HEX], other[REG_KEY_ID_HEX];
    reg_key_id(f->pk, id);
    reg_key_id(f->other_pk, other);
    assert_non_null(strstr(lupe_errmsg(), "signer check failed: the package is signed by key"));
    assert_non_null(strstr(lupe_errmsg(), id));
    assert_non_null(strstr(lupe_errmsg(), other));

    /* A missing file. */
    d = package("pkg-missing");
    assert_int_equal(unlink(file_in(d, "results.csv")), 0);
    assert_int_equal(verify(d, f->pk, &r), REG_VERIFY_FILE_MISSING);
    assert_string_equal(r.file, "results.csv");
    assert_non_null(strstr(lupe_errmsg(), "results.csv is missing"));

    /* A truncated signature, and a missing one. */
    d = package("pkg-sig");
    assert_int_equal(truncate(file_in(d, "manifest.sig"), 40), 0);
    assert_int_equal(verify(d, f->pk, &r), REG_VERIFY_SIG_SIZE);
    assert_non_null(strstr(lupe_errmsg(), "manifest.sig is 40 bytes"));
    assert_int_equal(unlink(file_in(d, "manifest.sig")), 0);
    assert_int_equal(verify(d, f->pk, &r), REG_VERIFY_READ);
    assert_string_equal(r.file, "manifest.sig");

    /* A truncated weights file, and a file the manifest does not list. */
    d = package("pkg-size");
    assert_int_equal(truncate(file_in(d, "weights.ckpt"), 100), 0);
    assert_int_equal(verify(d, f->pk, &r), REG_VERIFY_FILE_SIZE);
    assert_non_null(strstr(lupe_errmsg(), "weights.ckpt is 100 bytes"));
    d = package("pkg-extra");
    tu_write(file_in(d, "libevil.so"), "x", 1);
    tu_write(file_in(d, ".ignored"), "x", 1);
    assert_int_equal(verify(d, f->pk, &r), REG_VERIFY_EXTRA_FILE);
    assert_string_equal(r.file, "libevil.so");

    /* A hostile manifest signed by the right key is still refused when it
     * is read: file names must be plain. */
    d = package("pkg-hostile");
#define HOSTILE "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"%s\", \"files\": " \
                "[{\"name\": \"../../etc/passwd\", \"size\": 1, \"sha256\": \"%064d\"}]}"
    char buf[512];
    reg_key_id(f->pk, id);
    snprintf(buf, sizeof buf, HOSTILE, id, 0);
    uint8_t sig[LUPE_ED25519_SIG];
    lupe_ed25519_sign(sig, buf, strlen(buf), f->sk);
    tu_write(file_in(d, "manifest.json"), buf, strlen(buf));
    tu_write(file_in(d, "manifest.sig"), sig, sizeof sig);
    assert_int_equal(verify(d, f->pk, &r), REG_VERIFY_MANIFEST);
    assert_non_null(strstr(lupe_errmsg(), "not a plain file name"));
}

static void test_manifest_parse(void **state)
{
    (void)state;
    reg_manifest m;
    char good[1024], buf[512];
    snprintf(buf, sizeof buf, "[{\"name\": \"weights.ckpt\", \"size\": 5, \"sha256\": \"%064d\"}]", 0);
    snprintf(good, sizeof good,
             "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"0123456789abcdef\", "
             "\"files\": %s}", buf);
    assert_int_equal(reg_manifest_parse(good, strlen(good), &m), LUPE_OK);
    assert_int_equal(m.nfiles, 1);
    assert_int_equal(m.files[0].size, 5);
    const char *bad[] = {
        "",
        "[]",
        "{\"format\": \"zip\", \"format_version\": 1, \"key_id\": \"0123456789abcdef\", \"files\": []}",
        "{\"format\": \"lupe-model-package\", \"format_version\": 2, \"key_id\": \"0123456789abcdef\", \"files\": "
        "[{\"name\": \"weights.ckpt\", \"size\": 5, \"sha256\": \"" FX_DATASET_A "\"}]}",
        "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"XYZ\", \"files\": "
        "[{\"name\": \"weights.ckpt\", \"size\": 5, \"sha256\": \"" FX_DATASET_A "\"}]}",
        "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"0123456789abcdef\", \"files\": []}",
        "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"0123456789abcdef\", \"files\": "
        "[{\"name\": \"weights.ckpt\", \"size\": -5, \"sha256\": \"" FX_DATASET_A "\"}]}",
        "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"0123456789abcdef\", \"files\": "
        "[{\"name\": \"weights.ckpt\", \"size\": 5, \"sha256\": \"AAAA\"}]}",
        "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"0123456789abcdef\", \"files\": "
        "[{\"name\": \"manifest.sig\", \"size\": 5, \"sha256\": \"" FX_DATASET_A "\"}]}",
        "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"0123456789abcdef\", \"files\": "
        "[{\"name\": \"a/b\", \"size\": 5, \"sha256\": \"" FX_DATASET_A "\"}]}",
        "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"0123456789abcdef\", \"files\": "
        "[{\"name\": \"model.onnx\", \"size\": 5, \"sha256\": \"" FX_DATASET_A "\"}]}",
        "{\"format\": \"lupe-model-package\", \"format_version\": 1, \"key_id\": \"0123456789abcdef\", \"files\": "
        "[{\"name\": \"weights.ckpt\", \"size\": 5, \"sha256\": \"" FX_DATASET_A "\"}, "
        "{\"name\": \"weights.ckpt\", \"size\": 5, \"sha256\": \"" FX_DATASET_A "\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lupe_status st = reg_manifest_parse(bad[i], strlen(bad[i]), &m);
        if (st == LUPE_OK) fail_msg("bad manifest %zu was accepted", i);
    }
    assert_int_equal(reg_manifest_parse(bad[3], strlen(bad[3]), &m), LUPE_EUNSUPPORTED);
    assert_non_null(strstr(lupe_errmsg(), "version 2"));
}

static void test_disagreement(void **state)
{
    (void)state;
    det_pred a[3] = {{0, 0, 10, 10, 0.9f, 0}, {20, 20, 30, 30, 0.8f, 0}, {50, 50, 60, 60, 0.7f, 1}};
    det_pred b[3] = {{0, 0, 10, 10, 0.9f, 0}, {25, 20, 35, 30, 0.6f, 0}, {50, 50, 60, 60, 0.7f, 0}};
    reg_disagreement d;
    /* Identical boxes: no disagreement. */
    assert_int_equal(reg_disagree(a, 3, a, 3, &d), LUPE_OK);
    assert_int_equal(d.matched, 3);
    assert_true(d.score == 0.0);
    /* Box 2 shifted by half its width (IoU 50/150 = 1/3); box 3 has another
     * class in b, so both copies are unpaired. */
    assert_int_equal(reg_disagree(a, 3, b, 3, &d), LUPE_OK);
    assert_int_equal(d.na, 3);
    assert_int_equal(d.nb, 3);
    assert_int_equal(d.matched, 2);
    assert_float_equal(d.mean_iou, (1.0 + 1.0 / 3) / 2, 1e-6);
    assert_float_equal(d.score, 1 - (1.0 + 1.0 / 3) / 2 + 2, 1e-6);
    /* Nothing against something: every box unpaired. */
    assert_int_equal(reg_disagree(a, 0, b, 2, &d), LUPE_OK);
    assert_true(d.score == 2.0);
    assert_int_equal(reg_disagree(NULL, 0, NULL, 0, &d), LUPE_OK);
    assert_true(d.score == 0.0);
    /* Greedy by IoU: the exact copy pairs with the exact copy, leaving the
     * near one unpaired rather than pairing crosswise. */
    det_pred one[1] = {{0, 0, 10, 10, 0.9f, 0}};
    det_pred two[2] = {{1, 0, 11, 10, 0.9f, 0}, {0, 0, 10, 10, 0.5f, 0}};
    assert_int_equal(reg_disagree(one, 1, two, 2, &d), LUPE_OK);
    assert_int_equal(d.matched, 1);
    assert_true(d.mean_iou == 1.0);
    assert_true(d.score == 1.0);
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),           cmocka_unit_test(test_package_verifies),
        cmocka_unit_test(test_package_extra_files), cmocka_unit_test(test_package_failures),
        cmocka_unit_test(test_manifest_parse), cmocka_unit_test(test_disagreement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
