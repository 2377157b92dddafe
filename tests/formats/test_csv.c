/*
 * Tests of the formats library's text machinery: the RFC 4180 CSV reader
 * (quotes, doubled quotes, CRLF, line and column of broken quoting), the
 * Python-literal parser, strict numbers in any locale, and the string map.
 */
#include <locale.h>
#include <math.h>

#include "formats/fixtures.h"
#include "formats/internal.h"

/* Reads every record of text; returns them joined as "a|b|c\n" per record
 * with the starting line, "2:a|b\n", into out. */
static lupe_status csv_all(const char *text, size_t len, char *out, size_t outsz)
{
    fmt__csv c;
    fmt__csv_init(&c, text, len, "t.csv");
    size_t o = 0;
    out[0] = 0;
    lupe_status st;
    for (;;) {
        int line = 0;
        if ((st = fmt__csv_next(&c, &line)) || c.nf == 0) break;
        o += (size_t)snprintf(out + o, outsz - o, "%d:", line);
        for (size_t i = 0; i < c.nf; i++)
            o += (size_t)snprintf(out + o, outsz - o, "%s%s", i ? "|" : "", fmt__csv_field(&c, i));
        o += (size_t)snprintf(out + o, outsz - o, "\n");
    }
    fmt__csv_cleanup(&c);
    return st;
}

static void test_csv_records(void **state)
{
    (void)state;
    char out[512];
    const char *t = "a,b,c\r\n1,\"x,y\",\"he said \"\"hi\"\"\"\n\"multi\nline\",,\n\nlast,no newline";
    assert_int_equal(csv_all(t, strlen(t), out, sizeof out), LUPE_OK);
    assert_string_equal(out, "1:a|b|c\n2:1|x,y|he said \"hi\"\n3:multi\nline||\n5:\n6:last|no newline\n");
    /* A byte order mark is not part of the first field; a stray quote inside
     * an unquoted field is text; a lone CR ends a line. */
    const char *bom = "\xEF\xBB\xBFsource_ref,x\"y\rz,\"\"\n";
    assert_int_equal(csv_all(bom, strlen(bom), out, sizeof out), LUPE_OK);
    assert_string_equal(out, "1:source_ref|x\"y\n2:z|\n");
}

static void test_csv_errors(void **state)
{
    (void)state;
    char out[512];
    const char *t = "a,b\n1,2\n3,\"abc\n4,5\n";
    assert_int_equal(csv_all(t, strlen(t), out, sizeof out), LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "t.csv: line 3, column 3: quoted field is not closed before the end of the file");
    t = "a,b\n\"ab\"c,d\n";
    assert_int_equal(csv_all(t, strlen(t), out, sizeof out), LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "t.csv: line 2, column 5: 'c' after the closing quote of a field");
    const char nul[] = "a,b\nx,y\0z\n";
    assert_int_equal(csv_all(nul, sizeof nul - 1, out, sizeof out), LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "t.csv: line 2, column 4: NUL byte in a text file");
    /* More fields than any label file has: a cap, not a crash. */
    size_t n = 5000 * 2;
    char *wide = malloc(n + 1);
    for (size_t i = 0; i < n; i += 2) wide[i] = 'x', wide[i + 1] = ',';
    wide[n] = 0;
    assert_int_equal(csv_all(wide, n, out, sizeof out), LUPE_ELIMIT);
    fx_err_has("more than 4096 fields");
    free(wide);
}

static void test_csv_writer(void **state)
{
    (void)state;
    fmt__sb b = {0};
    fmt__csv_put_field(&b, "plain");
    fmt__sb_puts(&b, ",");
    fmt__csv_put_field(&b, "a,\"b\"\nc");
    assert_int_equal(fmt__sb_status(&b), LUPE_OK);
    assert_string_equal(b.s, "plain,\"a,\"\"b\"\"\nc\"");
    char out[128];
    assert_int_equal(csv_all(b.s, b.len, out, sizeof out), LUPE_OK);
    assert_string_equal(out, "1:plain|a,\"b\"\nc\n");
    fmt__sb_cleanup(&b);
}

static fmt__py *py_ok(const char *s)
{
    fmt__py *v = NULL;
    if (fmt__py_parse(s, strlen(s), &v) != LUPE_OK) fail_msg("parsing %s: %s", s, lupe_errmsg());
    return v;
}

static void py_bad(const char *s, lupe_status want, const char *msg)
{
    fmt__py *v = NULL;
    assert_int_equal(fmt__py_parse(s, strlen(s), &v), want);
    assert_null(v);
    if (strcmp(lupe_errmsg(), msg) != 0) fail_msg("parsing %s: '%s', wanted '%s'", s, lupe_errmsg(), msg);
}

