/*
 * YOLO class lists: classes.txt or obj.names (one name per line), or the
 * `names:` key of a data.yaml in the three shapes Ultralytics and Darknet
 * tools write (flow list, block list, block map of index to name). Only
 * that subset of YAML is read: no anchors, tags or multi-line scalars.
 */
#include <stdio.h>
#include <string.h>

#include "formats/internal.h"

typedef struct names {
    char **v;     /* by class index; NULL where a map left a gap */
    size_t n;     /* slots in v */
} names;

static void names_cleanup(names *ns)
{
    for (size_t i = 0; i < ns->n; i++) lupe_free(ns->v[i]);
    lupe_free(ns->v);
}

/* Stores a copy of s[0..len) at index i, growing the table. */
static lupe_status names_set(names *ns, size_t i, const char *s, size_t len, const char *src, int line)
{
    if (i >= FMT_MAX_CLASSES) return lupe_err(LUPE_ELIMIT, "%s:%d: more than %zu classes", src, line, FMT_MAX_CLASSES);
    if (len > FMT_MAX_STR)
        return lupe_err(LUPE_ELIMIT, "%s:%d: class name of %zu bytes is over the limit of %zu", src, line, len,
                        FMT_MAX_STR);
    if (len == 0) return lupe_err(LUPE_EFORMAT, "%s:%d: empty class name", src, line);
    if (memchr(s, 0, len)) return lupe_err(LUPE_EFORMAT, "%s:%d: NUL byte in a class name", src, line);
    if (i >= ns->n) {
        char **v = lupe_realloc(ns->v, (i + 1) * sizeof *v);
        if (!v) return LUPE_ENOMEM;
        memset(v + ns->n, 0, (i + 1 - ns->n) * sizeof *v);
        ns->v = v;
        ns->n = i + 1;
    }
    if (ns->v[i]) return lupe_err(LUPE_EFORMAT, "%s:%d: class %zu is named twice", src, line, i);
    if (!(ns->v[i] = lupe_strndup(s, len))) return LUPE_ENOMEM;
    return LUPE_OK;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_space(**s)) (*s)++, (*n)--;
    while (*n && is_space((*s)[*n - 1])) (*n)--;
}

/* classes.txt / obj.names: one name per line; blank lines only at the end
 * (a blank line in the middle would shift every later class index). */
static lupe_status parse_lines(names *ns, const char *buf, size_t len, const char *src)
{
    int line = 0, blank_line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        const char *s = buf + pos;
        size_t n = end - pos;
        pos = end + 1;
        line++;
        trim(&s, &n);
        if (n == 0) {
            if (!blank_line) blank_line = line;
            continue;
        }
        if (blank_line) return lupe_err(LUPE_EFORMAT, "%s:%d: blank line between class names", src, blank_line);
        lupe_status st = names_set(ns, ns->n, s, n, src, line);
        if (st) return st;
    }
    return LUPE_OK;
}

/* One YAML scalar at s (flow context stops at ',' and ']'): quoted with
 * '...' ('' is a quote) or "..." (\" and \\), or plain up to a comment.
 * Sets *used to the bytes consumed; the value goes to out (funnel). */
