/*
 * EXIF capture time of a JPEG. We find the APP1 "Exif" segment ourselves
 * with every length checked, hand only that segment to libexif (allocating
 * through the funnel), and parse the date text strictly as UTC.
 */
#include <string.h>

#include <libexif/exif-data.h>

#include "img/internal.h"

/* libexif's allocator hooks carry no user pointer, so a failed allocation is
 * remembered per thread and turned into LUPE_ENOMEM afterwards. */
static _Thread_local int exif_oom;

static void *exif_alloc(ExifLong n)
{
    /* libexif expects zeroed memory, as from its default calloc. */
    void *p = lupe_calloc(n ? n : 1, 1);
    if (!p) exif_oom = 1;
    return p;
}

static void *exif_realloc(void *p, ExifLong n)
{
    void *q = lupe_realloc(p, n);
    if (!q && n) exif_oom = 1;
    return q;
}

static void exif_free(void *p)
{
    lupe_free(p);
}

/* Returns the APP1 segment payload that starts with "Exif\0\0", walking the
 * JPEG markers up to the first scan. */
static const uint8_t *find_exif(const uint8_t *buf, size_t len, size_t *seg_len)
{
    if (len < 4 || buf[0] != 0xFF || buf[1] != 0xD8) return NULL;
    size_t pos = 2;
    while (pos + 4 <= len) {
        if (buf[pos] != 0xFF) return NULL;
        uint8_t m = buf[pos + 1];
        if (m == 0xFF) { /* fill byte before a marker */
            pos++;
            continue;
        }
        if (m == 0xD9 || m == 0xDA) return NULL; /* EOI, SOS: no more headers */
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* markers without a length */
            pos += 2;
            continue;
        }
        size_t l = (size_t)buf[pos + 2] << 8 | buf[pos + 3];
        if (l < 2 || l > len - pos - 2) return NULL;
        const uint8_t *payload = buf + pos + 4;
        if (m == 0xE1 && l - 2 >= 6 && memcmp(payload, "Exif\0\0", 6) == 0) {
            *seg_len = l - 2;
            return payload;
        }
        pos += 2 + l;
    }
    return NULL;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). A pure function, unlike timegm, so no time zone or
 * locale state can leak in. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const uint8_t *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "YYYY:MM:DD HH:MM:SS" exactly, optionally NUL-terminated, every field in
 * range. "0000:00:00 00:00:00", which cameras write for "unset", fails. */
static int parse_exif_time(const uint8_t *s, size_t n, int64_t *out)
{
    if (n < 19 || (n > 19 && s[19] != 0)) return -1;
    if (s[4] != ':' || s[7] != ':' || s[10] != ' ' || s[13] != ':' || s[16] != ':') return -1;
    int y, mo, d, h, mi, sec;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) || digits(s + 11, 2, &h) ||
        digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
        return -1;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap)) return -1;
    if (h > 23 || mi > 59 || sec > 59) return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
}

static int entry_time(ExifContent *ifd, ExifTag tag, int64_t *out)
{
    ExifEntry *e = ifd ? exif_content_get_entry(ifd, tag) : NULL;
    if (!e || e->format != EXIF_FORMAT_ASCII || !e->data) return -1;
    return parse_exif_time(e->data, e->size, out);
}

lupe_status lupe_img_exif_time(const uint8_t *buf, size_t len, int64_t *out_unix)
{
    ExifMem *mem = NULL;
    ExifData *ed = NULL;
    lupe_status st = LUPE_OK;
    size_t seg_len = 0;

    if (!out_unix || (!buf && len)) return lupe_err(LUPE_EARG, "exif: bad arguments");
    const uint8_t *seg = find_exif(buf, len, &seg_len);
    if (!seg) return lupe_err(LUPE_ENOTFOUND, "exif: no EXIF segment");

    exif_oom = 0;
    if (!(mem = exif_mem_new(exif_alloc, exif_realloc, exif_free)) || !(ed = exif_data_new_mem(mem))) {
        st = lupe_err(LUPE_ENOMEM, "exif: out of memory");
        goto out;
    }
    /* "Following the specification" makes libexif add the tags it deems
     * mandatory with made-up defaults (XResolution 72, ColorSpace, ...);
     * we want only what the file says, and less work on hostile input. */
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, seg, (unsigned int)seg_len);
    if (exif_oom) {
        st = lupe_err(LUPE_ENOMEM, "exif: out of memory");
        goto out;
    }
    if (entry_time(ed->ifd[EXIF_IFD_EXIF], EXIF_TAG_DATE_TIME_ORIGINAL, out_unix) &&
        entry_time(ed->ifd[EXIF_IFD_0], EXIF_TAG_DATE_TIME, out_unix))
        st = lupe_err(LUPE_ENOTFOUND, "exif: no valid DateTimeOriginal or DateTime");
out:
    if (ed) exif_data_unref(ed);
    if (mem) exif_mem_unref(mem);
    return st;
}
