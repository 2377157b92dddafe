/*
 * ONNX detectors for lupe predict: a YOLOv8-layout file (lupe's own export,
 * Ultralytics', or torch.onnx.export's) run through the ONNX import part,
 * with the same letterbox, confidence filter, class-aware NMS and mapping
 * back to the image as a lupe checkpoint gets. The file's output is
 * [1, 4 + nc, N]: box centre x, y, width, height in input pixels, then the
 * classes' scores, already through the sigmoid.
 */
#include <string.h>

#include "infer/infer_internal.h"
#include "lupe/onnx.h"

struct inf_onnx {
    onnx_net *net;
    int imgsz, nc, nanchors;
    char **classes; /* from the "names" metadata, else "0", "1", ... */
    float *nhwc, *nchw, *out;
    det_pred *cand; /* nanchors * nc candidates at most */
};

void inf_onnx_free(inf_onnx *m)
{
    if (!m) return;
    onnx_net_free(m->net);
    onnx_names_free(m->classes, m->nc);
    lupe_free(m->nhwc);
    lupe_free(m->nchw);
    lupe_free(m->out);
    lupe_free(m->cand);
    lupe_free(m);
}

/* Class names: the file's own when its "names" metadata lists exactly nc,
 * otherwise the class numbers. */
static lupe_status load_names(inf_onnx *m)
{
    const char *text = onnx_net_meta(m->net, "names");
    char **names = NULL;
    int n = 0;
    if (text && !onnx_parse_names(text, &names, &n) && n == m->nc) {
        m->classes = names;
        return LUPE_OK;
    }
    onnx_names_free(names, n);
    lupe_err_clear();
    if (!(m->classes = lupe_calloc((size_t)m->nc, sizeof *m->classes))) return LUPE_ENOMEM;
    for (int i = 0; i < m->nc; i++)
        if (!(m->classes[i] = lupe_asprintf("%d", i))) return LUPE_ENOMEM;
    return LUPE_OK;
}

lupe_status inf_onnx_open(const char *path, int threads, inf_onnx **out)
{
    *out = NULL;
    inf_onnx *m = lupe_calloc(1, sizeof *m);
    if (!m) return LUPE_ENOMEM;
    lupe_status st = onnx_net_load(path, threads, &m->net);
    if (st) goto fail;
    int in[4];
    onnx_net_input_shape(m->net, in);
    int64_t od[6];
    const int rank = onnx_net_output_shape(m->net, od);
    if (in[0] != 1 || in[1] != 3 || in[2] != in[3]) {
        st = lupe_err(LUPE_EUNSUPPORTED,
                      "%s: input is [%d, %d, %d, %d]; lupe predict runs square RGB detectors of one image, [1, 3, N, N]",
                      path, in[0], in[1], in[2], in[3]);
        goto fail;
    }
    if (rank != 3 || od[0] != 1 || od[1] < 5 || od[2] < 1 || od[1] > 4 + 4096) {
        st = lupe_err(LUPE_EUNSUPPORTED,
                      "%s: output has rank %d; expected the YOLOv8 layout [1, 4 + classes, anchors] without NMS", path,
                      rank);
        goto fail;
    }
    m->imgsz = in[2];
    m->nc = (int)od[1] - 4;
    m->nanchors = (int)od[2];
    const size_t pix = (size_t)m->imgsz * m->imgsz * 3;
    if ((st = load_names(m))) goto fail;
    if (!(m->nhwc = lupe_malloc(pix * sizeof *m->nhwc)) || !(m->nchw = lupe_malloc(pix * sizeof *m->nchw)) ||
        !(m->out = lupe_malloc(onnx_net_output_numel(m->net) * sizeof *m->out)) ||
        !(m->cand = lupe_malloc((size_t)m->nanchors * m->nc * sizeof *m->cand))) {
        st = LUPE_ENOMEM;
        goto fail;
    }
    *out = m;
    return LUPE_OK;
fail:
    inf_onnx_free(m);
    return st;
}

int inf_onnx_imgsz(const inf_onnx *m)
{
    return m->imgsz;
}

int inf_onnx_nc(const inf_onnx *m)
{
    return m->nc;
}

char *const *inf_onnx_classes(const inf_onnx *m)
{
    return m->classes;
}

int inf_onnx_decode(const float *out, int nc, int nanchors, float conf, float iou, int max_det, det_pred *cand,
                    det_pred *dst)
{
    int k = 0;
    const float *cx = out, *cy = out + nanchors, *w = out + 2 * (size_t)nanchors, *h = out + 3 * (size_t)nanchors;
    for (int c = 0; c < nc; c++) {
        const float *s = out + (size_t)(4 + c) * nanchors;
        for (int j = 0; j < nanchors; j++) {
            if (!(s[j] >= conf)) continue; /* NaN is no detection */
            cand[k++] = (det_pred){.x1 = cx[j] - w[j] * 0.5f, .y1 = cy[j] - h[j] * 0.5f, .x2 = cx[j] + w[j] * 0.5f,
                                   .y2 = cy[j] + h[j] * 0.5f, .score = s[j], .cls = c};
        }
    }
    k = det_nms(cand, k, iou, max_det);
    memcpy(dst, cand, (size_t)k * sizeof *dst);
    return k;
}

lupe_status inf_onnx_predict(inf_onnx *m, const lupe_img *im, float conf, float iou, int max_det, det_pred *out,
                             int *n)
{
    *n = 0;
    inf_letterbox lb;
    lupe_status st = inf_letterbox_image(im, m->imgsz, m->nhwc, &lb);
    if (st) return st;
    const size_t hw = (size_t)m->imgsz * m->imgsz;
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++) m->nchw[c * hw + i] = m->nhwc[3 * i + c];
    if ((st = onnx_net_run(m->net, m->nchw, m->out))) return st;
    int k = inf_onnx_decode(m->out, m->nc, m->nanchors, conf, iou, max_det, m->cand, out);
    inf_unletterbox(out, k, &lb);
    *n = k;
    return LUPE_OK;
}
