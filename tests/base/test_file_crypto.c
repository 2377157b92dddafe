/*
 * Tests of durable file I/O, SHA-256 and Ed25519 (against published test
 * vectors), and JSON parse errors.
 */
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "lib/testutil.h"

static void test_atomic_write_and_read(void **state)
{
    (void)state;
    const char *p = tu_path("atomic.txt");
    assert_int_equal(lupe_file_write_atomic(p, "first", 5), LUPE_OK);
    assert_int_equal(lupe_file_write_atomic(p, "second!", 7), LUPE_OK);
    uint8_t *buf = NULL;
    size_t n = 0;
    assert_int_equal(lupe_file_read(p, 100, &buf, &n), LUPE_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "second!", 7);
    lupe_free(buf);
    /* No temp files are left behind. */
    DIR *d = opendir(tu_tmpdir());
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d))) count += strstr(e->d_name, "atomic.txt.tmp") != NULL;
    closedir(d);
    assert_int_equal(count, 0);
    /* Cap and missing file. */
    assert_int_equal(lupe_file_read(p, 3, &buf, &n), LUPE_ELIMIT);
    assert_non_null(strstr(lupe_errmsg(), "atomic.txt"));
    assert_int_equal(lupe_file_read(tu_path("nope"), 100, &buf, &n), LUPE_ENOTFOUND);
    assert_int_equal(lupe_file_read(tu_tmpdir(), 100, &buf, &n), LUPE_EARG);
    assert_int_equal(lupe_file_write_atomic(tu_path("no/such/dir/x"), "x", 1), LUPE_EIO);
}

static void test_mkdirs(void **state)
{
    (void)state;
    const char *p = tu_path("a/b/c/d");
    assert_int_equal(lupe_mkdirs(p), LUPE_OK);
    assert_true(lupe_path_exists(p));
    assert_int_equal(lupe_mkdirs(p), LUPE_OK);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    uint8_t d[32];
    char hex[65];
    lupe_sha256("abc", 3, d);
    lupe_hex(d, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    lupe_sha256("", 0, d);
    lupe_hex(d, 32, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* Streaming over pieces equals one shot. */
    lupe_sha256_ctx h;
    lupe_sha256_init(&h);
    lupe_sha256_update(&h, "a", 1);
    lupe_sha256_update(&h, "bc", 2);
    lupe_sha256_final(&h, d);
    lupe_hex(d, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    tu_write(tu_path("abc.bin"), "abc", 3);
    char fhex[65];
    assert_int_equal(lupe_sha256_file(tu_path("abc.bin"), fhex), LUPE_OK);
    assert_string_equal(fhex, hex);
    uint8_t back[32];
    assert_int_equal(lupe_unhex(hex, back, 32), 0);
    assert_memory_equal(back, d, 32);
    assert_int_equal(lupe_unhex("zz", back, 1), -1);
    assert_int_equal(lupe_unhex("abc", back, 1), -1);
}

/* RFC 8032, section 7.1, test 1 (empty message). */
static void test_ed25519_rfc8032(void **state)
{
    (void)state;
    uint8_t sk[64], pk[32], sig[64], want[64];
    assert_int_equal(lupe_unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", sk, 32), 0);
    assert_int_equal(lupe_unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pk, 32), 0);
    memcpy(sk + 32, pk, 32); /* libsodium's secret key is seed || public key */
    assert_int_equal(lupe_unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                                "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
                                want, 64),
                     0);
    lupe_ed25519_sign(sig, "", 0, sk);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(lupe_ed25519_verify(sig, "", 0, pk), LUPE_OK);
    sig[10] ^= 1;
    assert_int_equal(lupe_ed25519_verify(sig, "", 0, pk), LUPE_EVERIFY);
}

static void test_ed25519_roundtrip(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], sig[64];
    assert_int_equal(lupe_ed25519_keypair(pk, sk), LUPE_OK);
    const char *msg = "deploy model tag-scratch v3";
    lupe_ed25519_sign(sig, msg, strlen(msg), sk);
    assert_int_equal(lupe_ed25519_verify(sig, msg, strlen(msg), pk), LUPE_OK);
    assert_int_equal(lupe_ed25519_verify(sig, "deploy model tag-scratch v4", strlen(msg), pk), LUPE_EVERIFY);
}

static void test_json(void **state)
{
    (void)state;
    json_t *j = NULL;
    const char *good = "{\"b\": [1, 2], \"a\": \"x\"}";
    assert_int_equal(lupe_json_parse(good, strlen(good), "good.json", &j), LUPE_OK);
    char *s = lupe_json_dump(j, 0);
    assert_string_equal(s, "{\"a\":\"x\",\"b\":[1,2]}");
    lupe_free(s);
    json_decref(j);
    const char *bad = "{\n  \"a\": 1,\n  \"b\": ]\n}";
    assert_int_equal(lupe_json_parse(bad, strlen(bad), "bad.json", &j), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "bad.json: line 3"));
    const char *dup = "{\"a\": 1, \"a\": 2}";
    assert_int_equal(lupe_json_parse(dup, strlen(dup), "dup.json", &j), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "duplicate"));
}

int main(void)
{
    assert_int_equal(lupe_base_init(), LUPE_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_atomic_write_and_read), cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_sha256_vectors),        cmocka_unit_test(test_ed25519_rfc8032),
        cmocka_unit_test(test_ed25519_roundtrip),     cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
