/*
 * Image commands: `lupe ingest` stores files, `lupe images` lists them.
 */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

#define MAX_TAGS 64

typedef struct ingest_ui {
    cli_progress bar;
    int quiet;
    lupe_ingest_summary live;
} ingest_ui;

static void on_file(void *ud, const lupe_ingest_event *ev)
{
    ingest_ui *ui = ud;
    if (!ui->bar.total) cli_progress_start(&ui->bar, ev->total);
    switch (ev->outcome) {
    case LUPE_INGEST_STORED: ui->live.stored++; break;
    case LUPE_INGEST_DUPLICATE:
        ui->live.duplicate++;
        if (!ui->quiet) lupe_log_debug("duplicate: %s (already stored as %.12s)", ev->path, ev->id);
        break;
    case LUPE_INGEST_REJECTED:
        ui->live.rejected++;
        cli_progress_end(&ui->bar);
        fprintf(stderr, "rejected: %s: %s\n", ev->path, ev->reason);
        break;
    }
    cli_progress_update(&ui->bar, ev->index, "stored %zu  duplicate %zu  rejected %zu", ui->live.stored,
                        ui->live.duplicate, ui->live.rejected);
}

int cmd_ingest(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"source", required_argument, NULL, 's'},
        {"tag", required_argument, NULL, 't'},
        {"include", required_argument, NULL, 'i'},
        {0},
    };
    int rc = cli_getopt_help("ingest", argc, argv);
    if (rc >= 0) return rc;
    const char *tags[MAX_TAGS];
    int ntags = 0, c;
    const char *source = NULL, *include = NULL;
    while ((c = getopt_long(argc, argv, "s:t:i:", opts, NULL)) != -1) {
        switch (c) {
        case 's': source = optarg; break;
        case 'i': include = optarg; break;
        case 't':
            if (ntags == MAX_TAGS) return cli_usage_error("ingest", "at most %d tags", MAX_TAGS);
            if (lupe_tag_check(optarg)) return cli_usage_error("ingest", "%s", lupe_errmsg());
            tags[ntags++] = optarg;
            break;
        default: return cli_usage_error("ingest", "bad option");
        }
    }
    if (optind >= argc) return cli_usage_error("ingest", "no files or folders given");

    lupe_ws *ws = NULL;
    if (cli_open_ws(ctx, &ws)) return cli_fail("ingest");
    ingest_ui ui = {.quiet = ctx->quiet};
    lupe_ingest_opts o = lupe_ingest_default_opts(ws);
    if (source) o.source = source;
    o.include = include;
    o.tags = tags;
    o.ntags = ntags;
    o.on_file = on_file;
    o.ud = &ui;
    lupe_ingest_summary sum;
    double t0 = lupe_time_mono();
    lupe_status st = lupe_ingest_paths(ws, (const char *const *)argv + optind, argc - optind, &o, &sum);
    cli_progress_end(&ui.bar);
    lupe_ws_close(ws);
    char b[32];
    double el = lupe_time_mono() - t0;
    printf("ingest: %zu files in %.1fs: %zu stored (%s), %zu duplicate, %zu rejected\n", sum.files, el, sum.stored,
           cli_bytes((double)sum.bytes_stored, b, sizeof b), sum.duplicate, sum.rejected);
    if (st) return cli_fail("ingest");
    return sum.rejected ? EXIT_PARTIAL : EXIT_OK;
}

typedef struct list_ctx {
    int json;
    json_t *arr;
    long n;
} list_ctx;

static int print_image(void *ud, const lupe_image *im)
{
    list_ctx *lc = ud;
    char cap[32], ing[32];
    lupe_time_iso(im->captured_at, cap, sizeof cap);
    lupe_time_iso(im->ingested_at, ing, sizeof ing);
    lc->n++;
    if (lc->json) {
        json_t *tags = json_object();
        /* tags arrive as "k=v,k=v"; repeated keys become arrays. */
        char *copy = lupe_strdup(im->tags);
        for (char *save = NULL, *kv = copy ? strtok_r(copy, ",", &save) : NULL; kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq) continue;
            *eq = 0;
            json_t *old = json_object_get(tags, kv);
            if (!old) {
                json_object_set_new(tags, kv, json_string(eq + 1));
            } else if (json_is_array(old)) {
                json_array_append_new(old, json_string(eq + 1));
            } else {
                json_object_set_new(tags, kv, json_pack("[Os]", old, eq + 1));
            }
        }
        lupe_free(copy);
        json_t *o = json_pack("{s:s, s:I, s:i, s:i, s:i, s:s, s:s, s:s, s:s?, s:s, s:s, s:s, s:o}", "id", im->id,
                              "size", (json_int_t)im->size, "width", im->width, "height", im->height, "channels",
                              im->channels, "format", im->format, "captured_at", cap, "captured_from",
                              im->captured_from, "source", im->source, "arrival", im->arrival, "orig_path",
                              im->orig_path, "ingested_at", ing, "tags", tags);
        if (o) json_array_append_new(lc->arr, o);
    } else {
        if (lc->n == 1) printf("%-12s  %-9s  %-4s  %8s  %-20s  %-12s  %s\n", "ID", "SIZE", "FMT", "BYTES", "CAPTURED",
                               "SOURCE", "PATH");
        char dims[24];
        snprintf(dims, sizeof dims, "%dx%d", im->width, im->height);
        printf("%.12s  %-9s  %-4s  %8lld  %-20s  %-12s  %s%s%s\n", im->id, dims, im->format, (long long)im->size, cap,
               im->source ? im->source : "-", im->orig_path, im->tags[0] ? "  " : "", im->tags);
    }
    return 0;
}

int cmd_images(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"tag", required_argument, NULL, 't'},  {"source", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
        {0},
    };
    int rc = cli_getopt_help("images", argc, argv);
    if (rc >= 0) return rc;
    const char *tags[MAX_TAGS];
    lupe_image_filter f = {.tags = tags};
    list_ctx lc = {0};
    int c;
    while ((c = getopt_long(argc, argv, "t:s:n:j", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (f.ntags == MAX_TAGS) return cli_usage_error("images", "at most %d tags", MAX_TAGS);
            if (lupe_tag_check(optarg)) return cli_usage_error("images", "%s", lupe_errmsg());
            tags[f.ntags++] = optarg;
            break;
        case 's': f.source = optarg; break;
        case 'n': {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (*end || v <= 0) return cli_usage_error("images", "--limit expects a positive number, got '%s'", optarg);
            f.limit = v;
            break;
        }
        case 'j': lc.json = 1; break;
        default: return cli_usage_error("images", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("images", "unexpected argument '%s'", argv[optind]);
    lupe_ws *ws = NULL;
    if (cli_open_ws(ctx, &ws)) return cli_fail("images");
    if (lc.json) lc.arr = json_array();
    lupe_status st = lupe_images_each(ws, &f, print_image, &lc);
    lupe_ws_close(ws);
    if (st) {
        json_decref(lc.arr);
        return cli_fail("images");
    }
    if (lc.json) {
        char *out = lupe_json_dump(lc.arr, 1);
        if (out) puts(out);
        lupe_free(out);
        json_decref(lc.arr);
    } else if (!ctx->quiet) {
        fflush(stdout);
        fprintf(stderr, "%ld image%s\n", lc.n, lc.n == 1 ? "" : "s");
    }
    return EXIT_OK;
}
