/*
 * Running a planned ONNX net: copy the input into the arena (in the layout
 * its first readers want), run the steps in order, copy the output back in
 * ONNX's order. Nothing is allocated; every pointer was resolved at load.
 */
#include <string.h>

#include "onnx/net_internal.h"

static lupe_status run_step(onnx_net *net, const ox_step *s)
{
    float *const *P = net->ptr;
    float *out = P[s->out] ? P[s->out] + s->ooff : NULL;
    const float *in = s->in[0] >= 0 ? P[s->in[0]] + s->ioff : NULL;
    const int t = net->threads;
    switch (s->kind) {
    case S_CONV: {
        void *scratch = (char *)net->arena + net->scratch_off;
        return eng_conv_infer_forward(s->p.conv.h, out, in, NULL, scratch);
    }
    case S_COPY: ox__copy(out, in, &s->p.cpy, t); break;
    case S_UNARY: ox__unary_run(out, in, s->p.un.n, s->p.un.op, s->p.un.alpha, t); break;
    case S_BINARY: ox__binary(out, in, P[s->in[1]], &s->p.bin, t); break;
    case S_AFFINE: ox__affine(out, in, s->p.aff.scale, s->p.aff.shift, s->p.aff.outer, s->p.aff.c, s->p.aff.inner, t); break;
    case S_CONCAT_C: {
        const float *ins[OX_MAXIO];
        for (int k = 0; k < s->p.cat.k; k++) ins[k] = P[s->p.cat.ins[k]];
        eng_concat_forward_fast(out, ins, s->p.cat.cs, s->p.cat.k, (size_t)s->p.cat.m);
        break;
    }
    case S_SLICE_C:
        eng_slice_forward_fast(out, in, (size_t)s->p.sl.m, s->p.sl.ci, s->p.sl.c0, s->p.sl.co);
        break;
    case S_MAXPOOL_SAME:
        eng_maxpool_forward_fast(out, in, s->p.mp.n, s->p.mp.h, s->p.mp.w, s->p.mp.c, s->p.mp.kh);
        break;
    case S_MAXPOOL: ox__maxpool(out, in, s, t); break;
    case S_RESIZE: ox__resize_nearest(out, in, s, t); break;
    case S_SOFTMAX: ox__softmax(out, in, s->p.sm.outer, s->p.sm.n, s->p.sm.inner, t); break;
    }
    return LUPE_OK;
}

static lupe_status run(onnx_net *net, const float *input_nchw, float *output, double *step_ms)
{
    lupe_status st;
    /* The engine's fast ops read the process-wide thread count. */
    if (eng_get_threads() != net->threads) eng_set_threads(net->threads);
    ox__copy(net->ptr[net->input], input_nchw, &net->cpy_in, net->threads);
    for (int i = 0; i < net->nsteps; i++) {
        const double t0 = step_ms ? lupe_time_mono() : 0;
        if ((st = run_step(net, &net->steps[i]))) return lupe_err_ctx(st, "running step %d", i);
        if (step_ms) step_ms[i] = (lupe_time_mono() - t0) * 1e3;
    }
    ox__copy(output, net->ptr[net->output], &net->cpy_out, net->threads);
    return LUPE_OK;
}

lupe_status onnx_net_run(onnx_net *net, const float *input_nchw, float *output)
{
    return run(net, input_nchw, output, NULL);
}

lupe_status onnx_net_run_timed(onnx_net *net, const float *input_nchw, float *output, double *step_ms)
{
    return run(net, input_nchw, output, step_ms);
}

int onnx_net_steps(const onnx_net *net)
{
    return net->nsteps;
}

void onnx_net_input_shape(const onnx_net *net, int dims[4])
{
    memcpy(dims, net->in_dims, 4 * sizeof *dims);
}

int onnx_net_output_shape(const onnx_net *net, int64_t dims[6])
{
    memcpy(dims, net->out_dims, (size_t)net->out_rank * sizeof *dims);
    return net->out_rank;
}

size_t onnx_net_input_numel(const onnx_net *net)
{
    return (size_t)net->in_numel;
}

size_t onnx_net_output_numel(const onnx_net *net)
{
    return (size_t)net->out_numel;
}

const onnx_net_stats *onnx_net_get_stats(const onnx_net *net)
{
    return &net->stats;
}
