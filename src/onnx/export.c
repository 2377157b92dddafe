/*
 * ONNX export of lupe's detector in the layout Ultralytics YOLOv8 exports:
 * input `images` [1, 3, H, W] (RGB in 0..1), output `output0`
 * [1, 4 + nc, N] (box centre, size in pixels, class scores; no NMS). The
 * network is the engine graph walked node by node (export_graph.c); the
 * decoding after the head (DFL, dist2bbox, sigmoid) is written here as
 * Ultralytics' Detect module exports it, and det_raw_output is its
 * reference in C. The layout is described in docs/onnx.md.
 */
#include <string.h>

#include <jansson.h>

#include "lupe/det.h"
#include "onnx/export_internal.h"

/* Writes `{0: 'a', 1: 'b'}` as Python's repr of a dict of names, which is
 * what Ultralytics stores and parses back with eval: quotes as repr picks
 * them, backslashes and the quote escaped, control bytes as \xNN. */
static char *names_repr(onnx__ex *e, const char *const *classes, int nc)
{
    size_t cap = 3;
    for (int i = 0; i < nc; i++) cap += 16 + 4 * strlen(classes[i]);
    char *s = onnx__ex_str(e, "%*s", (int)cap, ""), *p = s;
    if (!s) return NULL;
    *p++ = '{';
    for (int i = 0; i < nc; i++) {
        const char *c = classes[i];
        char q = strchr(c, '\'') && !strchr(c, '"') ? '"' : '\'';
        p += sprintf(p, "%s%d: %c", i ? ", " : "", i, q);
        for (; *c; c++) {
            unsigned char ch = (unsigned char)*c;
            if (ch == '\\' || ch == (unsigned char)q)
                *p++ = '\\', *p++ = (char)ch;
            else if (ch < 0x20 || ch == 0x7f)
                p += sprintf(p, "\\x%02x", ch);
            else
                *p++ = (char)ch;
        }
        *p++ = q;
    }
    *p++ = '}';
    *p = 0;
    return s;
}

/* Ultralytics' Detect after its convolutions, as torch.onnx exports it:
 *   x_cat = cat([x.view(1, no, -1) for x in levels], 2)      [1, no, N]
 *   box, cls = x_cat.split((64, nc), 1)
 *   dfl = conv(box.view(1, 4, 16, N).transpose(2, 1).softmax(1)).view(1, 4, N)
 *   lt, rb = dfl.chunk(2, 1); x1y1 = anchors - lt; x2y2 = anchors + rb
 *   dbox = cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
 *   output0 = cat((dbox, cls.sigmoid()), 1) */
