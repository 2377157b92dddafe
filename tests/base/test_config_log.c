/*
 * Tests of table-driven config files (every error names file and line) and
 * of the two log formats.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "lib/testutil.h"

typedef struct {
    int64_t epochs;
    double lr;
    bool mosaic;
    char *name;
    uint64_t cache;
    int optim;
} cfg;

static const char *const optims[] = {"sgd", "adamw", NULL};
static const lupe_cfg_key keys[] = {
    {"train.epochs", LUPE_CFG_INT, offsetof(cfg, epochs), 1, 10000, NULL, "epochs"},
    {"train.lr", LUPE_CFG_DOUBLE, offsetof(cfg, lr), 0, 1, NULL, "learning rate"},
    {"train.mosaic", LUPE_CFG_BOOL, offsetof(cfg, mosaic), 1, 0, NULL, "mosaic"},
    {"name", LUPE_CFG_STRING, offsetof(cfg, name), 1, 0, NULL, "name"},
    {"cache", LUPE_CFG_SIZE, offsetof(cfg, cache), 0, 1e12, NULL, "cache"},
    {"train.optimizer", LUPE_CFG_ENUM, offsetof(cfg, optim), 1, 0, optims, "optimizer"},
    {0},
};

static lupe_status parse(cfg *c, const char *text)
{
    return lupe_config_parse(keys, c, text, strlen(text), "t.conf");
}

static void test_config_good(void **state)
{
    (void)state;
    cfg c = {0};
    const char *text = "# comment\n\ntrain.epochs = 55\ntrain.lr=0.01  # inline\ntrain.mosaic = off\n"
                       "name = \"metal tags\"\ncache = 64M\ntrain.optimizer = adamw\n";
    assert_int_equal(parse(&c, text), LUPE_OK);
    assert_int_equal(c.epochs, 55);
    assert_true(c.lr > 0.0099 && c.lr < 0.0101);
    assert_false(c.mosaic);
    assert_string_equal(c.name, "metal tags");
    assert_int_equal(c.cache, 64ull << 20);
    assert_int_equal(c.optim, 1);
    assert_int_equal(lupe_config_set(keys, &c, "name", "other"), LUPE_OK);
    assert_string_equal(c.name, "other");
    assert_int_equal(lupe_config_set(keys, &c, "nope", "1"), LUPE_EARG);
    lupe_config_cleanup(keys, &c);
    assert_null(c.name);
}

static void expect_error(const char *text, const char *needle)
{
    cfg c = {0};
    assert_int_equal(parse(&c, text), LUPE_EFORMAT);
    if (!strstr(lupe_errmsg(), needle)) fail_msg("message '%s' lacks '%s'", lupe_errmsg(), needle);
    lupe_config_cleanup(keys, &c);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("train.epochs = 5\ntrain.epoch = 6\n", "t.conf:2: unknown key 'train.epoch'");
    expect_error("\n\ntrain.epochs = five\n", "t.conf:3: 'train.epochs' expects an integer");
    expect_error("train.epochs = 0\n", "t.conf:1: 'train.epochs' must be between 1 and 10000");
    expect_error("train.lr = 2\n", "t.conf:1: 'train.lr' must be between");
    expect_error("train.mosaic = maybe\n", "t.conf:1: 'train.mosaic' expects true or false");
    expect_error("cache = 12Q\n", "t.conf:1: 'cache' expects a size");
    expect_error("train.optimizer = adam\n", "must be one of sgd, adamw; got 'adam'");
    expect_error("name = a\nname = b\n", "t.conf:2: key 'name' is set twice");
    expect_error("just words\n", "t.conf:1: expected 'key = value'");
    cfg c = {0};
    assert_int_equal(lupe_config_parse(keys, &c, "name = a\0b", 10, "nul.conf"), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "nul.conf: byte 8"));
    lupe_config_cleanup(keys, &c);
}

static void test_parse_size(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(lupe_parse_size("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(lupe_parse_size("64k", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(lupe_parse_size("2GiB", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(lupe_parse_size("-1", &v), -1);
    assert_int_equal(lupe_parse_size("", &v), -1);
    assert_int_equal(lupe_parse_size("99999999999999999999T", &v), -1);
}

static void test_log_formats(void **state)
{
    (void)state;
    const char *p = tu_path("log.txt");
    FILE *f = fopen(p, "w+");
    assert_non_null(f);
    lupe_log_set_stream(f);
    lupe_log_init(LUPE_LOG_INFO, LUPE_LOG_JSON, "test");
    lupe_log_info("stored %d images, \"quoted\"", 3);
    lupe_log_debug("hidden");
    lupe_log_init(LUPE_LOG_WARN, LUPE_LOG_TEXT, "test");
    lupe_log_warn("plain %s", "text");
    lupe_log_info("also hidden");
    fflush(f);
    rewind(f);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "\"level\":\"info\""));
    assert_non_null(strstr(line, "\"component\":\"test\""));
    assert_non_null(strstr(line, "\"msg\":\"stored 3 images, \\\"quoted\\\"\""));
    assert_int_equal(line[0], '{');
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "test: warn: plain text\n");
    assert_null(fgets(line, sizeof line, f));
    fclose(f);
    lupe_log_set_stream(NULL);
    lupe_log_level l;
    assert_int_equal(lupe_log_parse_level("debug", &l), 0);
    assert_int_equal(l, LUPE_LOG_DEBUG);
    assert_int_equal(lupe_log_parse_level("loud", &l), -1);
}

int main(void)
{
    unsetenv("LUPE_LOG");
    unsetenv("LUPE_LOG_FORMAT");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_good),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_log_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