static lupe_status yaml_scalar(const char *s, size_t n, bool flow, char **out, size_t *outlen, size_t *used,
                               const char *src, int line)
{
    *out = NULL;
    size_t i = 0;
    if (n && (s[0] == '\'' || s[0] == '"')) {
        char q = s[0];
        char *v = lupe_malloc(n + 1);
        size_t k = 0;
        if (!v) return LUPE_ENOMEM;
        for (i = 1;; i++) {
            if (i >= n) {
                lupe_free(v);
                return lupe_err(LUPE_EFORMAT, "%s:%d: quoted name is not closed", src, line);
            }
            if (s[i] == q) {
                if (q == '\'' && i + 1 < n && s[i + 1] == '\'') {
                    v[k++] = '\'';
                    i++;
                    continue;
                }
                i++;
                break;
            }
            if (q == '"' && s[i] == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\')) i++;
            v[k++] = s[i];
        }
        v[k] = 0;
        *out = v;
        *outlen = k;
        *used = i;
        return LUPE_OK;
    }
    for (; i < n; i++) {
        if (flow && (s[i] == ',' || s[i] == ']')) break;
        if (s[i] == '#' && (i == 0 || is_space(s[i - 1]))) break;
    }
    *used = i;
    const char *t = s;
    size_t tn = i;
    trim(&t, &tn);
    if (!(*out = lupe_strndup(t, tn))) return LUPE_ENOMEM;
    *outlen = tn;
    return LUPE_OK;
}

/* names: [a, 'b c', "d"] starting at '[', possibly over several lines. */
static lupe_status yaml_flow(names *ns, const char *buf, size_t len, size_t pos, int *line, const char *src)
{
    pos++; /* '[' */
    for (;;) {
        while (pos < len && (is_space(buf[pos]) || buf[pos] == '\n')) *line += buf[pos++] == '\n';
        if (pos >= len) return lupe_err(LUPE_EFORMAT, "%s:%d: names list is not closed", src, *line);
        if (buf[pos] == ']') return LUPE_OK;
        char *v = NULL;
        size_t vlen = 0, used = 0;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t lim = nl ? (size_t)(nl - buf) : len;
        lupe_status st = yaml_scalar(buf + pos, lim - pos, true, &v, &vlen, &used, src, *line);
        if (!st) st = names_set(ns, ns->n, v, vlen, src, *line);
        lupe_free(v);
        if (st) return st;
        pos += used;
        while (pos < len && (is_space(buf[pos]) || buf[pos] == '\n')) *line += buf[pos++] == '\n';
        if (pos < len && buf[pos] == ',') {
            pos++;
            continue;
        }
        if (pos < len && buf[pos] == ']') return LUPE_OK;
        return lupe_err(LUPE_EFORMAT, "%s:%d: expected ',' or ']' in the names list", src, *line);
    }
}

/* Block form after "names:": "- a" items or "0: a" entries, one per line,
 * until a line that starts a new top-level key. */
static lupe_status yaml_block(names *ns, const char *buf, size_t len, size_t pos, int line, const char *src)
{
    int kind = 0; /* 1 = list, 2 = map */
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        const char *s = buf + pos;
        size_t n = end - pos;
        pos = end + 1;
        line++;
        bool indented = n && is_space(s[0]);
        trim(&s, &n);
        if (n == 0 || s[0] == '#') continue;
        if (!indented && s[0] != '-') break; /* next key */
        char *v = NULL;
        size_t vlen = 0, used = 0;
        lupe_status st;
        if (s[0] == '-' && (n == 1 || is_space(s[1]))) {
            if (kind == 2) return lupe_err(LUPE_EFORMAT, "%s:%d: names mixes a list and a map", src, line);
            kind = 1;
            const char *t = s + 1;
            size_t tn = n - 1;
            trim(&t, &tn);
            st = yaml_scalar(t, tn, false, &v, &vlen, &used, src, line);
            if (!st) st = names_set(ns, ns->n, v, vlen, src, line);
        } else {
            const char *colon = memchr(s, ':', n);
            long long idx;
            if (!colon || fmt__parse_int(s, (size_t)(colon - s), 0, (long long)FMT_MAX_CLASSES - 1, &idx) != 0)
                return lupe_err(LUPE_EFORMAT, "%s:%d: expected '- name' or 'index: name' under names", src, line);
            if (kind == 1) return lupe_err(LUPE_EFORMAT, "%s:%d: names mixes a list and a map", src, line);
            kind = 2;
            const char *t = colon + 1;
            size_t tn = n - (size_t)(t - s);
            trim(&t, &tn);
            st = yaml_scalar(t, tn, false, &v, &vlen, &used, src, line);
            if (!st) st = names_set(ns, (size_t)idx, v, vlen, src, line);
        }
        lupe_free(v);
        if (st) return st;
    }
    return LUPE_OK;
}