static void detect_tail(onnx__ex *e, const det_arch *a, const char *const lv[DET_LEVELS])
{
    const int nc = a->nc, no = 4 * DET_REG_MAX + nc, n = det_anchors(a);
    const int64_t d1[1] = {1}, d2[1] = {2}, d3[1] = {3}, d4[1] = {4};

    const int64_t flat[3] = {1, no, -1};
    const char *flat_shape = onnx__ex_i64(e, "detect.flat_shape", flat, d3, 1);
    const char *r[DET_LEVELS];
    for (int l = 0; l < DET_LEVELS; l++) {
        const char *in[2] = {lv[l], flat_shape};
        Onnx__NodeProto *nd = onnx__ex_node(e, "Reshape", onnx__ex_str(e, "detect.flat.%d", l), in, 2, 1);
        r[l] = nd ? nd->output[0] : NULL;
    }
    Onnx__NodeProto *cat = onnx__ex_node(e, "Concat", "detect.cat", r, DET_LEVELS, 1);
    onnx__ex_attr_int(e, cat, "axis", 2);
    if (!cat) return;

    const int64_t bc[2] = {4 * DET_REG_MAX, nc};
    const char *in2[2] = {cat->output[0], onnx__ex_i64(e, "detect.split_sizes", bc, d2, 1)};
    Onnx__NodeProto *split = onnx__ex_node(e, "Split", "detect.split", in2, 2, 2);
    onnx__ex_attr_int(e, split, "axis", 1);
    if (!split) return;
    const char *box = split->output[0], *cls = split->output[1];

    /* DFL: a softmax over each side's 16 bins, then their expectation as a
     * 1x1 convolution with weights 0..15. */
    const int64_t bins[4] = {1, 4, DET_REG_MAX, -1};
    const char *in3[2] = {box, onnx__ex_i64(e, "detect.dfl.bins_shape", bins, d4, 1)};
    Onnx__NodeProto *rs = onnx__ex_node(e, "Reshape", "detect.dfl.bins", in3, 2, 1);
    if (!rs) return;
    Onnx__NodeProto *tr = onnx__ex_node(e, "Transpose", "detect.dfl.transpose", (const char *const *)rs->output, 1, 1);
    const int64_t perm[4] = {0, 2, 1, 3};
    onnx__ex_attr_ints(e, tr, "perm", perm, 4);
    if (!tr) return;
    Onnx__NodeProto *sm = onnx__ex_node(e, "Softmax", "detect.dfl.softmax", (const char *const *)tr->output, 1, 1);
    onnx__ex_attr_int(e, sm, "axis", 1);
    if (!sm) return;
    float proj[DET_REG_MAX];
    for (int k = 0; k < DET_REG_MAX; k++) proj[k] = (float)k;
    const int64_t pd[4] = {1, DET_REG_MAX, 1, 1};
    const char *in4[2] = {sm->output[0], onnx__ex_f32(e, "detect.dfl.weight", proj, pd, 4)};
    Onnx__NodeProto *cv = onnx__ex_node(e, "Conv", "detect.dfl.conv", in4, 2, 1);
    const int64_t k1[2] = {1, 1};
    onnx__ex_attr_ints(e, cv, "kernel_shape", k1, 2);
    if (!cv) return;
    const int64_t dist[3] = {1, 4, -1};
    const char *in5[2] = {cv->output[0], onnx__ex_i64(e, "detect.dfl.dist_shape", dist, d3, 1)};
    Onnx__NodeProto *dfl = onnx__ex_node(e, "Reshape", "detect.dfl", in5, 2, 1);
    if (!dfl) return;

    /* dist2bbox(xywh=True) and the stride: anchors [1, 2, N] (cell centres,
     * x then y, in grid units) and strides [1, N], level by level. */
    const int64_t half[2] = {2, 2};
    const char *in6[2] = {dfl->output[0], onnx__ex_i64(e, "detect.lt_rb_sizes", half, d2, 1)};
    Onnx__NodeProto *ch = onnx__ex_node(e, "Split", "detect.lt_rb", in6, 2, 2);
    onnx__ex_attr_int(e, ch, "axis", 1);
    float *anc = lupe_malloc((size_t)2 * n * sizeof(float)), *str = lupe_malloc((size_t)n * sizeof(float));
    if (!anc || !str || !ch) {
        e->oom = 1;
        lupe_free(anc);
        lupe_free(str);
        return;
    }
    for (int l = 0, j = 0; l < DET_LEVELS; l++) {
        int g = a->imgsz >> (3 + l);
        for (int y = 0; y < g; y++)
            for (int x = 0; x < g; x++, j++) anc[j] = (float)x + 0.5f, anc[n + j] = (float)y + 0.5f, str[j] = (float)(8 << l);
    }
    const int64_t ad[3] = {1, 2, n}, sd[2] = {1, n};
    const char *anchors = onnx__ex_f32(e, "detect.anchors", anc, ad, 3);
    const char *strides = onnx__ex_f32(e, "detect.strides", str, sd, 2);
    lupe_free(anc);
    lupe_free(str);
    const float two = 2.0f;
    const char *two_name = onnx__ex_f32(e, "detect.two", &two, d1, 0);

    const char *a_lt[2] = {anchors, ch->output[0]}, *a_rb[2] = {anchors, ch->output[1]};
    Onnx__NodeProto *x1y1 = onnx__ex_node(e, "Sub", "detect.x1y1", a_lt, 2, 1);
    Onnx__NodeProto *x2y2 = onnx__ex_node(e, "Add", "detect.x2y2", a_rb, 2, 1);
    if (!x1y1 || !x2y2) return;
    const char *corners[2] = {x1y1->output[0], x2y2->output[0]}, *rev[2] = {x2y2->output[0], x1y1->output[0]};
    Onnx__NodeProto *sum = onnx__ex_node(e, "Add", "detect.corner_sum", corners, 2, 1);
    if (!sum) return;
    const char *in7[2] = {sum->output[0], two_name};
    Onnx__NodeProto *cxy = onnx__ex_node(e, "Div", "detect.cxy", in7, 2, 1);
    Onnx__NodeProto *wh = onnx__ex_node(e, "Sub", "detect.wh", rev, 2, 1);
    if (!cxy || !wh) return;
    const char *in8[2] = {cxy->output[0], wh->output[0]};
    Onnx__NodeProto *xywh = onnx__ex_node(e, "Concat", "detect.xywh", in8, 2, 1);
    onnx__ex_attr_int(e, xywh, "axis", 1);
    if (!xywh) return;
    const char *in9[2] = {xywh->output[0], strides};
    Onnx__NodeProto *dbox = onnx__ex_node(e, "Mul", "detect.dbox", in9, 2, 1);
    Onnx__NodeProto *sc = onnx__ex_node(e, "Sigmoid", "detect.scores", &cls, 1, 1);
    if (!dbox || !sc) return;
    const char *in10[2] = {dbox->output[0], sc->output[0]};
    Onnx__NodeProto *out = onnx__ex_node(e, "Concat", "output0", in10, 2, 1);
    onnx__ex_attr_int(e, out, "axis", 1);
}

