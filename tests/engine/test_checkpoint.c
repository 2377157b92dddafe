/*
 * Tests of the checkpoint format: a round trip keeps every bit, and every
 * truncation, every flipped byte and lying lengths are clear errors.
 */
#include <math.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/engine.h"

static float wdata[2 * 3 * 3 * 4], bdata[2];

static void make(eng_tensor_rec t[2])
{
    for (size_t i = 0; i < sizeof wdata / sizeof *wdata; i++) wdata[i] = (float)i * 0.25f - 3.0f;
    wdata[5] = NAN; /* bits, not values, must survive */
    wdata[6] = -0.0f;
    bdata[0] = 1e-30f, bdata[1] = 3.4e38f;
    static char wname[] = "model.0.conv.weight", bname[] = "model.0.conv.bias";
    t[0] = (eng_tensor_rec){.name = wname, .ndim = 4, .dims = {2, 3, 3, 4}, .n = 72, .data = wdata};
    t[1] = (eng_tensor_rec){.name = bname, .ndim = 1, .dims = {2}, .n = 2, .data = bdata};
}

static void test_roundtrip(void **state)
{
    (void)state;
    eng_tensor_rec t[2];
    make(t);
    const char *p = tu_path("a.ckpt");
    assert_int_equal(eng_ckpt_save(p, "{\"epoch\": 3}", t, 2), LUPE_OK);
    eng_ckpt *c = NULL;
    assert_int_equal(eng_ckpt_load(p, &c), LUPE_OK);
    assert_string_equal(c->meta, "{\"epoch\": 3}");
    assert_int_equal(c->nt, 2);
    const eng_tensor_rec *w = eng_ckpt_find(c, "model.0.conv.weight");
    assert_non_null(w);
    assert_int_equal(w->ndim, 4);
    assert_int_equal(w->dims[3], 4);
    assert_int_equal(w->n, 72);
    assert_memory_equal(w->data, wdata, sizeof wdata);
    assert_memory_equal(eng_ckpt_find(c, "model.0.conv.bias")->data, bdata, sizeof bdata);
    assert_null(eng_ckpt_find(c, "nope"));
    eng_ckpt_free(c);
    /* Bad input to save. */
    t[1].n = 3;
    assert_int_equal(eng_ckpt_save(tu_path("b.ckpt"), NULL, t, 2), LUPE_EARG);
    assert_false(lupe_path_exists(tu_path("b.ckpt")));
}

static void test_damage(void **state)
{
    (void)state;
    eng_tensor_rec t[2];
    make(t);
    const char *p = tu_path("d.ckpt");
    assert_int_equal(eng_ckpt_save(p, NULL, t, 2), LUPE_OK);
    size_t len = 0;
    uint8_t *buf = tu_read(p, &len);
    eng_ckpt *c = NULL;
    /* Every truncation. */
    for (size_t n = 0; n < len; n++) {
        lupe_status st = eng_ckpt_parse(buf, n, "d.ckpt", &c);
        assert_true(st == LUPE_EFORMAT || st == LUPE_ECORRUPT);
    }
    /* Every flipped byte: the checksum catches it. */
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x40;
        lupe_status st = eng_ckpt_parse(buf, len, "d.ckpt", &c);
        assert_true(st == LUPE_EFORMAT || st == LUPE_ECORRUPT);
        buf[i] ^= 0x40;
    }
    assert_int_equal(eng_ckpt_parse(buf, len - 5, "d.ckpt", &c), LUPE_ECORRUPT);
    assert_non_null(strstr(lupe_errmsg(), "d.ckpt: checksum mismatch"));
    lupe_free(buf);
}

/* A file with a valid checksum but lying lengths, as a careless writer or
 * an attacker could make: the reader must refuse it by length checks. */
static void test_lying_lengths(void **state)
{
    (void)state;
    uint8_t f[256];
    size_t n = 0;
    memcpy(f, "LUPECKPT", 8), n = 8;
    uint8_t hdr[] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(f + n, hdr, sizeof hdr), n += sizeof hdr;
    uint8_t tensor[] = {1, 0, 'x', 0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2, 0, 0, 0, 0, 0, 0, 0};
    memcpy(f + n, tensor, sizeof tensor), n += sizeof tensor;
    lupe_sha256(f, n, f + n);
    eng_ckpt *c = NULL;
    lupe_alloc_stats a, b;
    lupe_alloc_get_stats(&a);
    lupe_alloc_reset_peak();
    assert_int_equal(eng_ckpt_parse(f, n + 32, "lie.ckpt", &c), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "tensor 'x': dimension 0"));
    lupe_alloc_get_stats(&b);
    assert_true(b.peak_bytes - a.live_bytes < 4096); /* nothing sized from the lie */
    assert_int_equal(eng_ckpt_parse((const uint8_t *)"hello", 5, "h.ckpt", &c), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "not a lupe checkpoint"));
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_lying_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
