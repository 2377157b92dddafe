/*
 * A strict recursive-descent parser for the Python literals Ground Truth puts
 * in its CSV annotations column (lists, dicts, strings, numbers, True, False,
 * None), with nesting and value count capped against hostile cells.
 */
#include <string.h>

#include "formats/internal.h"

typedef struct parser {
    const char *s;
    size_t len, pos, nodes;
} parser;

static lupe_status fail(const parser *p, const char *what)
{
    return lupe_err(LUPE_EFORMAT, "byte %zu: %s", p->pos + 1, what);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') break;
        p->pos++;
    }
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void cleanup(fmt__py *v)
{
    if (v->type == FMT_PY_LIST || v->type == FMT_PY_DICT) {
        size_t n = v->type == FMT_PY_DICT ? 2 * v->len : v->len;
        for (size_t i = 0; i < n; i++) cleanup(&v->elems[i]);
        lupe_free(v->elems);
    }
    lupe_free(v->str);
    memset(v, 0, sizeof *v);
}

void fmt__py_free(fmt__py *v)
{
    if (!v) return;
    cleanup(v);
    lupe_free(v);
}

/* Room for one more element (n in use). */
static lupe_status grow(fmt__py **elems, size_t n)
{
    size_t cap = *elems ? lupe_alloc_size(*elems) / sizeof **elems : 0;
    if (n < cap) return LUPE_OK;
    size_t ncap = cap ? cap * 2 : 8;
    fmt__py *e = lupe_realloc(*elems, ncap * sizeof *e);
    if (!e) return LUPE_ENOMEM;
    *elems = e;
    return LUPE_OK;
}

/* Appends the UTF-8 encoding of cp. */
static size_t utf8(char *out, unsigned cp)
{
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xc0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One escape after a backslash at p->pos; appends to out (room for 4). */
static lupe_status escape(parser *p, char *out, size_t *n)
{
    p->pos++; /* the backslash */
    if (p->pos >= p->len) return fail(p, "string is not closed");
    char c = p->s[p->pos];
    static const char simple_in[] = "\\'\"abfnrtv", simple_out[] = "\\'\"\a\b\f\n\r\t\v";
    const char *k = c ? strchr(simple_in, c) : NULL;
    if (k) {
        out[(*n)++] = simple_out[k - simple_in];
        p->pos++;
        return LUPE_OK;
    }
    if (c == '\n') { /* a backslash-newline continues the string */
        p->pos++;
        return LUPE_OK;
    }
    if (c >= '0' && c <= '7') {
        unsigned v = 0;
        for (int i = 0; i < 3 && p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '7'; i++)
            v = v * 8 + (unsigned)(p->s[p->pos++] - '0');
        *n += utf8(out + *n, v);
        return LUPE_OK;
    }
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (digits) {
        unsigned v = 0;
        for (int i = 1; i <= digits; i++) {
            int h = p->pos + (size_t)i < p->len ? hexval(p->s[p->pos + (size_t)i]) : -1;
            if (h < 0) return fail(p, "bad \\x, \\u or \\U escape");
            v = v << 4 | (unsigned)h;
        }
        if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return fail(p, "escape is not a Unicode character");
        p->pos += (size_t)digits + 1;
        *n += utf8(out + *n, v);
        return LUPE_OK;
    }
    /* Python keeps an unknown escape as written, backslash included. */
    out[(*n)++] = '\\';
    return LUPE_OK;
}

static lupe_status parse_string(parser *p, fmt__py *v)
{
    char q = p->s[p->pos];
    if (p->pos + 2 < p->len && p->s[p->pos + 1] == q && p->s[p->pos + 2] == q)
        return fail(p, "triple-quoted strings are not supported");
    p->pos++;
    /* The text can only shrink through escapes, except \x80..\xff and
     * octal escapes, which grow 4 characters into at most 2 bytes. */
    size_t start = p->pos, cap = 0;
    while (start + cap < p->len && p->s[start + cap] != q) cap += p->s[start + cap] == '\\' ? 2 : 1;
    char *out = lupe_malloc(cap + 5);
    if (!out) return LUPE_ENOMEM;
    size_t n = 0;
    lupe_status st = LUPE_OK;
    for (;;) {
        if (p->pos >= p->len) {
            st = fail(p, "string is not closed");
            break;
        }
        char c = p->s[p->pos];
        if (c == q) {
            p->pos++;
            break;
        }
        if (c == '\n' || c == '\r') {
            st = fail(p, "line break inside a string");
            break;
        }
        if (n + 4 > cap + 4) { /* cannot happen: cap counts every input byte */
            st = fail(p, "string escape overflow");
            break;
        }
        if (c == '\\') {
            if ((st = escape(p, out, &n))) break;
        } else {
            out[n++] = c;
            p->pos++;
        }
    }
    if (st) {
        lupe_free(out);
        return st;
    }
    out[n] = 0;
    v->type = FMT_PY_STR;
    v->str = out;
    v->len = n;
    return LUPE_OK;
}

static lupe_status parse_number(parser *p, fmt__py *v)
{
    size_t start = p->pos, i = p->pos;
    if (i < p->len && (p->s[i] == '-' || p->s[i] == '+')) i++;
    size_t body = i;
    while (i < p->len) {
        char c = p->s[i];
        if ((c >= '0' && c <= '9') || c == '.') {
            i++;
        } else if ((c == 'e' || c == 'E') && i > body) {
            i++;
            if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        } else {
            break;
        }
    }
    if (i < p->len && is_name_char(p->s[i])) return fail(p, "unsupported number (hex, underscores or complex)");
    double d;
    int is_int;
    if (fmt__parse_number(p->s + start, i - start, &d, &is_int) != 0) return fail(p, "bad number");
    /* Python 3 refuses "007": a leading zero only in "0" itself. */
    if (is_int && p->s[body] == '0' && i - body > 1) {
        for (size_t k = body; k < i; k++)
            if (p->s[k] != '0') return fail(p, "integer with a leading zero");
    }
    v->type = FMT_PY_NUM;
    v->num = d;
    v->is_int = is_int;
    p->pos = i;
    return LUPE_OK;
}

static lupe_status parse_value(parser *p, fmt__py *v, int depth);

static lupe_status parse_list(parser *p, fmt__py *v, int depth)
{
    lupe_status st = LUPE_OK;
    v->type = FMT_PY_LIST;
    p->pos++;
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len) {
            st = fail(p, "list is not closed");
            goto out;
        }
        if (p->s[p->pos] == ']') break;
        if ((st = grow(&v->elems, v->len))) goto out;
        memset(&v->elems[v->len], 0, sizeof *v->elems);
        if ((st = parse_value(p, &v->elems[v->len], depth + 1))) goto out;
        v->len++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == ']') break;
        st = fail(p, p->pos < p->len ? "expected ',' or ']' in a list" : "list is not closed");
        goto out;
    }
    p->pos++;
