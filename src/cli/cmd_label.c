/*
 * Labeling commands: `lupe labelset ...` manages label sets and classes,
 * `lupe label ...` adds label revisions, reviews them, shows history, lists
 * the queue and hands out jobs. Each verb is a row in a small table.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lupe/label.h"

#define MAX_BOXES 1000

/* ---- lupe labelset ------------------------------------------------------- */
static int ls_create(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    if (argc < 3) return cli_usage_error("labelset", "usage: lupe labelset create NAME CLASS...");
    if (lupe_labelset_create(ws, argv[1], (const char *const *)argv + 2, argc - 2, lupe_label_default_author()))
        return cli_fail("labelset");
    if (!ctx->quiet) printf("created label set '%s' with %d classes\n", argv[1], argc - 2);
    return EXIT_OK;
}

static int print_set(void *ud, const lupe_labelset *s)
{
    (void)ud;
    printf("%-20s", s->name);
    for (int i = 0; i < s->nclasses; i++) printf("%s%d:%s", i ? ", " : "  ", i, s->classes[i]);
    printf("\n");
    return 0;
}

static int ls_list(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx, (void)argv;
    if (argc != 1) return cli_usage_error("labelset", "usage: lupe labelset list");
    return lupe_labelset_each(ws, print_set, NULL) ? cli_fail("labelset") : EXIT_OK;
}

static int print_op(void *ud, const lupe_labelset_op *op)
{
    (void)ud;
    char t[32];
    lupe_time_iso(op->at, t, sizeof t);
    printf("  %s  %-12s %-14s %s\n", t, op->author, op->op, op->detail);
    return 0;
}

static int ls_show(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    if (argc != 2) return cli_usage_error("labelset", "usage: lupe labelset show NAME");
    lupe_labelset s;
    if (lupe_labelset_get(ws, argv[1], &s)) return cli_fail("labelset");
    print_set(NULL, &s);
    lupe_labelset_cleanup(&s);
    printf("history:\n");
    return lupe_labelset_log_each(ws, argv[1], print_op, NULL) ? cli_fail("labelset") : EXIT_OK;
}

static int ls_add_class(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    if (argc != 3) return cli_usage_error("labelset", "usage: lupe labelset add-class NAME CLASS");
    return lupe_labelset_add_class(ws, argv[1], argv[2], lupe_label_default_author()) ? cli_fail("labelset") : EXIT_OK;
}

static int ls_rename_class(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    if (argc != 4) return cli_usage_error("labelset", "usage: lupe labelset rename-class NAME OLD NEW");
    return lupe_labelset_rename_class(ws, argv[1], argv[2], argv[3], lupe_label_default_author()) ? cli_fail("labelset")
                                                                                                   : EXIT_OK;
}

int cmd_labelset(cli_ctx *ctx, int argc, char **argv)
{
    static const cli_verb verbs[] = {{"create", ls_create},         {"list", ls_list},
                                 {"show", ls_show},             {"add-class", ls_add_class},
                                 {"rename-class", ls_rename_class}, {0}};
    return cli_dispatch(ctx, "labelset", verbs, argc, argv);
}

/* ---- lupe label ---------------------------------------------------------- */
/* Options shared by the label verbs. */
typedef struct label_args {
    const char *set, *author, *comment, *verdict, *name, *assignee, *reviewer;
    lupe_box boxes[MAX_BOXES];
    int nboxes, empty, submit, json, approve, reject, adjust, count;
    int64_t limit;
    lupe_label_source source;
    const char *box_text[MAX_BOXES];
} label_args;

static const struct option label_opts[] = {
    {"labelset", required_argument, NULL, 'L'}, {"box", required_argument, NULL, 'b'},
    {"empty", no_argument, NULL, 'e'},          {"submit", no_argument, NULL, 'S'},
    {"draft", no_argument, NULL, 'D'},          {"comment", required_argument, NULL, 'c'},
    {"author", required_argument, NULL, 'a'},   {"source", required_argument, NULL, 's'},
    {"json", no_argument, NULL, 'j'},           {"limit", required_argument, NULL, 'n'},
    {"approve", no_argument, NULL, 'A'},        {"reject", no_argument, NULL, 'R'},
    {"adjust", no_argument, NULL, 'J'},         {"verdict", required_argument, NULL, 'v'},
    {"reviewer", required_argument, NULL, 'r'}, {"count", required_argument, NULL, 'N'},
    {"name", required_argument, NULL, 'm'},     {"assignee", required_argument, NULL, 'u'},
    {0},
};

