/*
 * The YOLOv8 architecture as data: a table of rows (inputs, repeats,
 * module, channels, kernel/stride) read into an engine graph, with the
 * depth and width multipliers of each scale applied as Ultralytics does
 * (repeats max(round(n * depth), 1); channels rounded up to a multiple of 8
 * after min(c, max_channels) * width).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lupe/det.h"

typedef enum { M_CONV, M_C2F, M_SPPF, M_UP, M_CONCAT, M_DETECT } module;

typedef struct row {
    int from[3];  /* -1 = previous row; other values are row indices */
    int nfrom;
    int repeats;
    module m;
    int c;        /* output channels before the width multiplier */
    int k, s;     /* conv kernel and stride; C2f: shortcut in k; SPPF: pool kernel in k */
} row;

/* yolov8.yaml: backbone rows 0-9, head rows 10-22. */
static const row yolov8[] = {
    {{-1}, 1, 1, M_CONV, 64, 3, 2},      /* 0 P1/2 */
    {{-1}, 1, 1, M_CONV, 128, 3, 2},     /* 1 P2/4 */
    {{-1}, 1, 3, M_C2F, 128, 1, 0},      /* 2 */
    {{-1}, 1, 1, M_CONV, 256, 3, 2},     /* 3 P3/8 */
    {{-1}, 1, 6, M_C2F, 256, 1, 0},      /* 4 */
    {{-1}, 1, 1, M_CONV, 512, 3, 2},     /* 5 P4/16 */
    {{-1}, 1, 6, M_C2F, 512, 1, 0},      /* 6 */
    {{-1}, 1, 1, M_CONV, 1024, 3, 2},    /* 7 P5/32 */
    {{-1}, 1, 3, M_C2F, 1024, 1, 0},     /* 8 */
    {{-1}, 1, 1, M_SPPF, 1024, 5, 0},    /* 9 */
    {{-1}, 1, 1, M_UP, 0, 0, 0},         /* 10 */
    {{-1, 6}, 2, 1, M_CONCAT, 0, 0, 0},  /* 11 */
    {{-1}, 1, 3, M_C2F, 512, 0, 0},      /* 12 */
    {{-1}, 1, 1, M_UP, 0, 0, 0},         /* 13 */
    {{-1, 4}, 2, 1, M_CONCAT, 0, 0, 0},  /* 14 */
    {{-1}, 1, 3, M_C2F, 256, 0, 0},      /* 15 P3 out */
    {{-1}, 1, 1, M_CONV, 256, 3, 2},     /* 16 */
    {{-1, 12}, 2, 1, M_CONCAT, 0, 0, 0}, /* 17 */
    {{-1}, 1, 3, M_C2F, 512, 0, 0},      /* 18 P4 out */
    {{-1}, 1, 1, M_CONV, 512, 3, 2},     /* 19 */
    {{-1, 9}, 2, 1, M_CONCAT, 0, 0, 0},  /* 20 */
    {{-1}, 1, 3, M_C2F, 1024, 0, 0},     /* 21 P5 out */
    {{15, 18, 21}, 3, 1, M_DETECT, 0, 0, 0},
};
#define NROWS ((int)(sizeof yolov8 / sizeof *yolov8))

lupe_status det_arch_init(det_arch *a, const char *scale, int nc, int imgsz, int batch)
{
    memset(a, 0, sizeof *a);
    if (!scale || strlen(scale) != 1 || (scale[0] != 'n' && scale[0] != 's'))
        return lupe_err(LUPE_EARG, "model scale '%s' is not one of n, s", scale ? scale : "");
    if (nc < 1 || nc > 1000) return lupe_err(LUPE_EARG, "%d classes; 1 to 1000 are supported", nc);
    if (imgsz < 32 || imgsz % 32) return lupe_err(LUPE_EARG, "image size %d is not a positive multiple of 32", imgsz);
    if (batch < 1) return lupe_err(LUPE_EARG, "batch %d must be at least 1", batch);
    a->scale = scale[0];
    a->depth = 0.33f;
    a->width = scale[0] == 'n' ? 0.25f : 0.50f;
    a->max_channels = 1024;
    a->nc = nc, a->imgsz = imgsz, a->batch = batch;
    return LUPE_OK;
}

static int width(const det_arch *a, int c)
{
    int m = c < a->max_channels ? c : a->max_channels;
    return (int)ceil(m * a->width / 8.0) * 8;
}

static int repeats(const det_arch *a, int n)
{
    int r = (int)lround(n * a->depth);
    return n > 1 && r < 1 ? 1 : n > 1 ? r : n;
}

static int channels(eng_graph *g, int t)
{
    int s[4];
    eng_graph_shape(g, t, s);
    return s[3];
}

/* C2f: cv1 to 2c channels, split in halves, n bottlenecks on the last
 * half, concat of everything, cv2 to c2 channels. */
static int c2f(eng_graph *g, const char *name, int x, int c2, int n, int shortcut)
{
    char b[128], b2[128];
    int c = c2 / 2;
    snprintf(b, sizeof b, "%s.cv1", name);
    int y = eng_g_conv_bn_silu(g, b, x, 2 * c, 1, 1);
    int parts[2 + 16];
    parts[0] = eng_g_slice(g, y, 0, c);
    parts[1] = eng_g_slice(g, y, c, c);
    for (int i = 0; i < n && i < 16; i++) {
        snprintf(b, sizeof b, "%s.m.%d.cv1", name, i);
        snprintf(b2, sizeof b2, "%s.m.%d.cv2", name, i);
        int h = eng_g_conv_bn_silu(g, b2, eng_g_conv_bn_silu(g, b, parts[1 + i], c, 3, 1), c, 3, 1);
        parts[2 + i] = shortcut ? eng_g_add(g, parts[1 + i], h) : h;
    }
    snprintf(b, sizeof b, "%s.cv2", name);
    return eng_g_conv_bn_silu(g, b, eng_g_concat(g, parts, 2 + n), c2, 1, 1);
}

