/*
 * Workspace commands: `lupe init`, `lupe status` and `lupe fsck`.
 */
#include <jansson.h>
#include <string.h>

#include "cli/cli.h"

int cmd_init(cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_getopt_help("init", argc, argv);
    if (rc >= 0) return rc;
    if (argc > 2) return cli_usage_error("init", "expected at most one folder, got %d arguments", argc - 1);
    if (argc == 2 && argv[1][0] == '-') return cli_usage_error("init", "unknown option '%s'", argv[1]);
    const char *dir = argc == 2 ? argv[1] : ctx->workspace ? ctx->workspace : ".";
    lupe_ws *ws = NULL;
    if (lupe_ws_init(dir, &ws)) return cli_fail("init");
    if (!ctx->quiet)
        printf("created workspace %s/%s (schema version %d)\n", lupe_ws_root(ws), LUPE_WS_DIR,
               lupe_ws_schema_version(ws));
    lupe_ws_close(ws);
    return EXIT_OK;
}

int cmd_status(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
    int rc = cli_getopt_help("status", argc, argv);
    if (rc >= 0) return rc;
    int json = 0, c;
    while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else return cli_usage_error("status", "bad option");
    }
    if (optind < argc) return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
    lupe_ws *ws = NULL;
    if (cli_open_ws(ctx, &ws)) return cli_fail("status");
    lupe_ws_stats s;
    if (lupe_ws_stats_get(ws, &s)) {
        lupe_ws_close(ws);
        return cli_fail("status");
    }
    if (json) {
        json_t *j = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:{s:I, s:I}}", "workspace", lupe_ws_root(ws),
                              "schema_version", lupe_ws_schema_version(ws), "images", (json_int_t)s.images, "bytes",
                              (json_int_t)s.bytes, "paths", (json_int_t)s.paths, "tags", (json_int_t)s.tags,
                              "formats", "jpeg", (json_int_t)s.by_format[LUPE_IMG_JPEG], "png",
                              (json_int_t)s.by_format[LUPE_IMG_PNG]);
        char *out = j ? lupe_json_dump(j, 1) : NULL;
        if (out) puts(out);
        lupe_free(out);
        json_decref(j);
    } else {
        char b[32];
        printf("workspace   %s\n", lupe_ws_root(ws));
        printf("schema      version %d\n", lupe_ws_schema_version(ws));
        printf("images      %lld (%s; %lld jpeg, %lld png)\n", (long long)s.images, cli_bytes((double)s.bytes, b, sizeof b),
               (long long)s.by_format[LUPE_IMG_JPEG], (long long)s.by_format[LUPE_IMG_PNG]);
        printf("paths seen  %lld\n", (long long)s.paths);
        printf("tags        %lld\n", (long long)s.tags);
    }
    lupe_ws_close(ws);
    return EXIT_OK;
}

static void on_problem(void *ud, int is_error, const char *msg)
{
    (void)ud;
    fprintf(is_error ? stderr : stdout, "%s: %s\n", is_error ? "error" : "warning", msg);
}

int cmd_fsck(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"quick", no_argument, NULL, 'q'}, {"repair", no_argument, NULL, 'r'}, {0}};
    int rc = cli_getopt_help("fsck", argc, argv);
    if (rc >= 0) return rc;
    lupe_fsck_opts o = {.on_problem = on_problem};
    int c;
    while ((c = getopt_long(argc, argv, "qr", opts, NULL)) != -1) {
        if (c == 'q') o.quick = 1;
        else if (c == 'r') o.repair = 1;
        else return cli_usage_error("fsck", "bad option");
    }
    if (optind < argc) return cli_usage_error("fsck", "unexpected argument '%s'", argv[optind]);
    lupe_ws *ws = NULL;
    if (cli_open_ws(ctx, &ws)) return cli_fail("fsck");
    lupe_fsck_report r;
    double t0 = lupe_time_mono();
    lupe_status st = lupe_fsck(ws, &o, &r);
    lupe_ws_close(ws);
    if (st) return cli_fail("fsck");
    char b[32];
    printf("fsck: %lld images, %lld objects (%s hashed) in %.1fs: %lld errors, %lld warnings\n",
           (long long)r.images, (long long)r.objects, o.quick ? "none" : cli_bytes((double)r.bytes_hashed, b, sizeof b),
           lupe_time_mono() - t0, (long long)r.errors, (long long)r.warnings);
    if (r.repaired) printf("fsck: repaired %lld leftovers\n", (long long)r.repaired);
    return r.errors ? EXIT_FAIL : EXIT_OK;
}