static int parse_label_args(label_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->set = LUPE_DEFAULT_LABELSET;
    a->author = lupe_label_default_author();
    a->count = 50;
    int c;
    while ((c = getopt_long(argc, argv, "L:b:c:a:s:jn:v:r:N:m:u:", label_opts, NULL)) != -1) {
        switch (c) {
        case 'L': a->set = optarg; break;
        case 'b':
            if (a->nboxes == MAX_BOXES) return cli_usage_error("label", "at most %d --box options", MAX_BOXES);
            a->box_text[a->nboxes++] = optarg;
            break;
        case 'e': a->empty = 1; break;
        case 'S': a->submit = 1; break;
        case 'D': a->submit = 0; break;
        case 'c': a->comment = optarg; break;
        case 'a': a->author = optarg; break;
        case 's': {
            int s = lupe_label_source_parse(optarg);
            if (s < 0) return cli_usage_error("label", "--source must be human, model or import, got '%s'", optarg);
            a->source = (lupe_label_source)s;
            break;
        }
        case 'j': a->json = 1; break;
        case 'n': {
            char *end;
            a->limit = strtoll(optarg, &end, 10);
            if (*end || a->limit < 1) return cli_usage_error("label", "--limit must be a positive number, got '%s'", optarg);
            break;
        }
        case 'A': a->approve = 1; break;
        case 'R': a->reject = 1; break;
        case 'J': a->adjust = 1; break;
        case 'v': a->verdict = optarg; break;
        case 'r': a->reviewer = optarg; break;
        case 'N':
            a->count = atoi(optarg);
            if (a->count < 1) return cli_usage_error("label", "--count must be a positive number, got '%s'", optarg);
            break;
        case 'm': a->name = optarg; break;
        case 'u': a->assignee = optarg; break;
        default: return cli_usage_error("label", "bad option");
        }
    }
    return -1;
}

/* Turns "CLASS,X,Y,W,H" strings into boxes; CLASS is a name or an index. */
static int resolve_boxes(lupe_ws *ws, label_args *a)
{
    if (!a->nboxes) return -1;
    lupe_labelset s;
    if (lupe_labelset_get(ws, a->set, &s)) return cli_fail("label");
    int rc = -1;
    for (int i = 0; i < a->nboxes && rc < 0; i++) {
        char cls[256];
        double v[4];
        int used = 0;
        const char *t = a->box_text[i];
        const char *comma = strchr(t, ',');
        if (!comma || (size_t)(comma - t) >= sizeof cls ||
            sscanf(comma + 1, "%lf,%lf,%lf,%lf%n", &v[0], &v[1], &v[2], &v[3], &used) != 4 || comma[1 + used]) {
            rc = cli_usage_error("label", "--box '%s': expected CLASS,X,Y,W,H (pixels, top-left corner)", t);
            break;
        }
        memcpy(cls, t, (size_t)(comma - t));
        cls[comma - t] = 0;
        int k = lupe_labelset_class(&s, cls);
        if (k < 0) {
            rc = cli_usage_error("label", "--box '%s': label set '%s' has no class '%s'", t, a->set, cls);
            break;
        }
        a->boxes[i] = (lupe_box){k, v[0], v[1], v[2], v[3]};
    }
    lupe_labelset_cleanup(&s);
    return rc;
}

