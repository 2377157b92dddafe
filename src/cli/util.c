/*
 * Helpers the subcommands share: error printing, --help handling, opening
 * the workspace, byte formatting and the terminal progress bar.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lupe %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'lupe %s --help')\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_fail(const char *cmd)
{
    fprintf(stderr, "lupe %s: %s\n", cmd, lupe_errmsg()[0] ? lupe_errmsg() : "failed");
    return EXIT_FAIL;
}

int cli_getopt_help(const char *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return cli_print_help(cmd);
    }
    return -1;
}

int cli_dispatch(cli_ctx *ctx, const char *cmd, const cli_verb *verbs, int argc, char **argv)
{
    if (argc < 2) return cli_usage_error(cmd, "which action? (see 'lupe %s --help')", cmd);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return cli_print_help(cmd);
    for (const cli_verb *v = verbs; v->name; v++) {
        if (strcmp(v->name, argv[1]) != 0) continue;
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return cli_print_help(cmd);
        lupe_ws *ws = NULL;
        if (cli_open_ws(ctx, &ws)) return cli_fail(cmd);
        optind = 0; /* re-initialise GNU getopt for the verb's options */
        int rc = v->fn(ctx, ws, argc - 1, argv + 1);
        lupe_ws_close(ws);
        return rc;
    }
    return cli_usage_error(cmd, "unknown action '%s'", argv[1]);
}

lupe_status cli_open_ws(cli_ctx *ctx, lupe_ws **out)
{
    if (ctx->workspace) return lupe_ws_open(ctx->workspace, 0, out);
    return lupe_ws_open(".", LUPE_WS_FIND, out);
}

const char *cli_bytes(double n, char *buf, size_t bufsz)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (n >= 1000 && u < 4) {
        n /= 1000;
        u++;
    }
    snprintf(buf, bufsz, u ? "%.1f %s" : "%.0f %s", n, units[u]);
    return buf;
}

void cli_progress_start(cli_progress *p, size_t total)
{
    p->enabled = isatty(STDERR_FILENO) && lupe_log_get_level() >= LUPE_LOG_INFO;
    p->total = total;
    p->start = lupe_time_mono();
    p->last_draw = 0;
}

void cli_progress_update(cli_progress *p, size_t done, const char *fmt, ...)
{
    if (!p->enabled) return;
    double now = lupe_time_mono();
    if (done < p->total && now - p->last_draw < 0.1) return; /* at most 10 redraws a second */
    p->last_draw = now;
    int width = 30;
    int fill = p->total ? (int)((double)done / (double)p->total * width) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    char extra[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(extra, sizeof extra, fmt, ap);
    va_end(ap);
    double el = now - p->start;
    char speed[64] = "";
    /* A rate from the first moments is noise; wait for a fifth of a second. */
    if (el > 0.2 && done) {
        double rate = (double)done / el;
        snprintf(speed, sizeof speed, "  %.0f/s  eta %.0fs", rate, (double)(p->total - done) / rate);
    }
    fprintf(stderr, "\r[%s] %zu/%zu  %s%s\033[K", bar, done, p->total, extra, speed);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (!p->enabled) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

int cli_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= lo && v <= hi)) return -1;
    *out = (float)v;
    return 0;
}
