/*
 * Text helpers for the label formats: strict decimal number parsing and
 * shortest round-trip formatting, both pinned to the "C" locale (a program
 * that calls setlocale() must not turn "0.5" into a parse error), message
 * quoting, UTF-8 checks and a growable string buffer for the writers.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "formats/internal.h"

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    /* If this fails, plain strtod/snprintf are used: right unless the
     * program changed LC_NUMERIC, which lupe's own programs do not. */
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t get_c_locale(void)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int fmt__parse_number(const char *s, size_t len, double *out, int *is_int)
{
    /* Longer than any double needs; a 500-digit integer is refused rather
     * than copied to the heap. */
    char tmp[512];
    if (len == 0 || len >= sizeof tmp) return -1;
    size_t i = 0;
    bool integral = true;
    if (s[i] == '+' || s[i] == '-') i++;
    size_t d0 = i;
    while (i < len && is_digit(s[i])) i++;
    size_t ndig = i - d0;
    if (i < len && s[i] == '.') {
        integral = false;
        i++;
        size_t f0 = i;
        while (i < len && is_digit(s[i])) i++;
        ndig += i - f0;
    }
    if (ndig == 0) return -1;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        integral = false;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        size_t e0 = i;
        while (i < len && is_digit(s[i])) i++;
        if (i == e0) return -1;
    }
    if (i != len) return -1;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    locale_t loc = get_c_locale();
    double v = loc ? strtod_l(tmp, NULL, loc) : strtod(tmp, NULL);
    *out = v;
    if (is_int) *is_int = integral;
    return 0;
}

int fmt__parse_int(const char *s, size_t len, long long lo, long long hi, long long *out)
{
    double v;
    if (fmt__parse_number(s, len, &v, NULL) != 0) return -1;
    if (!isfinite(v) || v != floor(v) || v < (double)lo || v > (double)hi) return -1;
    *out = (long long)v;
    return 0;
}

/* conv is 'f' or 'g'; the locale is switched for this thread only. */
static void c_snprintf(char *out, size_t outsz, char conv, int prec, double v)
{
    locale_t loc = get_c_locale();
    locale_t old = loc ? uselocale(loc) : (locale_t)0;
    if (conv == 'f') snprintf(out, outsz, "%.*f", prec, v);
    else snprintf(out, outsz, "%.*g", prec, v);
    if (loc) uselocale(old);
}

void fmt__fmt_double(char *out, size_t outsz, double v)
{
    if (!isfinite(v)) {
        /* Never reached by writers (boxes are checked finite), but the text
         * must still be something no reader mistakes for a number. */
        snprintf(out, outsz, "%s", "nan");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        c_snprintf(out, outsz, 'f', 0, v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        c_snprintf(out, outsz, 'g', prec, v);
        double back;
        if (fmt__parse_number(out, strlen(out), &back, NULL) == 0 && back == v) return;
    }
}

void fmt__fmt_fixed(char *out, size_t outsz, double v, int decimals)
{
    c_snprintf(out, outsz, 'f', decimals, v);
}

const char *fmt__quote(char *out, size_t outsz, const char *s, size_t len)
{
    size_t max = 40, o = 0;
    if (outsz < 8) {
        if (outsz) out[0] = 0;
        return out;
    }
    out[o++] = '\'';
    for (size_t i = 0; i < len && i < max && o + 5 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (len > max && o + 5 < outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '\'';
    out[o] = 0;
    return out;
}

bool fmt__clean_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        if (c < 0x20 || c == 0x7f) return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        int n;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef) n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4) n = 3, cp = c & 0x07;
        else return false;
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[k] & 0x3f);
        }
        /* Overlong forms, UTF-16 surrogates and values past U+10FFFF. */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

bool fmt__ends_with_ci(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

void fmt__sb_cleanup(fmt__sb *b)
{
    lupe_free(b->s);
    memset(b, 0, sizeof *b);
}

void fmt__sb_put(fmt__sb *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n + 1) {
            if (ncap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            ncap *= 2;
        }
        char *p = lupe_realloc(b->s, ncap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = ncap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void fmt__sb_puts(fmt__sb *b, const char *s)
{
    fmt__sb_put(b, s, strlen(s));
}

void fmt__sb_printf(fmt__sb *b, const char *fmt, ...)
{
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
    } else if ((size_t)n < sizeof small) {
        fmt__sb_put(b, small, (size_t)n);
    } else {
        char *big = lupe_malloc((size_t)n + 1);
        if (!big) {
            b->failed = true;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            fmt__sb_put(b, big, (size_t)n);
            lupe_free(big);
        }
    }
    va_end(ap2);
}

void fmt__sb_double(fmt__sb *b, double v)
{
    char t[64];
    fmt__fmt_double(t, sizeof t, v);
    fmt__sb_puts(b, t);
}

lupe_status fmt__sb_status(const fmt__sb *b)
{
    if (b->failed) return lupe_err(LUPE_ENOMEM, "out of memory building a label file");
    return LUPE_OK;
}
