/*
 * `lupe export onnx`: a trained detector (a checkpoint, or a run folder's
 * weights/best.ckpt) as an ONNX file in Ultralytics YOLOv8's layout, and
 * --inspect to summarise any ONNX file.
 */
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "lupe/onnx.h"

/* A run folder means its best weights; anything else is a checkpoint path. */
static char *model_path(const char *model)
{
    struct stat sb;
    if (stat(model, &sb) == 0 && S_ISDIR(sb.st_mode)) return lupe_path_join(model, "weights/best.ckpt");
    return lupe_strdup(model);
}

/* The checkpoint's path with .onnx for its extension. */
static char *default_out(const char *ckpt)
{
    const char *slash = strrchr(ckpt, '/'), *dot = strrchr(ckpt, '.');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - ckpt) : strlen(ckpt);
    return lupe_asprintf("%.*s.onnx", (int)stem, ckpt);
}

static int inspect(const char *path)
{
    onnx_info in;
    if (onnx_inspect(path, &in)) return cli_fail("export");
    printf("%s: ONNX IR version %lld, opset %lld, producer %s\n", path, (long long)in.ir_version, (long long)in.opset,
           in.producer[0] ? in.producer : "(none)");
    printf("%d nodes, %d input%s, %d output%s, %d initializers\n", in.nodes, in.inputs, in.inputs == 1 ? "" : "s",
           in.outputs, in.outputs == 1 ? "" : "s", in.initializers);
    return EXIT_OK;
}

int cmd_export(cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"imgsz", required_argument, NULL, 'i'},
        {"inspect", no_argument, NULL, 'I'},
        {0},
    };
    int rc = cli_getopt_help("export", argc, argv);
    if (rc >= 0) return rc;
    if (argc < 2) return cli_usage_error("export", "which format? (onnx)");
    if (strcmp(argv[1], "onnx")) return cli_usage_error("export", "unknown format '%s' (onnx is the one there is)", argv[1]);
    argc--, argv++;
    optind = 0;
    const char *out = NULL;
    int imgsz = 0, do_inspect = 0, o;
    while ((o = getopt_long(argc, argv, "o:i:", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'o': out = optarg; break;
        case 'i': bad = cli_parse_int(optarg, 32, 4096, &imgsz) || imgsz % 32; break;
        case 'I': do_inspect = 1; break;
        default: return cli_usage_error("export", "bad option (see lupe export --help)");
        }
        if (bad) return cli_usage_error("export", "bad value '%s' for %s (a multiple of 32)", optarg, argv[optind - 1]);
    }
    if (optind != argc - 1) return cli_usage_error("export", do_inspect ? "expected one ONNX FILE" : "expected one MODEL");
    if (do_inspect) {
        if (out || imgsz) return cli_usage_error("export", "--inspect takes no --out or --imgsz");
        return inspect(argv[optind]);
    }
    char *ckpt = model_path(argv[optind]), *dflt = NULL;
    if (!out && ckpt) out = dflt = default_out(ckpt);
    if (!ckpt || !out) {
        lupe_free(ckpt);
        return cli_fail("export");
    }
    onnx_export_info info;
    lupe_status st = onnx_export_det(ckpt, out, imgsz, &info);
    if (st) {
        rc = cli_fail("export");
    } else {
        struct stat sb;
        char size[32];
        printf("%s: YOLOv8%c, %d class%s, input images [1, 3, %d, %d], output0 [1, %d, %d], %d nodes, %s\n", out,
               info.scale, info.nc, info.nc == 1 ? "" : "es", info.imgsz, info.imgsz, 4 + info.nc, info.anchors,
               info.nodes, stat(out, &sb) == 0 ? cli_bytes((double)sb.st_size, size, sizeof size) : "?");
        rc = EXIT_OK;
    }
    lupe_free(ckpt);
    lupe_free(dflt);
    return rc;
}
