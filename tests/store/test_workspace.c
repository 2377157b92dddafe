/*
 * Tests of the workspace: creation, discovery from a subfolder, schema
 * versions, the config file, and the content-addressed objects.
 */
#include <sqlite3.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/store.h"

static void test_init_and_open(void **state)
{
    (void)state;
    lupe_ws *ws = NULL;
    const char *dir = tu_path("ws1");
    assert_int_equal(lupe_ws_init(dir, &ws), LUPE_OK);
    assert_int_equal(lupe_ws_schema_version(ws), lupe_ws_schema_latest());
    lupe_ws_close(ws);
    assert_true(lupe_path_exists(tu_path("ws1/.lupe/lupe.db")));
    assert_true(lupe_path_exists(tu_path("ws1/.lupe/objects")));
    assert_true(lupe_path_exists(tu_path("ws1/.lupe/config")));
    assert_int_equal(lupe_ws_init(dir, &ws), LUPE_EEXIST);
    assert_non_null(strstr(lupe_errmsg(), "already holds a workspace"));

    /* Found from a subfolder only when asked to search. */
    assert_int_equal(lupe_mkdirs(tu_path("ws1/a/b")), LUPE_OK);
    assert_int_equal(lupe_ws_open(tu_path("ws1/a/b"), LUPE_WS_FIND, &ws), LUPE_OK);
    assert_non_null(strstr(lupe_ws_root(ws), "ws1"));
    assert_null(strstr(lupe_ws_root(ws), "/a/b"));
    lupe_ws_close(ws);
    assert_int_equal(lupe_ws_open(tu_path("ws1/a/b"), 0, &ws), LUPE_ENOTFOUND);
    assert_non_null(strstr(lupe_errmsg(), "lupe init"));
    assert_int_equal(lupe_ws_open(tu_path("missing"), LUPE_WS_FIND, &ws), LUPE_ENOTFOUND);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    lupe_ws *ws = NULL;
    assert_int_equal(lupe_ws_init(tu_path("ws2"), &ws), LUPE_OK);
    lupe_ws_close(ws);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(tu_path("ws2/.lupe/lupe.db"), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(lupe_ws_open(tu_path("ws2"), 0, &ws), LUPE_EUNSUPPORTED);
    assert_non_null(strstr(lupe_errmsg(), "schema version 999"));
}

static void test_old_schema_migrated(void **state)
{
    (void)state;
    /* A database at version 0 (empty) is brought to the latest version. */
    assert_int_equal(lupe_mkdirs(tu_path("ws3/.lupe")), LUPE_OK);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(tu_path("ws3/.lupe/lupe.db"), &db), SQLITE_OK);
    sqlite3_close(db);
    lupe_ws *ws = NULL;
    assert_int_equal(lupe_ws_open(tu_path("ws3"), 0, &ws), LUPE_OK);
    assert_int_equal(lupe_ws_schema_version(ws), lupe_ws_schema_latest());
    lupe_ws_stats s;
    assert_int_equal(lupe_ws_stats_get(ws, &s), LUPE_OK);
    assert_int_equal(s.images, 0);
    lupe_ws_close(ws);
}

static void test_config(void **state)
{
    (void)state;
    lupe_ws *ws = NULL;
    assert_int_equal(lupe_ws_init(tu_path("ws4"), &ws), LUPE_OK);
    lupe_ws_close(ws);
    const char *good = "ingest.max_file_size = 1M\ningest.default_source = cam-7\n";
    tu_write(tu_path("ws4/.lupe/config"), good, strlen(good));
    assert_int_equal(lupe_ws_open(tu_path("ws4"), 0, &ws), LUPE_OK);
    assert_int_equal(lupe_ws_get_config(ws)->ingest_max_file_size, 1 << 20);
    assert_string_equal(lupe_ws_get_config(ws)->ingest_default_source, "cam-7");
    lupe_ingest_opts o = lupe_ingest_default_opts(ws);
    assert_string_equal(o.source, "cam-7");
    assert_int_equal(o.limits.max_bytes, 1 << 20);
    lupe_ws_close(ws);
    const char *bad = "# ok\ningest.max_filesize = 1M\n";
    tu_write(tu_path("ws4/.lupe/config"), bad, strlen(bad));
    assert_int_equal(lupe_ws_open(tu_path("ws4"), 0, &ws), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "config:2: unknown key 'ingest.max_filesize'"));
}

static void test_objects(void **state)
{
    (void)state;
    lupe_ws *ws = NULL;
    assert_int_equal(lupe_ws_init(tu_path("ws5"), &ws), LUPE_OK);
    char id[65], id2[65];
    int existed = -1;
    assert_int_equal(lupe_obj_put(ws, "abc", 3, id, &existed), LUPE_OK);
    assert_string_equal(id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(existed, 0);
    assert_int_equal(lupe_obj_put(ws, "abc", 3, id2, &existed), LUPE_OK);
    assert_int_equal(existed, 1);
    assert_true(lupe_path_exists(tu_path("ws5/.lupe/objects/ba/7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")));
    uint8_t *buf = NULL;
    size_t n = 0;
    assert_int_equal(lupe_obj_get(ws, id, &buf, &n), LUPE_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "abc", 3);
    lupe_free(buf);
    /* Damage it: the read notices. */
    char *p = lupe_obj_path(ws, id);
    tu_write(p, "abd", 3);
    lupe_free(p);
    assert_int_equal(lupe_obj_get(ws, id, &buf, &n), LUPE_ECORRUPT);
    assert_int_equal(lupe_obj_get(ws, "xyz", &buf, &n), LUPE_EARG);
    assert_true(lupe_obj_id_valid(id));
    assert_false(lupe_obj_id_valid("BA7816"));
    lupe_ws_close(ws);
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_open), cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_old_schema_migrated), cmocka_unit_test(test_config),
        cmocka_unit_test(test_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
