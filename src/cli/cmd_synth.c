/*
 * `lupe synth`: writes synthetic tag images with their exact defect boxes as
 * a YOLO folder (through the label formats' writer, so `lupe import` reads
 * it back), optionally a montage of the first images and an import into
 * the workspace.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lupe/formats.h"
#include "lupe/label.h"
#include "lupe/synth.h"

#define MONTAGE_COLS 4
#define MONTAGE_TILES 16
#define MAX_COUNT 10000000L
#define MAX_REAL 100000

typedef struct synth_args {
    synth_cfg cfg;
    uint64_t seed, first;
    long count;
    int quality, ingest;
    const char *out, *montage, *real, *labelset;
} synth_args;

/* ---- small helpers ----------------------------------------------------------- */

/* "scratch,dent" -> bit mask; -1 on an unknown name. */
static int parse_classes(const char *s)
{
    int mask = 0;
    char *copy = lupe_strdup(s);
    if (!copy) return -1;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = synth_class_from_name(t);
        if (k < 0) {
            mask = -1;
            break;
        }
        mask |= 1 << k;
    }
    lupe_free(copy);
    return mask;
}

static lupe_status write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return lupe_err(LUPE_EIO, "%s: create: %s", path, strerror(errno));
    lupe_status st = lupe_write_all(fd, data, len, path);
    if (close(fd) != 0 && !st) st = lupe_err(LUPE_EIO, "%s: close: %s", path, strerror(errno));
    return st;
}

/* Removes the staging folder: the images this command names (synth-*.jpg),
 * then the folder if that emptied it; anything else in it is left alone. */
static void remove_staging(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "synth-", 6) != 0 || n < 10 || strcmp(e->d_name + n - 4, ".jpg") != 0) continue;
        char *p = lupe_path_join(dir, e->d_name);
        if (p) unlink(p);
        lupe_free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* ---- montage ------------------------------------------------------------------ */

typedef struct montage {
    lupe_img *im;
    int tw, th, rows;
} montage;

static lupe_status montage_init(montage *m, int w, int h, int tiles)
{
    m->tw = w < 300 ? w : 300;
    m->th = (int)((long)h * m->tw / w);
    m->rows = (tiles + MONTAGE_COLS - 1) / MONTAGE_COLS;
    if (!(m->im = lupe_img_new(MONTAGE_COLS * m->tw, m->rows * m->th, 3))) return lupe_err_ctx(LUPE_ENOMEM, "montage");
    lupe_img_fill_rect(m->im, 0, 0, m->im->w, m->im->h, LUPE_RGB(32, 32, 32));
    return LUPE_OK;
}

/* Puts im, shrunk to a tile, at slot; boxes (may be NULL) drawn with their
 * class names, caption (may be NULL) in the corner. */
static lupe_status montage_put(montage *m, int slot, const lupe_img *im, const det_box *b, int nb, const char *caption)
{
    lupe_img *t = NULL;
    lupe_status st = lupe_img_resize(im, m->tw - 2, m->th - 2, LUPE_RESIZE_AREA, &t);
    if (st) return lupe_err_ctx(st, "montage");
    float sx = (float)t->w / (float)im->w, sy = (float)t->h / (float)im->h;
    for (int k = 0; k < nb; k++) {
        int x = (int)(b[k].x1 * sx), y = (int)(b[k].y1 * sy);
        int w = (int)(b[k].x2 * sx + 0.999f) - x, h = (int)(b[k].y2 * sy + 0.999f) - y;
        static const uint32_t colour[SYNTH_NCLASSES] = {LUPE_RGB(255, 40, 40), LUPE_RGB(40, 220, 40),
                                                        LUPE_RGB(60, 140, 255)};
        lupe_img_draw_box(t, x - 1, y - 1, w + 2, h + 2, colour[b[k].cls % SYNTH_NCLASSES], synth_class_name(b[k].cls));
    }
    if (caption) {
        int cw = lupe_img_text_width(caption, 1);
        lupe_img_fill_rect(t, 0, t->h - 11, cw + 6, 11, LUPE_RGB(0, 0, 0));
        lupe_img_draw_text(t, 3, t->h - 9, caption, 1, LUPE_RGB(255, 255, 255));
    }
    int ox = (slot % MONTAGE_COLS) * m->tw + 1, oy = (slot / MONTAGE_COLS) * m->th + 1;
    for (int y = 0; y < t->h; y++)
        memcpy(m->im->data + ((size_t)(oy + y) * m->im->w + ox) * 3, t->data + (size_t)y * t->w * 3, (size_t)t->w * 3);
    lupe_img_free(t);
    return LUPE_OK;
}

