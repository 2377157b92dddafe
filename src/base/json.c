/*
 * JSON through jansson. Chosen over cJSON because its parser reports line,
 * column and byte offset of an error, it rejects duplicate keys on request
 * and has pluggable allocators, so JSON memory is counted by the funnel.
 */
#include <jansson.h>
#include <string.h>

#include "lupe/base.h"

static void *json_malloc(size_t n)
{
    return lupe_malloc(n);
}

static void json_free(void *p)
{
    lupe_free(p);
}

void lupe_json_use_funnel(void)
{
    json_set_alloc_funcs(json_malloc, json_free);
}

lupe_status lupe_json_parse(const char *text, size_t len, const char *source_name, struct json_t **out)
{
    json_error_t e;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (!j) {
        return lupe_err(LUPE_EFORMAT, "%s: line %d, column %d (byte %d): %s", source_name ? source_name : "<json>",
                        e.line, e.column, e.position, e.text);
    }
    *out = j;
    return LUPE_OK;
}

lupe_status lupe_json_load_file(const char *path, size_t max_bytes, struct json_t **out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    lupe_status st = lupe_file_read(path, max_bytes, &buf, &len);
    if (st) return st;
    st = lupe_json_parse((const char *)buf, len, path, out);
    lupe_free(buf);
    return st;
}

char *lupe_json_dump(const struct json_t *j, int pretty)
{
    size_t flags = JSON_SORT_KEYS | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
    /* jansson 2.14 can return truncated JSON (a key silently dropped) when
     * an allocation fails inside json_dumps, so any failure counted by the
     * funnel during the dump means the text cannot be trusted. */
    lupe_alloc_stats before, after;
    lupe_alloc_get_stats(&before);
    char *s = json_dumps(j, flags);
    lupe_alloc_get_stats(&after);
    json_free_t jfree;
    json_get_alloc_funcs(NULL, &jfree);
    if (s && after.failures != before.failures) {
        jfree(s);
        s = NULL;
    }
    if (!s) {
        lupe_err(LUPE_ENOMEM, "out of memory writing JSON");
        return NULL;
    }
    /* json_dumps used the funnel (lupe_json_use_funnel), but callers may
     * not have called it; copy so the result is always a funnel string. */
    char *r = lupe_strdup(s);
    jfree(s);
    return r;
}
