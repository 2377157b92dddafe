/*
 * Tests of status messages and the allocation funnel: counting, limits and
 * the fail-Nth switch that out-of-memory tests elsewhere rely on.
 */
#include <string.h>

#include "lib/testutil.h"

static void test_err_context_chain(void **state)
{
    (void)state;
    lupe_status st = lupe_err(LUPE_EFORMAT, "truncated at byte %d", 1234);
    st = lupe_err_ctx(st, "reading weights");
    st = lupe_err_ctx(st, "loading model v%d", 7);
    assert_int_equal(st, LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "loading model v7: reading weights: truncated at byte 1234");
    assert_string_equal(lupe_strerror(LUPE_ENOMEM), "out of memory");
    assert_string_equal(lupe_strerror((lupe_status)999), "unknown status");
    lupe_err_clear();
    assert_string_equal(lupe_errmsg(), "");
    assert_int_equal(lupe_err_ctx(LUPE_EIO, "opening x"), LUPE_EIO);
    assert_string_equal(lupe_errmsg(), "opening x: I/O error");
}

static void test_alloc_counts(void **state)
{
    (void)state;
    lupe_alloc_stats a, b;
    lupe_alloc_get_stats(&a);
    char *p = lupe_malloc(1000);
    char *q = lupe_calloc(10, 10);
    assert_non_null(p);
    assert_non_null(q);
    for (int i = 0; i < 100; i++) assert_int_equal(q[i], 0);
    assert_int_equal(lupe_alloc_size(p), 1000);
    lupe_alloc_get_stats(&b);
    assert_int_equal(b.live_bytes - a.live_bytes, 1100);
    assert_true(b.peak_bytes >= b.live_bytes);
    p = lupe_realloc(p, 5000);
    assert_non_null(p);
    lupe_alloc_get_stats(&b);
    assert_int_equal(b.live_bytes - a.live_bytes, 5100);
    p = lupe_realloc(p, 10);
    lupe_alloc_get_stats(&b);
    assert_int_equal(b.live_bytes - a.live_bytes, 110);
    lupe_free(p);
    lupe_free(q);
    lupe_free(NULL);
    lupe_alloc_get_stats(&b);
    assert_int_equal(b.live_bytes, a.live_bytes);
    assert_int_equal(b.allocs - a.allocs, 3); /* malloc, calloc, growing realloc */
}

static void test_alloc_limit(void **state)
{
    (void)state;
    lupe_alloc_stats a;
    lupe_alloc_get_stats(&a);
    lupe_alloc_set_limit(a.live_bytes + 4096);
    void *ok = lupe_malloc(4000);
    assert_non_null(ok);
    void *no = lupe_malloc(200);
    assert_null(no);
    assert_non_null(strstr(lupe_errmsg(), "200 bytes"));
    void *grown = lupe_realloc(ok, 8000);
    assert_null(grown); /* the old block stays valid */
    lupe_free(ok);
    lupe_alloc_set_limit(0);
    void *big = lupe_malloc(1 << 20);
    assert_non_null(big);
    lupe_free(big);
    assert_null(lupe_calloc(SIZE_MAX / 2, 4));
}

static void test_alloc_fail_nth(void **state)
{
    (void)state;
    lupe_alloc_stats a, b;
    lupe_alloc_get_stats(&a);
    lupe_alloc_fail_nth(3);
    void *p1 = lupe_malloc(8), *p2 = lupe_malloc(8), *p3 = lupe_malloc(8), *p4 = lupe_malloc(8);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_null(p3);
    assert_non_null(p4); /* only the nth fails */
    lupe_free(p1);
    lupe_free(p2);
    lupe_free(p4);
    lupe_alloc_get_stats(&b);
    assert_int_equal(b.failures - a.failures, 1);
    assert_int_equal(b.live_bytes, a.live_bytes);
}

static void test_strings(void **state)
{
    (void)state;
    char *s = lupe_asprintf("%s-%d", "tag", 42);
    assert_string_equal(s, "tag-42");
    char *t = lupe_strndup("abcdef", 3);
    assert_string_equal(t, "abc");
    char *j = lupe_path_join("dir///", "/file");
    assert_string_equal(j, "dir/file");
    lupe_free(s);
    lupe_free(t);
    lupe_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_context_chain), cmocka_unit_test(test_alloc_counts),
        cmocka_unit_test(test_alloc_limit),       cmocka_unit_test(test_alloc_fail_nth),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