/* The photos for a comparison: every JPEG or PNG under dir, in name order. */
static char **real_list;
static int real_n;

static int collect(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    if (flag != FTW_F || real_n >= MAX_REAL) return 0;
    size_t n = strlen(path);
    if (!((n > 4 && (!strcasecmp(path + n - 4, ".jpg") || !strcasecmp(path + n - 4, ".png"))) ||
          (n > 5 && !strcasecmp(path + n - 5, ".jpeg"))))
        return 0;
    char **l = lupe_realloc(real_list, (size_t)(real_n + 1) * sizeof *l);
    if (!l) return -1;
    real_list = l;
    if (!(real_list[real_n] = lupe_strdup(path))) return -1;
    real_n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void real_cleanup(void)
{
    for (int i = 0; i < real_n; i++) lupe_free(real_list[i]);
    lupe_free(real_list);
    real_list = NULL;
    real_n = 0;
}

/* Rows 1 and 3 of the comparison: photos spread evenly over the list. */
static lupe_status montage_real(montage *m, const char *dir)
{
    lupe_status st = LUPE_OK;
    if (nftw(dir, collect, 16, FTW_PHYS) != 0) {
        st = lupe_err(LUPE_EIO, "--real %s: %s", dir, errno ? strerror(errno) : "listing failed");
        goto out;
    }
    if (real_n == 0) {
        st = lupe_err(LUPE_ENOTFOUND, "--real %s: no .jpg, .jpeg or .png files", dir);
        goto out;
    }
    qsort(real_list, (size_t)real_n, sizeof *real_list, cmp_str);
    for (int k = 0; k < 2 * MONTAGE_COLS; k++) {
        int slot = (k / MONTAGE_COLS * 2 + 1) * MONTAGE_COLS + k % MONTAGE_COLS;
        lupe_img *im = NULL;
        /* Offset by half a step and by 7 within it, so the four quadrant
         * crops of one photo do not sit side by side. */
        int pick = (int)(((long)k * real_n + real_n / 2) / (2 * MONTAGE_COLS) + 7 * k) % real_n;
        if ((st = lupe_img_load(real_list[pick], 3, NULL, &im))) goto out;
        st = montage_put(m, slot, im, NULL, 0, "real");
        lupe_img_free(im);
        if (st) goto out;
    }
out:
    real_cleanup();
    return st;
}

/* ---- the command ----------------------------------------------------------------- */

static lupe_status generate(const synth_args *a, lupe_ws *ws, int *partial_out)
{
    lupe_status st = LUPE_OK;
    lupe_fmt_doc *doc = NULL;
    lupe_img *im = NULL;
    uint8_t *jpg = NULL;
    char *staging = NULL, *name = NULL, *path = NULL;
    montage m = {0};
    det_box *boxes = NULL;
    int made_staging = 0, maxcls = 0, partial = 0;
    long counts[SYNTH_NCLASSES] = {0}, empty = 0;
    struct stat sb;
    cli_progress bar = {0};
    double t0 = lupe_time_mono();

    if (lstat(a->out, &sb) == 0) {
        st = lupe_err(LUPE_EEXIST, "%s already exists; synth writes a new folder", a->out);
        goto out;
    }
    /* The images are made in a staging folder beside OUT, then the format
     * writer copies them into OUT.partial with the labels and renames it,
     * so OUT appears complete or not at all. */
    if (!(staging = lupe_asprintf("%s.staging", a->out)) || !(doc = lupe_fmt_doc_new()) ||
        !(boxes = lupe_calloc((size_t)a->cfg.max_defects + 1, sizeof *boxes))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    remove_staging(staging);
    if ((st = lupe_mkdirs(staging))) goto out;
    made_staging = 1;
    for (int k = 0; k < SYNTH_NCLASSES; k++)
        if (a->cfg.classes & (1 << k)) maxcls = k;
    /* Class ids are the SYNTH_* numbers, so every class up to the highest
     * planted one is named, planted or not. */
    for (int k = 0; k <= maxcls; k++)
        if ((st = lupe_fmt_doc_add_class(doc, synth_class_name(k), NULL))) goto out;
    int tiles = a->count < MONTAGE_TILES ? (int)a->count : MONTAGE_TILES;
    if (a->montage && (st = montage_init(&m, a->cfg.w, a->cfg.h, a->real ? MONTAGE_TILES : tiles))) goto out;

    cli_progress_start(&bar, (size_t)a->count);
    for (long i = 0; i < a->count; i++) {
        uint64_t index = a->first + (uint64_t)i;
        int nb = 0;
        size_t len = 0;
        if ((st = synth_tag(&a->cfg, a->seed, index, &im, boxes, a->cfg.max_defects + 1, &nb))) goto out;
        if ((st = lupe_img_encode_jpeg(im, a->quality, &jpg, &len))) goto out;
        lupe_free(name);
        lupe_free(path);
        name = lupe_asprintf("synth-%llu-%06llu.jpg", (unsigned long long)a->seed, (unsigned long long)index);
        path = name ? lupe_path_join(staging, name) : NULL;
        if (!path) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = write_file(path, jpg, len))) goto out;
        lupe_free(jpg);
        jpg = NULL;
        lupe_fmt_item *it = lupe_fmt_doc_add_item(doc, name);
        if (!it || !(it->src_path = lupe_strdup(path))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        it->width = im->w, it->height = im->h, it->labeled = 1;
        for (int k = 0; k < nb; k++) {
            if ((st = lupe_fmt_item_add_box(it, boxes[k].cls, boxes[k].x1, boxes[k].y1, boxes[k].x2 - boxes[k].x1,
                                            boxes[k].y2 - boxes[k].y1)))
                goto out;
            counts[boxes[k].cls]++;
        }
        if (nb == 0) empty++;
        if (m.im) {
            /* A comparison shows the first 8 synthetic tags bare, in rows 0 and 2. */
            if (a->real && i < 2 * MONTAGE_COLS) {
                int slot = (int)(i / MONTAGE_COLS * 2) * MONTAGE_COLS + (int)(i % MONTAGE_COLS);
                if ((st = montage_put(&m, slot, im, NULL, 0, "synthetic"))) goto out;
            } else if (!a->real && i < MONTAGE_TILES) {
                if ((st = montage_put(&m, (int)i, im, boxes, nb, NULL))) goto out;
            }
        }
        lupe_img_free(im);
        im = NULL;
        cli_progress_update(&bar, (size_t)i + 1, "boxes %ld", counts[0] + counts[1] + counts[2]);
    }
    cli_progress_end(&bar);
    double gen_s = lupe_time_mono() - t0;
    if ((st = lupe_fmt_write(LUPE_FMT_YOLO, doc, a->out))) goto out;
    if (m.im) {
        if (a->real && (st = montage_real(&m, a->real))) goto out;
        if ((st = lupe_img_save(m.im, a->montage))) goto out;
    }
    printf("synth: %ld images in %.1fs (%.0f/s): %ld scratch, %ld dent, %ld stain boxes, %ld without defects -> %s\n",
           a->count, gen_s, gen_s > 0 ? (double)a->count / gen_s : 0.0, counts[0], counts[1], counts[2], empty, a->out);
    if (ws) {
        lupe_import_opts o = lupe_import_default_opts();
        o.format = LUPE_FMT_YOLO;
        o.path = a->out;
        if (a->labelset) o.labelset = a->labelset;
        o.add_classes = 1; /* the user asked for these classes */
        o.source = "synth";
        o.author = "synth";
        lupe_import_summary s;
        if ((st = lupe_label_import(ws, &o, &s))) goto out;
        printf("synth: imported %zu images (%zu stored, %zu duplicate), %zu labeled with %zu boxes\n", s.items,
               s.ingest.stored, s.ingest.duplicate, s.labeled, s.boxes);
        if (s.skipped || s.ingest.rejected) partial = 1;
    }
out:
    cli_progress_end(&bar);
    if (made_staging) remove_staging(staging);
    lupe_img_free(m.im);
    lupe_img_free(im);
    lupe_free(jpg);
    lupe_free(name);
    lupe_free(path);
    lupe_free(staging);
    lupe_free(boxes);
    lupe_fmt_doc_free(doc);
    if (partial_out) *partial_out = partial;
    return st;
}

lupe_status cli_synth_folder(uint64_t seed, long count, const char *out)
{
    synth_args a = {.seed = seed, .count = count, .quality = 92, .out = out};
    synth_cfg_default(&a.cfg);
    return generate(&a, NULL, NULL);
}

int cmd_synth(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'n'},    {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 's'},     {"first", required_argument, NULL, 'F'},
        {"size", required_argument, NULL, 'z'},     {"classes", required_argument, NULL, 'c'},
        {"min", required_argument, NULL, 'a'},      {"max", required_argument, NULL, 'b'},
        {"empty", required_argument, NULL, 'e'},    {"engrave", required_argument, NULL, 'E'},
        {"quality", required_argument, NULL, 'q'},  {"format", required_argument, NULL, 'f'},
        {"montage", required_argument, NULL, 'm'},  {"real", required_argument, NULL, 'R'},
        {"ingest", no_argument, NULL, 'I'},         {"labelset", required_argument, NULL, 'L'},
        {0},
    };
    int rc = cli_getopt_help("synth", argc, argv);
    if (rc >= 0) return rc;
    synth_args a = {.seed = 1, .quality = 92};
    synth_cfg_default(&a.cfg);
    int c, have_count = 0;
    while ((c = getopt_long(argc, argv, "n:o:s:c:f:m:L:", opts, NULL)) != -1) {
        switch (c) {
        case 'n': {
            uint64_t v;
            if (cli_parse_u64(optarg, &v) || v < 1 || v > (uint64_t)MAX_COUNT)
                return cli_usage_error("synth", "--count expects a number from 1 to %ld, got '%s'", MAX_COUNT, optarg);
            a.count = (long)v, have_count = 1;
            break;
        }
        case 'o': a.out = optarg; break;
        case 's':
            if (cli_parse_u64(optarg, &a.seed))
                return cli_usage_error("synth", "--seed expects a number, got '%s'", optarg);
            break;
        case 'F':
            if (cli_parse_u64(optarg, &a.first) || a.first > UINT64_MAX - (uint64_t)MAX_COUNT)
                return cli_usage_error("synth", "--first expects a number, got '%s'", optarg);
            break;
        case 'z': {
            int w, h, n = 0;
            if (sscanf(optarg, "%dx%d%n", &w, &h, &n) != 2 || optarg[n] || w < 64 || h < 64 || w > 8192 || h > 8192)
                return cli_usage_error("synth", "--size expects WxH from 64x64 to 8192x8192, got '%s'", optarg);
            a.cfg.w = w, a.cfg.h = h;
            break;
        }
        case 'c':
            if ((a.cfg.classes = parse_classes(optarg)) <= 0)
                return cli_usage_error("synth", "--classes expects names from scratch, dent, stain, got '%s'", optarg);
            break;
        case 'a':
            if (cli_parse_int(optarg, 0, 64, &a.cfg.min_defects))
                return cli_usage_error("synth", "--min expects a number from 0 to 64, got '%s'", optarg);
            break;
        case 'b':
            if (cli_parse_int(optarg, 0, 64, &a.cfg.max_defects))
                return cli_usage_error("synth", "--max expects a number from 0 to 64, got '%s'", optarg);
            break;
        case 'e':
            if (cli_parse_float(optarg, 0, 1, &a.cfg.empty_fraction))
                return cli_usage_error("synth", "--empty expects a fraction from 0 to 1, got '%s'", optarg);
            break;
        case 'E':
            if (cli_parse_float(optarg, 0, 1, &a.cfg.engrave))
                return cli_usage_error("synth", "--engrave expects a fraction from 0 to 1, got '%s'", optarg);
            break;
        case 'q':
            if (cli_parse_int(optarg, 50, 100, &a.quality))
                return cli_usage_error("synth", "--quality expects a number from 50 to 100, got '%s'", optarg);
            break;
        case 'f':
            if (strcmp(optarg, "yolo") != 0)
                return cli_usage_error("synth", "--format: only yolo is written, not '%s'", optarg);
            break;
        case 'm': a.montage = optarg; break;
        case 'R': a.real = optarg; break;
        case 'I': a.ingest = 1; break;
        case 'L': a.labelset = optarg; break;
        default: return cli_usage_error("synth", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("synth", "unexpected argument '%s'", argv[optind]);
    if (!have_count || !a.out) return cli_usage_error("synth", "--count and --out are required");
    if (a.cfg.min_defects > a.cfg.max_defects)
        return cli_usage_error("synth", "--min %d is more than --max %d", a.cfg.min_defects, a.cfg.max_defects);
    if (a.real && !a.montage) return cli_usage_error("synth", "--real needs --montage");
    if (a.labelset && !a.ingest) return cli_usage_error("synth", "--labelset needs --ingest");
    if (a.montage) {
        size_t n = strlen(a.montage);
        if (!(n > 4 && (!strcasecmp(a.montage + n - 4, ".png") || !strcasecmp(a.montage + n - 4, ".jpg"))))
            return cli_usage_error("synth", "--montage needs a .png or .jpg file name, got '%s'", a.montage);
    }
    if (synth_cfg_check(&a.cfg)) return cli_usage_error("synth", "%s", lupe_errmsg());
    /* The workspace is opened first, so a missing one fails before any work. */
    lupe_ws *ws = NULL;
    if (a.ingest && cli_open_ws(ctx, &ws)) return cli_fail("synth");
    int partial = 0;
    lupe_status st = generate(&a, ws, &partial);
    lupe_ws_close(ws);
    return st ? cli_fail("synth") : partial ? EXIT_PARTIAL : EXIT_OK;
}
