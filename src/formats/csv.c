/*
 * An RFC 4180 CSV reader and field writer. Hand-written because Debian has
 * no well-kept CSV library, and because a label file's errors must name the
 * line and column of a broken quote (a quote left open swallows the rest of
 * the file, so it is a hard error, never a guess).
 */
#include <string.h>

#include "formats/internal.h"

#define CSV_MAX_FIELDS 4096

void fmt__csv_init(fmt__csv *c, const char *buf, size_t len, const char *name)
{
    memset(c, 0, sizeof *c);
    c->buf = buf;
    c->len = len;
    c->name = name;
    c->line = 1;
    /* Spreadsheets save CSV with a UTF-8 byte order mark; it is not part of
     * the first header name. */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) c->pos = c->line_start = 3;
}

void fmt__csv_cleanup(fmt__csv *c)
{
    lupe_free(c->scratch);
    lupe_free(c->off);
    lupe_free(c->flen);
    memset(c, 0, sizeof *c);
}

static lupe_status put(fmt__csv *c, size_t *used, char ch)
{
    if (*used + 1 > c->scap) {
        size_t ncap = c->scap ? c->scap * 2 : 256;
        char *p = lupe_realloc(c->scratch, ncap);
        if (!p) return LUPE_ENOMEM;
        c->scratch = p;
        c->scap = ncap;
    }
    c->scratch[(*used)++] = ch;
    return LUPE_OK;
}

static lupe_status new_field(fmt__csv *c, size_t off)
{
    if (c->nf >= CSV_MAX_FIELDS)
        return lupe_err(LUPE_ELIMIT, "%s: line %d: more than %d fields", c->name, c->line, CSV_MAX_FIELDS);
    if (c->nf == c->fcap) {
        size_t ncap = c->fcap ? c->fcap * 2 : 16;
        size_t *o = lupe_realloc(c->off, ncap * sizeof *o);
        if (!o) return LUPE_ENOMEM;
        c->off = o;
        size_t *l = lupe_realloc(c->flen, ncap * sizeof *l);
        if (!l) return LUPE_ENOMEM;
        c->flen = l;
        c->fcap = ncap;
    }
    c->off[c->nf] = off;
    c->flen[c->nf] = 0;
    c->nf++;
    return LUPE_OK;
}

static int column(const fmt__csv *c)
{
    return (int)(c->pos - c->line_start) + 1;
}

static lupe_status nul_error(const fmt__csv *c)
{
    return lupe_err(LUPE_EFORMAT, "%s: line %d, column %d: NUL byte in a text file", c->name, c->line, column(c));
}

/* Steps over a line break at pos (CRLF, LF or a lone CR) and counts it. */
static void line_break(fmt__csv *c)
{
    if (c->buf[c->pos] == '\r' && c->pos + 1 < c->len && c->buf[c->pos + 1] == '\n') c->pos++;
    c->pos++;
    c->line++;
    c->line_start = c->pos;
}

lupe_status fmt__csv_next(fmt__csv *c, int *line)
{
    lupe_status st;
    size_t used = 0;
    c->nf = 0;
    if (c->pos >= c->len) return LUPE_OK;
    *line = c->line;
    for (;;) {
        if ((st = new_field(c, used))) goto fail;
        if (c->pos < c->len && c->buf[c->pos] == '"') {
            int qline = c->line, qcol = column(c);
            c->pos++;
            for (;;) {
                if (c->pos >= c->len) {
                    st = lupe_err(LUPE_EFORMAT,
                                  "%s: line %d, column %d: quoted field is not closed before the end of the file",
                                  c->name, qline, qcol);
                    goto fail;
                }
                char ch = c->buf[c->pos];
                if (ch == '"') {
                    if (c->pos + 1 < c->len && c->buf[c->pos + 1] == '"') {
                        if ((st = put(c, &used, '"'))) goto fail;
                        c->pos += 2;
                        continue;
                    }
                    c->pos++;
                    break;
                }
                if (ch == 0) {
                    st = nul_error(c);
                    goto fail;
                }
                if (ch == '\n' || (ch == '\r' && !(c->pos + 1 < c->len && c->buf[c->pos + 1] == '\n'))) {
                    /* A line break inside quotes is part of the field. */
                    if ((st = put(c, &used, ch))) goto fail;
                    c->pos++;
                    c->line++;
                    c->line_start = c->pos;
                    continue;
                }
                if ((st = put(c, &used, ch))) goto fail;
                c->pos++;
            }
            if (c->pos < c->len && c->buf[c->pos] != ',' && c->buf[c->pos] != '\r' && c->buf[c->pos] != '\n') {
                st = lupe_err(LUPE_EFORMAT, "%s: line %d, column %d: '%c' after the closing quote of a field", c->name,
                              c->line, column(c), c->buf[c->pos] >= 0x20 && c->buf[c->pos] < 0x7f ? c->buf[c->pos] : '?');
                goto fail;
            }
        } else {
            /* Unquoted: a stray quote inside is kept as text, as Python's
             * csv module does; only a quote that opens a field quotes it. */
            while (c->pos < c->len && c->buf[c->pos] != ',' && c->buf[c->pos] != '\r' && c->buf[c->pos] != '\n') {
                if (c->buf[c->pos] == 0) {
                    st = nul_error(c);
                    goto fail;
                }
                if ((st = put(c, &used, c->buf[c->pos]))) goto fail;
                c->pos++;
            }
        }
        c->flen[c->nf - 1] = used - c->off[c->nf - 1];
        if ((st = put(c, &used, 0))) goto fail;
        if (c->pos >= c->len) break;
        if (c->buf[c->pos] == ',') {
            c->pos++;
            continue;
        }
        line_break(c);
        break;
    }
    return LUPE_OK;
fail:
    c->nf = 0;
    return st;
}

void fmt__csv_put_field(fmt__sb *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fmt__sb_puts(b, s);
        return;
    }
    fmt__sb_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') fmt__sb_put(b, "\"", 1);
        fmt__sb_put(b, p, 1);
    }
    fmt__sb_put(b, "\"", 1);
}