static int sppf(eng_graph *g, const char *name, int x, int c2, int k)
{
    char b[128];
    int c = channels(g, x) / 2;
    snprintf(b, sizeof b, "%s.cv1", name);
    int y[4];
    y[0] = eng_g_conv_bn_silu(g, b, x, c, 1, 1);
    for (int i = 1; i < 4; i++) y[i] = eng_g_maxpool(g, y[i - 1], k);
    snprintf(b, sizeof b, "%s.cv2", name);
    return eng_g_conv_bn_silu(g, b, eng_g_concat(g, y, 4), c2, 1, 1);
}

/* Detect: per level, a box branch (cv2) and a class branch (cv3) of two
 * Convs and a plain 1x1 conv with bias, concatenated. */
static void detect(eng_graph *g, const char *name, const det_arch *a, const int *in, int outs[DET_LEVELS])
{
    int ch0 = channels(g, in[0]);
    int c2 = ch0 / 4 > 16 ? ch0 / 4 : 16;
    if (c2 < 4 * DET_REG_MAX) c2 = 4 * DET_REG_MAX;
    int c3 = ch0 > (a->nc < 100 ? a->nc : 100) ? ch0 : (a->nc < 100 ? a->nc : 100);
    char b[128];
    for (int l = 0; l < DET_LEVELS; l++) {
        int br[2];
        for (int k = 0; k < 2; k++) {
            int cc = k ? c3 : c2, o = k ? a->nc : 4 * DET_REG_MAX;
            const char *cv = k ? "cv3" : "cv2";
            snprintf(b, sizeof b, "%s.%s.%d.0", name, cv, l);
            int t = eng_g_conv_bn_silu(g, b, in[l], cc, 3, 1);
            snprintf(b, sizeof b, "%s.%s.%d.1", name, cv, l);
            t = eng_g_conv_bn_silu(g, b, t, cc, 3, 1);
            snprintf(b, sizeof b, "%s.%s.%d.2", name, cv, l);
            br[k] = eng_g_conv(g, b, t, o, 1, 1, 0, 1, 1);
        }
        outs[l] = eng_g_concat(g, br, 2);
    }
}

lupe_status det_build(eng_graph *g, const det_arch *a, int *input, int outs[DET_LEVELS])
{
    int t[NROWS];
    int x = eng_g_input(g, "images", a->batch, a->imgsz, a->imgsz, 3);
    *input = x;
    int prev = x;
    for (int i = 0; i < NROWS; i++) {
        const row *r = &yolov8[i];
        char name[32];
        snprintf(name, sizeof name, "model.%d", i);
        int src[3];
        for (int k = 0; k < r->nfrom; k++) src[k] = r->from[k] < 0 ? prev : t[r->from[k]];
        switch (r->m) {
        case M_CONV: t[i] = eng_g_conv_bn_silu(g, name, src[0], width(a, r->c), r->k, r->s); break;
        case M_C2F: t[i] = c2f(g, name, src[0], width(a, r->c), repeats(a, r->repeats), r->k); break;
        case M_SPPF: t[i] = sppf(g, name, src[0], width(a, r->c), r->k); break;
        case M_UP: t[i] = eng_g_upsample2(g, src[0]); break;
        case M_CONCAT: t[i] = eng_g_concat(g, src, r->nfrom); break;
        case M_DETECT:
            detect(g, name, a, src, outs);
            t[i] = outs[0];
            break;
        }
        if (t[i] < 0) return lupe_err(LUPE_EARG, "building %s (row %d): the graph refused it", name, i);
        prev = t[i];
    }
    return LUPE_OK;
}

/* YOLOv8's head biases: box distributions start flat-ish (bias 1) and class
 * logits at the log-odds of about 5 objects per 640x640 image spread over
 * the level's cells, so the first steps are not swamped by the background. */
lupe_status det_init_bias(eng_graph *g, const det_arch *a)
{
    const eng_param *p = NULL;
    int np = eng_graph_params(g, &p);
    int found = 0;
    for (int l = 0; l < DET_LEVELS; l++) {
        char box[64], cls[64];
        snprintf(box, sizeof box, "model.%d.cv2.%d.2.bias", NROWS - 1, l);
        snprintf(cls, sizeof cls, "model.%d.cv3.%d.2.bias", NROWS - 1, l);
        double s = 8 << l;
        float v = (float)log(5.0 / a->nc / ((640.0 / s) * (640.0 / s)));
        for (int i = 0; i < np; i++) {
            if (!strcmp(p[i].name, box)) {
                for (size_t k = 0; k < p[i].n; k++) p[i].w[k] = 1.0f;
                found++;
            } else if (!strcmp(p[i].name, cls)) {
                for (size_t k = 0; k < p[i].n; k++) p[i].w[k] = v;
                found++;
            }
        }
    }
    if (found != 2 * DET_LEVELS) return lupe_err(LUPE_EARG, "det_init_bias: the graph has no YOLOv8 head (found %d of %d biases)", found, 2 * DET_LEVELS);
    return LUPE_OK;
}