lupe_status onnx_export_det_graph(const char *path, const eng_graph *g, const det_arch *a, int input,
                                  const int outs[DET_LEVELS], const char *const *classes, onnx_export_info *info)
{
    onnx__ex e;
    onnx__ex_init(&e);
    const char **names = NULL;
    lupe_status st = LUPE_OK;
    if (info) memset(info, 0, sizeof *info);
    int s[4];
    eng_graph_shape(g, input, s);
    if (s[0] != 1 || s[1] != a->imgsz || s[2] != a->imgsz || s[3] != 3) {
        st = lupe_err(LUPE_EARG, "%s: the graph's input is %dx%dx%dx%d; the export needs 1x%dx%dx3 (batch 1)", path,
                      s[0], s[1], s[2], s[3], a->imgsz, a->imgsz);
        goto out;
    }
    for (int l = 0; l < DET_LEVELS; l++) {
        int gs = a->imgsz >> (3 + l);
        eng_graph_shape(g, outs[l], s);
        if (s[0] != 1 || s[1] != gs || s[2] != gs || s[3] != 4 * DET_REG_MAX + a->nc) {
            st = lupe_err(LUPE_EARG, "%s: head output %d is %dx%dx%dx%d, not 1x%dx%dx%d", path, l, s[0], s[1], s[2],
                          s[3], gs, gs, 4 * DET_REG_MAX + a->nc);
            goto out;
        }
    }
    names = lupe_calloc((size_t)eng_graph_tensors(g), sizeof *names);
    if (!names) {
        st = lupe_err(LUPE_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if ((st = onnx__ex_graph(&e, g, input, "images", names))) {
        st = lupe_err_ctx(st, "exporting %s", path);
        goto out;
    }
    const char *lv[DET_LEVELS];
    for (int l = 0; l < DET_LEVELS; l++) lv[l] = names[outs[l]];
    detect_tail(&e, a, lv);

    const int n = det_anchors(a);
    const int64_t ind[4] = {1, 3, a->imgsz, a->imgsz}, outd[3] = {1, 4 + a->nc, n};
    onnx__ex_io(&e, 0, "images", ind, 4);
    onnx__ex_io(&e, 1, "output0", outd, 3);
    /* Ultralytics' metadata keys, which its loader and other tools read
     * (stride and batch as integers, imgsz and names as Python literals). */
    onnx__ex_meta(&e, "description", onnx__ex_str(&e, "lupe YOLOv8%c detector", a->scale));
    onnx__ex_meta(&e, "author", "lupe");
    onnx__ex_meta(&e, "version", LUPE_VERSION);
    onnx__ex_meta(&e, "task", "detect");
    onnx__ex_meta(&e, "stride", "32");
    onnx__ex_meta(&e, "batch", "1");
    onnx__ex_meta(&e, "imgsz", onnx__ex_str(&e, "[%d, %d]", a->imgsz, a->imgsz));
    onnx__ex_meta(&e, "names", names_repr(&e, classes, a->nc));
    char *doc = onnx__ex_str(&e, "lupe YOLOv8%c detector: %d class%s, input images [1, 3, %d, %d] RGB 0..1, output0 "
                                 "[1, %d, %d] (cx, cy, w, h in pixels, then class scores; no NMS)",
                             a->scale, a->nc, a->nc == 1 ? "" : "es", a->imgsz, a->imgsz, 4 + a->nc, n);
    char *gname = onnx__ex_str(&e, "lupe_yolov8%c", a->scale);
    if ((st = onnx__ex_write(&e, path, gname, doc, ONNX_EXPORT_OPSET))) goto out;
    if (info) {
        info->scale = a->scale;
        info->nc = a->nc;
        info->imgsz = a->imgsz;
        info->anchors = n;
        info->nodes = (int)e.nodes.n;
        info->initializers = (int)e.inits.n;
    }
out:
    lupe_free(names);
    onnx__ex_cleanup(&e);
    return st;
}

/* The architecture and class names in a checkpoint's metadata, as lupe
 * train writes them (format lupe-detector, arch {family, scale, nc, imgsz},
 * classes). */
static lupe_status ckpt_arch(const eng_ckpt *ck, const char *path, char *scale, int *nc, int *imgsz, char ***classes)
{
    json_error_t je;
    json_t *m = json_loads(ck->meta, 0, &je), *cls = NULL;
    const char *sc = NULL, *fmt = NULL, *fam = NULL;
    *classes = NULL;
    if (!m) return lupe_err(LUPE_EFORMAT, "%s: the checkpoint's metadata is not JSON: %s", path, je.text);
    if (json_unpack(m, "{s:s, s:{s:s, s:s, s:i, s:i}, s:o}", "format", &fmt, "arch", "family", &fam, "scale", &sc, "nc",
                    nc, "imgsz", imgsz, "classes", &cls) ||
        strcmp(fmt, "lupe-detector")) {
        json_decref(m);
        return lupe_err(LUPE_EFORMAT,
                        "%s: not a lupe detector checkpoint (its metadata lacks format \"lupe-detector\", "
                        "arch {family, scale, nc, imgsz} or classes)",
                        path);
    }
    if (strcmp(fam, "yolov8") || strlen(sc) != 1) {
        lupe_status st = lupe_err(LUPE_EUNSUPPORTED, "%s: architecture %s scale '%s' (yolov8 n or s is exported)", path,
                                  fam, sc);
        json_decref(m);
        return st;
    }
    if (!json_is_array(cls) || (int)json_array_size(cls) != *nc) {
        lupe_status st = lupe_err(LUPE_EFORMAT, "%s: %d classes in arch but %zu class names", path, *nc,
                                  json_is_array(cls) ? json_array_size(cls) : (size_t)0);
        json_decref(m);
        return st;
    }
    scale[0] = sc[0], scale[1] = 0;
    lupe_status st = LUPE_OK;
    *classes = lupe_calloc((size_t)(*nc > 0 ? *nc : 1), sizeof **classes);
    for (int i = 0; *classes && i < *nc && !st; i++) {
        const char *s = json_string_value(json_array_get(cls, (size_t)i));
        if (!s)
            st = lupe_err(LUPE_EFORMAT, "%s: class name %d is not a string", path, i);
        else if (!((*classes)[i] = lupe_strdup(s)))
            st = LUPE_ENOMEM;
    }
    if (!*classes) st = LUPE_ENOMEM;
    json_decref(m);
    return st;
}

lupe_status onnx_export_det(const char *ckpt, const char *path, int imgsz, onnx_export_info *info)
{
    eng_ckpt *ck = NULL;
    eng_graph *g = NULL;
    char **classes = NULL;
    char scale[2];
    int nc = 0, trained = 0, x, outs[DET_LEVELS];
    det_arch a;
    lupe_status st = eng_ckpt_load(ckpt, &ck);
    if (st) goto out;
    if ((st = ckpt_arch(ck, ckpt, scale, &nc, &trained, &classes))) goto out;
    if ((st = det_arch_init(&a, scale, nc, imgsz ? imgsz : trained, 1))) {
        st = lupe_err_ctx(st, "%s", ckpt);
        goto out;
    }
    if (!(g = eng_graph_new("export"))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    /* Nothing runs: the references only, so planning creates no oneDNN
     * primitives. */
    eng_graph_set_fast(g, 0);
    if ((st = det_build(g, &a, &x, outs)) || (st = eng_graph_plan(g, 0)) || (st = eng_graph_load(g, ck))) {
        st = lupe_err_ctx(st, "%s", ckpt);
        goto out;
    }
    st = onnx_export_det_graph(path, g, &a, x, outs, (const char *const *)classes, info);
out:
    if (classes)
        for (int i = 0; i < nc; i++) lupe_free(classes[i]);
    lupe_free(classes);
    eng_graph_free(g);
    eng_ckpt_free(ck);
    return st;
}
