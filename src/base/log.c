/*
 * Logging with levels. On a terminal lines are short human text; for
 * services (or LUPE_LOG_FORMAT=json) each record is one JSON object per line
 * with time, level, component and message, so log shippers can read it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lupe/base.h"

static lupe_log_level cur_level = LUPE_LOG_INFO;
static lupe_log_format cur_format = LUPE_LOG_TEXT;
static const char *cur_component = "lupe";
static FILE *cur_stream; /* NULL = stderr */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

int lupe_log_parse_level(const char *s, lupe_log_level *out)
{
    for (int i = 0; i <= LUPE_LOG_TRACE; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (lupe_log_level)i;
            return 0;
        }
    }
    return -1;
}

static FILE *stream(void)
{
    return cur_stream ? cur_stream : stderr;
}

void lupe_log_init(lupe_log_level level, lupe_log_format fmt, const char *component)
{
    const char *env = getenv("LUPE_LOG");
    lupe_log_level l;
    if (env && lupe_log_parse_level(env, &l) == 0) level = l;
    env = getenv("LUPE_LOG_FORMAT");
    if (env && strcmp(env, "json") == 0) fmt = LUPE_LOG_JSON;
    if (env && strcmp(env, "text") == 0) fmt = LUPE_LOG_TEXT;
    if (fmt == LUPE_LOG_AUTO) fmt = isatty(fileno(stream())) ? LUPE_LOG_TEXT : LUPE_LOG_JSON;
    cur_level = level;
    cur_format = fmt;
    if (component) cur_component = component;
}

void lupe_log_set_level(lupe_log_level level)
{
    cur_level = level;
}

lupe_log_level lupe_log_get_level(void)
{
    return cur_level;
}

void lupe_log_set_stream(FILE *f)
{
    cur_stream = f;
}

/* Writes s as a JSON string body (without quotes), escaping as RFC 8259 asks. */
static void json_escape(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
}

void lupe_log(lupe_log_level level, const char *fmt, ...)
{
    if (level > cur_level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    FILE *f = stream();
    pthread_mutex_lock(&lock);
    if (cur_format == LUPE_LOG_JSON) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char iso[32];
        lupe_time_iso(ts.tv_sec, iso, sizeof iso);
        iso[19] = 0; /* drop the Z; milliseconds follow */
        fprintf(f, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"", iso, ts.tv_nsec / 1000000,
                level_names[level]);
        json_escape(f, cur_component);
        fputs("\",\"msg\":\"", f);
        json_escape(f, msg);
        fputs("\"}\n", f);
    } else if (level == LUPE_LOG_INFO) {
        fprintf(f, "%s\n", msg);
    } else {
        fprintf(f, "%s: %s: %s\n", cur_component, level_names[level], msg);
    }
    fflush(f);
    pthread_mutex_unlock(&lock);
}