static void print_rev(const lupe_label_rev *r, const lupe_labelset *s)
{
    char t[32];
    lupe_time_iso(r->created_at, t, sizeof t);
    printf("rev %-6lld %s  %-9s %-6s %-10s %d box%s", (long long)r->id, t, lupe_label_status_name(r->status),
           lupe_label_source_name(r->source), r->author, r->nboxes, r->nboxes == 1 ? "" : "es");
    if (r->verdict) printf("  verdict %s", r->verdict);
    if (r->comment) printf("  \"%s\"", r->comment);
    printf("\n");
    for (int i = 0; i < r->nboxes; i++) {
        const lupe_box *b = &r->boxes[i];
        printf("    %s %g,%g %gx%g\n", s && b->cls < s->nclasses ? s->classes[b->cls] : "?", b->x, b->y, b->w, b->h);
    }
}

static int label_set_cmd(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    label_args a;
    int rc = parse_label_args(&a, argc, argv);
    if (rc >= 0) return rc;
    if (optind != argc - 1) return cli_usage_error("label", "usage: lupe label set IMAGE --box C,X,Y,W,H... | --empty");
    if (!a.nboxes && !a.empty) return cli_usage_error("label", "give boxes with --box, or --empty for a negative");
    if (a.nboxes && a.empty) return cli_usage_error("label", "--empty and --box exclude each other");
    if ((rc = resolve_boxes(ws, &a)) >= 0) return rc;
    lupe_label_new n = {.boxes = a.boxes, .nboxes = a.nboxes, .status = a.submit ? LUPE_LABEL_SUBMITTED : LUPE_LABEL_DRAFT,
                        .source = a.source, .author = a.author, .comment = a.comment};
    int64_t rev;
    if (lupe_label_add(ws, a.set, argv[optind], &n, &rev)) return cli_fail("label");
    if (!ctx->quiet) printf("label revision %lld (%s, %d boxes)\n", (long long)rev, lupe_label_status_name(n.status), n.nboxes);
    return EXIT_OK;
}

static int label_review_cmd(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    label_args a;
    int rc = parse_label_args(&a, argc, argv);
    if (rc >= 0) return rc;
    if (optind != argc - 1) return cli_usage_error("label", "usage: lupe label review IMAGE --approve|--reject|--adjust");
    if (a.approve + a.reject + a.adjust != 1)
        return cli_usage_error("label", "choose exactly one of --approve, --reject and --adjust");
    if (a.adjust && !a.nboxes && !a.empty) return cli_usage_error("label", "--adjust needs the corrected --box list (or --empty)");
    if ((rc = resolve_boxes(ws, &a)) >= 0) return rc;
    lupe_review rv = {.action = a.approve ? LUPE_REVIEW_APPROVE : a.reject ? LUPE_REVIEW_REJECT : LUPE_REVIEW_ADJUST,
                      .reviewer = a.reviewer ? a.reviewer : a.author, .verdict = a.verdict, .comment = a.comment,
                      .boxes = a.boxes, .nboxes = a.nboxes};
    int64_t rev;
    if (lupe_label_review(ws, a.set, argv[optind], &rv, &rev)) return cli_fail("label");
    if (!ctx->quiet) printf("label revision %lld (%s)\n", (long long)rev, a.reject ? "rejected" : "approved");
    return EXIT_OK;
}

typedef struct hist_ctx {
    lupe_labelset *set;
    int n;
} hist_ctx;

static int print_hist(void *ud, const lupe_label_rev *r)
{
    hist_ctx *h = ud;
    h->n++;
    print_rev(r, h->set);
    return 0;
}

static int label_show_cmd(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv, int history)
{
    (void)ctx;
    label_args a;
    int rc = parse_label_args(&a, argc, argv);
    if (rc >= 0) return rc;
    if (optind != argc - 1) return cli_usage_error("label", "usage: lupe label %s IMAGE", history ? "history" : "show");
    lupe_labelset s;
    if (lupe_labelset_get(ws, a.set, &s)) return cli_fail("label");
    hist_ctx h = {&s, 0};
    lupe_status st;
    if (history) {
        st = lupe_label_history(ws, a.set, argv[optind], print_hist, &h);
        if (!st && !h.n) printf("no labels\n");
    } else {
        lupe_label_rev r;
        st = lupe_label_latest(ws, a.set, argv[optind], &r);
        if (!st) {
            print_rev(&r, &s);
            lupe_label_rev_cleanup(&r);
        }
    }
    lupe_labelset_cleanup(&s);
    return st ? cli_fail("label") : EXIT_OK;
}