static lupe_status parse_yaml(names *ns, const char *buf, size_t len, const char *src)
{
    int line = 0, names_line = 0;
    long long nc = -1;
    lupe_status st = LUPE_OK;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len, start = pos;
        const char *s = buf + pos;
        size_t n = end - pos;
        pos = end + 1;
        line++;
        if (n >= 3 && memcmp(s, "nc:", 3) == 0) {
            const char *t = s + 3;
            size_t tn = n - 3;
            const char *hash = memchr(t, '#', tn);
            if (hash) tn = (size_t)(hash - t);
            trim(&t, &tn);
            if (fmt__parse_int(t, tn, 0, (long long)FMT_MAX_CLASSES, &nc) != 0)
                return lupe_err(LUPE_EFORMAT, "%s:%d: nc is not a class count", src, line);
        }
        if (n < 6 || memcmp(s, "names:", 6) != 0) continue;
        if (names_line) return lupe_err(LUPE_EFORMAT, "%s:%d: names appears twice", src, line);
        names_line = line;
        size_t k = start + 6;
        while (k < end && is_space(buf[k])) k++;
        if (k < end && buf[k] == '[') {
            int l = line;
            st = yaml_flow(ns, buf, len, k, &l, src);
        } else if (k == end || buf[k] == '#') {
            st = yaml_block(ns, buf, len, pos, line, src);
        } else {
            st = lupe_err(LUPE_EFORMAT, "%s:%d: names must be a list or a map of index to name", src, line);
        }
        if (st) return st;
    }
    if (!names_line) return lupe_err(LUPE_EFORMAT, "%s: no 'names:' key", src);
    for (size_t i = 0; i < ns->n; i++)
        if (!ns->v[i]) return lupe_err(LUPE_EFORMAT, "%s:%d: names has no name for class %zu", src, names_line, i);
    if (nc >= 0 && (size_t)nc != ns->n)
        return lupe_err(LUPE_EFORMAT, "%s: nc is %lld but names lists %zu classes", src, nc, ns->n);
    return LUPE_OK;
}

lupe_status lupe_fmt_parse_yolo_classes(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name)
{
    if (!doc || (!buf && len)) return lupe_err(LUPE_EARG, "lupe_fmt_parse_yolo_classes: NULL argument");
    const char *src = source_name ? source_name : "<classes>";
    names ns = {0};
    fmt__mark mark;
    fmt__doc_mark(doc, &mark);
    bool yaml = fmt__ends_with_ci(src, ".yaml") || fmt__ends_with_ci(src, ".yml");
    lupe_status st = yaml ? parse_yaml(&ns, buf, len, src) : parse_lines(&ns, buf, len, src);
    if (st) goto out;
    if (ns.n == 0) {
        st = lupe_err(LUPE_EFORMAT, "%s: no class names", src);
        goto out;
    }
    /* Label lines index the file's list, so file class i must be document
     * class i: append to an empty document, or match what is there. */
    for (size_t i = 0; i < ns.n; i++) {
        if (i < doc->nclasses) {
            if (strcmp(doc->classes[i], ns.v[i]) != 0) {
                st = lupe_err(LUPE_EFORMAT, "%s: class %zu is '%s' but the document already has '%s'", src, i, ns.v[i],
                              doc->classes[i]);
                goto out;
            }
            continue;
        }
        if (fmt__find_class(doc, ns.v[i]) >= 0) {
            st = lupe_err(LUPE_EFORMAT, "%s: class '%s' is listed twice", src, ns.v[i]);
            goto out;
        }
        int idx;
        if ((st = fmt__class_index(doc, ns.v[i], &idx))) goto out;
    }
out:
    names_cleanup(&ns);
    if (st) fmt__doc_rollback(doc, &mark);
    return st;
}