static void test_pylit(void **state)
{
    (void)state;
    size_t live = fx_live();
    fmt__py *v = py_ok("[{'class_id': 0, 'top': 123, 'left': 81, 'height': 97.5, 'width': -8e1}, {}]");
    assert_int_equal(v->type, FMT_PY_LIST);
    assert_int_equal(v->len, 2);
    const fmt__py *d = &v->elems[0];
    bool dup;
    assert_int_equal(d->type, FMT_PY_DICT);
    assert_int_equal(d->len, 5);
    const fmt__py *top = fmt__py_get(d, "top", &dup);
    assert_non_null(top);
    assert_false(dup);
    assert_true(top->is_int && top->num == 123);
    const fmt__py *h = fmt__py_get(d, "height", &dup);
    assert_true(!h->is_int && h->num == 97.5);
    assert_true(fmt__py_get(d, "width", &dup)->num == -80);
    assert_null(fmt__py_get(d, "nope", &dup));
    fmt__py_free(v);

    v = py_ok(" {\"k\\\"\": 'a\\'b\\n\\x41\\u20ac\\101\\q', 'k2': [True, False, None, -0.5e-1, ], } ");
    assert_int_equal(v->type, FMT_PY_DICT);
    const fmt__py *s = fmt__py_get(v, "k\"", &dup);
    assert_non_null(s);
    assert_int_equal(s->type, FMT_PY_STR);
    assert_string_equal(s->str, "a'b\nA\xE2\x82\xAC" "A\\q");
    const fmt__py *l = fmt__py_get(v, "k2", &dup);
    assert_int_equal(l->len, 4);
    assert_true(l->elems[0].type == FMT_PY_BOOL && l->elems[0].b);
    assert_true(l->elems[1].type == FMT_PY_BOOL && !l->elems[1].b);
    assert_int_equal(l->elems[2].type, FMT_PY_NONE);
    assert_true(l->elems[3].num == -0.05);
    fmt__py_free(v);

    v = py_ok("{'a': 1, 'a': 2}");
    assert_non_null(fmt__py_get(v, "a", &dup));
    assert_true(dup);
    fmt__py_free(v);
    /* Past a double's range is still a number (inf); callers range-check. */
    v = py_ok("1e999");
    assert_true(isinf(v->num));
    fmt__py_free(v);

    py_bad("[{'a': 1,}", LUPE_EFORMAT, "byte 11: list is not closed");
    py_bad("[{'a': 1,", LUPE_EFORMAT, "byte 10: dict is not closed");
    py_bad("[{'a' 1}]", LUPE_EFORMAT, "byte 7: expected ':' after a dict key");
    py_bad("[1 2]", LUPE_EFORMAT, "byte 4: expected ',' or ']' in a list");
    py_bad("[nan]", LUPE_EFORMAT, "byte 2: unexpected name 'nan'");
    py_bad("float('inf')", LUPE_EFORMAT, "byte 1: unexpected name 'float'");
    py_bad("[007]", LUPE_EFORMAT, "byte 2: integer with a leading zero");
    py_bad("0x10", LUPE_EFORMAT, "byte 1: unsupported number (hex, underscores or complex)");
    py_bad("1_000", LUPE_EFORMAT, "byte 1: unsupported number (hex, underscores or complex)");
    py_bad("'abc", LUPE_EFORMAT, "byte 5: string is not closed");
    py_bad("'''x'''", LUPE_EFORMAT, "byte 1: triple-quoted strings are not supported");
    py_bad("'\\ud800'", LUPE_EFORMAT, "byte 3: escape is not a Unicode character");
    py_bad("[1] x", LUPE_EFORMAT, "byte 5: unexpected text after the value");
    py_bad("{[1]: 2}", LUPE_EFORMAT, "byte 2: a dict key must be a string, number, True, False or None");
    py_bad("(1, 2)", LUPE_EFORMAT, "byte 1: unexpected '('");
    py_bad("", LUPE_EFORMAT, "byte 1: unexpected end of text");
    py_bad("--1", LUPE_EFORMAT, "byte 1: bad number");
    /* Nesting past the cap is refused before the stack is at risk. */
    char deep[200];
    memset(deep, '[', 100);
    deep[100] = 0;
    py_bad(deep, LUPE_EFORMAT, "byte 33: nested deeper than 32 levels");
    /* A million values is more than any annotation list; refused as a cap. */
    size_t n = (FMT_PY_MAX_NODES + 1) * 2;
    char *many = malloc(n + 3);
    many[0] = '[';
    for (size_t i = 0; i < n; i += 2) many[1 + i] = '0', many[2 + i] = ',';
    many[n + 1] = ']';
    many[n + 2] = 0;
    fmt__py *big = NULL;
    assert_int_equal(fmt__py_parse(many, n + 2, &big), LUPE_ELIMIT);
    fx_err_has("more than 1048576 values");
    free(many);
    assert_int_equal(fx_live(), live);
}