out:
    if (st) cleanup(v);
    return st;
}

static lupe_status parse_dict(parser *p, fmt__py *v, int depth)
{
    lupe_status st = LUPE_OK;
    size_t used = 0; /* initialised entries of elems: keys and values */
    v->type = FMT_PY_DICT;
    p->pos++;
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len) {
            st = fail(p, "dict is not closed");
            goto out;
        }
        if (p->s[p->pos] == '}') break;
        if ((st = grow(&v->elems, used)) || (st = grow(&v->elems, used + 1))) goto out;
        memset(&v->elems[used], 0, 2 * sizeof *v->elems);
        if ((st = parse_value(p, &v->elems[used], depth + 1))) goto out;
        used++;
        if (v->elems[used - 1].type == FMT_PY_LIST || v->elems[used - 1].type == FMT_PY_DICT) {
            p->pos = v->elems[used - 1].pos;
            st = fail(p, "a dict key must be a string, number, True, False or None");
            goto out;
        }
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            st = fail(p, "expected ':' after a dict key");
            goto out;
        }
        p->pos++;
        if ((st = parse_value(p, &v->elems[used], depth + 1))) goto out;
        used++;
        v->len++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == '}') break;
        st = fail(p, p->pos < p->len ? "expected ',' or '}' in a dict" : "dict is not closed");
        goto out;
    }
    p->pos++;
out:
    if (st) {
        /* cleanup() frees 2*len entries; a key without its value is one more. */
        if (used > 2 * v->len) cleanup(&v->elems[used - 1]);
        cleanup(v);
    }
    return st;
}

static lupe_status parse_value(parser *p, fmt__py *v, int depth)
{
    memset(v, 0, sizeof *v);
    if (depth > FMT_MAX_DEPTH) return fail(p, "nested deeper than 32 levels");
    if (++p->nodes > FMT_PY_MAX_NODES)
        return lupe_err(LUPE_ELIMIT, "byte %zu: more than %zu values", p->pos + 1, FMT_PY_MAX_NODES);
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of text");
    v->pos = p->pos;
    char c = p->s[p->pos];
    if (c == '[') return parse_list(p, v, depth);
    if (c == '{') return parse_dict(p, v, depth);
    if (c == '\'' || c == '"') return parse_string(p, v);
    if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') return parse_number(p, v);
    if (is_name_char(c)) {
        size_t i = p->pos;
        while (i < p->len && is_name_char(p->s[i])) i++;
        size_t n = i - p->pos;
        const char *w = p->s + p->pos;
        if (n == 4 && memcmp(w, "True", 4) == 0) {
            v->type = FMT_PY_BOOL, v->b = true;
        } else if (n == 5 && memcmp(w, "False", 5) == 0) {
            v->type = FMT_PY_BOOL, v->b = false;
        } else if (n == 4 && memcmp(w, "None", 4) == 0) {
            v->type = FMT_PY_NONE;
        } else {
            char q[64], msg[96];
            snprintf(msg, sizeof msg, "unexpected name %s", fmt__quote(q, sizeof q, w, n));
            return fail(p, msg);
        }
        p->pos = i;
        return LUPE_OK;
    }
    char q[16], msg[48];
    snprintf(msg, sizeof msg, "unexpected %s", fmt__quote(q, sizeof q, &c, 1));
    return fail(p, msg);
}

lupe_status fmt__py_parse(const char *s, size_t len, fmt__py **out)
{
    *out = NULL;
    parser p = {s, len, 0, 0};
    fmt__py *v = lupe_malloc(sizeof *v);
    if (!v) return LUPE_ENOMEM;
    lupe_status st = parse_value(&p, v, 1);
    if (st == LUPE_OK) {
        skip_ws(&p);
        if (p.pos < p.len) {
            st = fail(&p, "unexpected text after the value");
            cleanup(v);
        }
    }
    if (st) {
        lupe_free(v);
        return st;
    }
    *out = v;
    return LUPE_OK;
}

const fmt__py *fmt__py_get(const fmt__py *dict, const char *key, bool *dup)
{
    const fmt__py *found = NULL;
    size_t klen = strlen(key);
    *dup = false;
    if (!dict || dict->type != FMT_PY_DICT) return NULL;
    for (size_t i = 0; i < dict->len; i++) {
        const fmt__py *k = &dict->elems[2 * i];
        if (k->type != FMT_PY_STR || k->len != klen || memcmp(k->str, key, klen) != 0) continue;
        if (found) *dup = true;
        else found = &dict->elems[2 * i + 1];
    }
    return found;
}
