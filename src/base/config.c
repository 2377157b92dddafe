/*
 * Config files read from a table of known keys. The format is deliberately
 * small (`key = value`, `#` comments) so that every error can name the file
 * and line, and an unknown or repeated key is an error rather than a silent
 * typo.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lupe/base.h"

#define CFG_MAX_KEYS 256
#define CFG_MAX_BYTES (1 << 20)

int lupe_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    unsigned shift = 0;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: return -1;
        }
        end++;
        if ((*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b')) end += 2;
        else if (*end == 'B' || *end == 'b') end++;
        if (*end) return -1;
    }
    if (shift && v > (UINT64_MAX >> shift)) return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static const lupe_cfg_key *find_key(const lupe_cfg_key *keys, const char *name)
{
    for (const lupe_cfg_key *k = keys; k->name; k++)
        if (strcmp(k->name, name) == 0) return k;
    return NULL;
}

/* Stores value into dst per key k; on error returns a message in msg. */
static int store(const lupe_cfg_key *k, void *dst, const char *value, char *msg, size_t msgsz)
{
    char *field = (char *)dst + k->offset;
    bool ranged = k->min <= k->max;
    switch (k->type) {
    case LUPE_CFG_INT: {
        errno = 0;
        char *end;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end) {
            snprintf(msg, msgsz, "'%s' expects an integer, got '%s'", k->name, value);
            return -1;
        }
        if (ranged && (v < k->min || v > k->max)) {
            snprintf(msg, msgsz, "'%s' must be between %.0f and %.0f, got %lld", k->name, k->min, k->max, v);
            return -1;
        }
        *(int64_t *)field = v;
        return 0;
    }
    case LUPE_CFG_DOUBLE: {
        errno = 0;
        char *end;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v)) {
            snprintf(msg, msgsz, "'%s' expects a number, got '%s'", k->name, value);
            return -1;
        }
        if (ranged && (v < k->min || v > k->max)) {
            snprintf(msg, msgsz, "'%s' must be between %g and %g, got %g", k->name, k->min, k->max, v);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    case LUPE_CFG_SIZE: {
        uint64_t v;
        if (lupe_parse_size(value, &v) != 0) {
            snprintf(msg, msgsz, "'%s' expects a size such as 512, 64k, 3M or 2G, got '%s'", k->name, value);
            return -1;
        }
        if (ranged && ((double)v < k->min || (double)v > k->max)) {
            snprintf(msg, msgsz, "'%s' must be between %.0f and %.0f bytes, got %llu", k->name, k->min, k->max,
                     (unsigned long long)v);
            return -1;
        }
        *(uint64_t *)field = v;
        return 0;
    }
    case LUPE_CFG_BOOL: {
        if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1") ||
            !strcasecmp(value, "on")) {
            *(bool *)field = true;
        } else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcmp(value, "0") ||
                   !strcasecmp(value, "off")) {
            *(bool *)field = false;
        } else {
            snprintf(msg, msgsz, "'%s' expects true or false, got '%s'", k->name, value);
            return -1;
        }
        return 0;
    }
    case LUPE_CFG_STRING: {
        char *s = lupe_strdup(value);
        if (!s) {
            snprintf(msg, msgsz, "out of memory");
            return -1;
        }
        lupe_free(*(char **)field);
        *(char **)field = s;
        return 0;
    }
    case LUPE_CFG_ENUM: {
        for (int i = 0; k->choices && k->choices[i]; i++) {
            if (strcmp(k->choices[i], value) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        int n = snprintf(msg, msgsz, "'%s' must be one of", k->name);
        for (int i = 0; k->choices && k->choices[i] && n > 0 && (size_t)n < msgsz; i++)
            n += snprintf(msg + n, msgsz - (size_t)n, "%s %s", i ? "," : "", k->choices[i]);
        if (n > 0 && (size_t)n < msgsz) snprintf(msg + n, msgsz - (size_t)n, "; got '%s'", value);
        return -1;
    }
    }
    snprintf(msg, msgsz, "'%s' has an unknown type", k->name);
    return -1;
}

lupe_status lupe_config_set(const lupe_cfg_key *keys, void *dst, const char *key, const char *value)
{
    const lupe_cfg_key *k = find_key(keys, key);
    if (!k) return lupe_err(LUPE_EARG, "unknown config key '%s'", key);
    char msg[512];
    if (store(k, dst, value, msg, sizeof msg) != 0) return lupe_err(LUPE_EARG, "%s", msg);
    return LUPE_OK;
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) end--;
    *end = 0;
    return s;
}

lupe_status lupe_config_parse(const lupe_cfg_key *keys, void *dst, const char *text, size_t len, const char *src)
{
    lupe_status st = LUPE_OK;
    size_t nkeys = 0;
    while (keys[nkeys].name) nkeys++;
    if (nkeys > CFG_MAX_KEYS) return lupe_err(LUPE_EINTERNAL, "config table has more than %d keys", CFG_MAX_KEYS);
    bool seen[CFG_MAX_KEYS] = {0};
    char *copy = lupe_strndup(text, len);
    if (!copy) return LUPE_ENOMEM;
    if (strlen(copy) != len) {
        st = lupe_err(LUPE_EFORMAT, "%s: byte %zu: NUL byte in a text file", src, strlen(copy));
        goto out;
    }
    int lineno = 0;
    for (char *line = copy; line;) {
        lineno++;
        char *nl = strchr(line, '\n');
        char *end = nl ? nl : line + strlen(line);
        char *next = nl ? nl + 1 : NULL;
        char *hash = memchr(line, '#', (size_t)(end - line));
        if (hash) end = hash;
        char *s = trim(line, end);
        line = next;
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            st = lupe_err(LUPE_EFORMAT, "%s:%d: expected 'key = value', got '%s'", src, lineno, s);
            goto out;
        }
        char *key = trim(s, eq);
        char *value = trim(eq + 1, eq + 1 + strlen(eq + 1));
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = 0;
            value++;
        }
        const lupe_cfg_key *k = find_key(keys, key);
        if (!k) {
            st = lupe_err(LUPE_EFORMAT, "%s:%d: unknown key '%s'", src, lineno, key);
            goto out;
        }
        size_t idx = (size_t)(k - keys);
        if (seen[idx]) {
            st = lupe_err(LUPE_EFORMAT, "%s:%d: key '%s' is set twice", src, lineno, key);
            goto out;
        }
        seen[idx] = true;
        char msg[512];
        if (store(k, dst, value, msg, sizeof msg) != 0) {
            st = lupe_err(LUPE_EFORMAT, "%s:%d: %s", src, lineno, msg);
            goto out;
        }
    }
out:
    lupe_free(copy);
    return st;
}

lupe_status lupe_config_load(const lupe_cfg_key *keys, void *dst, const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    lupe_status st = lupe_file_read(path, CFG_MAX_BYTES, &buf, &len);
    if (st) return st;
    st = lupe_config_parse(keys, dst, (const char *)buf, len, path);
    lupe_free(buf);
    return st;
}

void lupe_config_cleanup(const lupe_cfg_key *keys, void *dst)
{
    for (const lupe_cfg_key *k = keys; k->name; k++) {
        if (k->type == LUPE_CFG_STRING) {
            char **f = (char **)((char *)dst + k->offset);
            lupe_free(*f);
            *f = NULL;
        }
    }
}