static void num_ok(const char *s, double want, int want_int)
{
    double v;
    int is_int;
    if (fmt__parse_number(s, strlen(s), &v, &is_int) != 0) fail_msg("'%s' refused", s);
    if (v != want || is_int != want_int) fail_msg("'%s' = %.17g (int %d)", s, v, is_int);
}

static void num_bad(const char *s)
{
    double v;
    if (fmt__parse_number(s, strlen(s), &v, NULL) == 0) fail_msg("'%s' accepted as %g", s, v);
}

static void test_numbers(void **state)
{
    (void)state;
    num_ok("0", 0, 1);
    num_ok("-12", -12, 1);
    num_ok("+3.5", 3.5, 0);
    num_ok(".25", 0.25, 0);
    num_ok("5.", 5, 0);
    num_ok("1e3", 1000, 0);
    num_ok("-2.5E-1", -0.25, 0);
    const char *bad[] = {"", " 1", "1 ", "0x10", "nan", "inf", "-inf", "1e", "e5", ".", "-", "1.2.3", "1,5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) num_bad(bad[i]);
    char longnum[600];
    memset(longnum, '9', sizeof longnum - 1);
    longnum[sizeof longnum - 1] = 0;
    num_bad(longnum);
    long long i;
    assert_int_equal(fmt__parse_int("450.0", 5, 1, 1000, &i), 0);
    assert_int_equal(i, 450);
    assert_int_equal(fmt__parse_int("450.5", 5, 1, 1000, &i), -1);
    assert_int_equal(fmt__parse_int("0", 1, 1, 1000, &i), -1);

    /* Shortest text that reads back exactly, for many doubles. */
    uint64_t x = 88172645463325252ull;
    for (int k = 0; k < 20000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v = (double)(int64_t)(x >> 11) / (double)(1ull << (x & 31)) * ((x & 32) ? 1e-7 : 1);
        char t[64];
        double back;
        fmt__fmt_double(t, sizeof t, v);
        if (fmt__parse_number(t, strlen(t), &back, NULL) != 0 || back != v) fail_msg("%.17g printed as %s", v, t);
    }
    char t[64];
    fmt__fmt_double(t, sizeof t, 82);
    assert_string_equal(t, "82");
    fmt__fmt_double(t, sizeof t, 0.1);
    assert_string_equal(t, "0.1");
    fmt__fmt_double(t, sizeof t, 1e20);
    assert_string_equal(t, "1e+20");

    /* A locale with a decimal comma must change nothing. */
    const char *locs[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "ru_RU.UTF-8"};
    const char *got = NULL;
    for (size_t k = 0; k < 4 && !got; k++) got = setlocale(LC_NUMERIC, locs[k]);
    if (got) {
        num_ok("0.5", 0.5, 0);
        fmt__fmt_double(t, sizeof t, 0.5);
        assert_string_equal(t, "0.5");
        fmt__fmt_fixed(t, sizeof t, 0.25, 6);
        assert_string_equal(t, "0.250000");
        setlocale(LC_NUMERIC, "C");
    } else {
        printf("# no decimal-comma locale installed; locale check skipped\n");
    }
}

static void test_map_and_text(void **state)
{
    (void)state;
    size_t live = fx_live();
    fmt__map m = {0};
    char k[32];
    for (size_t i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key-%zu", i);
        assert_int_equal(fmt__map_put(&m, k, i * 3), LUPE_OK);
    }
    assert_int_equal(fmt__map_put(&m, "key-7", 1), LUPE_OK);
    assert_int_equal(m.count, 5000);
    size_t v;
    for (size_t i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key-%zu", i);
        assert_true(fmt__map_get(&m, k, &v));
        assert_int_equal(v, i == 7 ? 1 : i * 3);
    }
    assert_false(fmt__map_get(&m, "key-5000", &v));
    fmt__map_cleanup(&m);
    assert_int_equal(fx_live(), live);

    assert_true(fmt__clean_text("scratch \xE2\x82\xAC ok"));
    assert_false(fmt__clean_text("tab\there"));
    assert_false(fmt__clean_text("\xC0\xAF"));     /* overlong '/' */
    assert_false(fmt__clean_text("\xED\xA0\x80")); /* a UTF-16 surrogate */
    assert_false(fmt__clean_text("\xE2\x82"));     /* cut short */
    char q[64];
    assert_string_equal(fmt__quote(q, sizeof q, "a\nb", 3), "'a?b'");
    assert_string_equal(fmt__quote(q, sizeof q, "0123456789012345678901234567890123456789xyz", 43),
                        "'0123456789012345678901234567890123456789...'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_records),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_writer),
        cmocka_unit_test(test_pylit),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_map_and_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