static int label_show(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    return label_show_cmd(ctx, ws, argc, argv, 0);
}

static int label_history(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    return label_show_cmd(ctx, ws, argc, argv, 1);
}

static int print_queue(void *ud, const lupe_queue_item *it)
{
    (*(int *)ud)++;
    char job[32] = "-";
    if (it->job_id) snprintf(job, sizeof job, "job %lld", (long long)it->job_id);
    printf("%.12s  %3d  %-22s %-8s %s\n", it->image_id, it->priority, it->reason, job, it->orig_path);
    return 0;
}

static int label_queue(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    label_args a;
    int rc = parse_label_args(&a, argc, argv);
    if (rc >= 0) return rc;
    if (optind != argc) return cli_usage_error("label", "unexpected argument '%s'", argv[optind]);
    int n = 0;
    if (lupe_label_queue(ws, a.set, a.limit, print_queue, &n)) return cli_fail("label");
    fflush(stdout);
    if (!ctx->quiet) fprintf(stderr, "%d image%s need work in label set '%s'\n", n, n == 1 ? "" : "s", a.set);
    return EXIT_OK;
}

static int print_job(void *ud, const lupe_label_job *j)
{
    (void)ud;
    char t[32];
    lupe_time_iso(j->created_at, t, sizeof t);
    printf("job %-4lld %s  set %-12s %-16s labeler %-10s reviewer %-10s %d images: %d approved, %d submitted, %d rejected\n",
           (long long)j->id, t, j->set, j->name ? j->name : "-", j->assignee ? j->assignee : "-",
           j->reviewer ? j->reviewer : "-", j->items, j->approved, j->submitted, j->rejected);
    return 0;
}

static int print_item(void *ud, const char *image_id, const char *status)
{
    (void)ud;
    printf("  %.12s  %s\n", image_id, status);
    return 0;
}

static int label_job(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    if (argc < 2) return cli_usage_error("label", "usage: lupe label job create|list|show ...");
    const char *what = argv[1];
    label_args a;
    optind = 0;
    int rc = parse_label_args(&a, argc - 1, argv + 1);
    if (rc >= 0) return rc;
    int rest = argc - 1 - optind;
    if (!strcmp(what, "create")) {
        if (rest) return cli_usage_error("label", "usage: lupe label job create [--count N] [--assignee U] [--reviewer U]");
        int64_t id;
        int n;
        if (lupe_label_job_create(ws, a.set, a.count, a.name, a.assignee, a.reviewer, a.author, &id, &n))
            return cli_fail("label");
        if (!ctx->quiet) printf("job %lld: %d images for %s\n", (long long)id, n, a.assignee ? a.assignee : "anyone");
        return EXIT_OK;
    }
    if (!strcmp(what, "list")) return lupe_label_job_each(ws, print_job, NULL) ? cli_fail("label") : EXIT_OK;
    if (!strcmp(what, "show")) {
        if (rest != 1) return cli_usage_error("label", "usage: lupe label job show ID");
        int64_t id = atoll(argv[1 + optind]);
        lupe_label_job j;
        if (lupe_label_job_get(ws, id, &j)) return cli_fail("label");
        print_job(NULL, &j);
        lupe_label_job_cleanup(&j);
        return lupe_label_job_items(ws, id, print_item, NULL) ? cli_fail("label") : EXIT_OK;
    }
    return cli_usage_error("label", "unknown job action '%s'", what);
}

int cmd_label(cli_ctx *ctx, int argc, char **argv)
{
    static const cli_verb verbs[] = {{"set", label_set_cmd},   {"review", label_review_cmd}, {"show", label_show},
                                 {"history", label_history}, {"queue", label_queue},       {"job", label_job},
                                 {0}};
    return cli_dispatch(ctx, "label", verbs, argc, argv);
}
