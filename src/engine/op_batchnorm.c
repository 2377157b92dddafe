/*
 * Reference batch normalization over NHWC rows (m = N*H*W rows of c
 * channels), with PyTorch BatchNorm2d's semantics: biased variance to
 * normalize, unbiased variance and PyTorch's momentum for the running
 * statistics, and folding of inference batch norm into a convolution;
 * and batch norm followed by SiLU as one op (YOLOv8's Conv tail).
 */
#include <assert.h>
#include <math.h>

#include "engine/op_sigmoid.h"
#include "lupe/engine.h"

void eng_bn_forward_train_ref(float *out, float *mean, float *invstd, const float *in, const float *gamma,
                              const float *beta, size_t m, int c, float eps)
{
    assert(out && mean && invstd && in && gamma && beta && m > 0 && c > 0);
    for (int ch = 0; ch < c; ch++) {
        /* Two passes in double: the one-pass E[x^2] - E[x]^2 loses the
         * variance to cancellation when the mean is large. */
        double s = 0.0;
        for (size_t r = 0; r < m; r++) s += in[r * c + ch];
        const double mu = s / (double)m;
        double v = 0.0;
        for (size_t r = 0; r < m; r++) {
            const double t = in[r * c + ch] - mu;
            v += t * t;
        }
        const double is = 1.0 / sqrt(v / (double)m + eps);
        mean[ch] = (float)mu;
        invstd[ch] = (float)is;
        const double g = gamma[ch], bt = beta[ch];
        for (size_t r = 0; r < m; r++) out[r * c + ch] = (float)((in[r * c + ch] - mu) * is * g + bt);
    }
}

void eng_bn_update_running(float *rmean, float *rvar, const float *mean, const float *invstd, size_t m, int c,
                           float eps, float momentum)
{
    assert(rmean && rvar && mean && invstd && m > 0 && c > 0);
    for (int ch = 0; ch < c; ch++) {
        /* The batch variance comes back from invstd = 1/sqrt(var + eps);
         * rounding can make a near-zero variance slightly negative. */
        const double is = invstd[ch];
        double var = 1.0 / (is * is) - eps;
        if (var < 0) var = 0;
        /* Unbiased, as PyTorch; with one row it is undefined (PyTorch
         * refuses to train then), so the biased value, 0, is kept. */
        if (m > 1) var *= (double)m / (double)(m - 1);
        rmean[ch] = (float)((1.0 - momentum) * rmean[ch] + momentum * (double)mean[ch]);
        rvar[ch] = (float)((1.0 - momentum) * rvar[ch] + momentum * var);
    }
}

void eng_bn_forward_infer_ref(float *out, const float *in, const float *gamma, const float *beta, const float *rmean,
                              const float *rvar, size_t m, int c, float eps)
{
    assert(out && in && gamma && beta && rmean && rvar && c > 0);
    for (int ch = 0; ch < c; ch++) {
        const double scale = gamma[ch] / sqrt((double)rvar[ch] + eps);
        const double mu = rmean[ch], bt = beta[ch];
        for (size_t r = 0; r < m; r++) out[r * c + ch] = (float)((in[r * c + ch] - mu) * scale + bt);
    }
}

/* With xh = (x - mean) * invstd and y = gamma * xh + beta, the gradient
 * through the batch statistics is
 *   dbeta  = sum dy,   dgamma = sum dy * xh,
 *   dx     = gamma * invstd / m * (m * dy - dbeta - xh * dgamma),
 * where dbeta and dgamma are this call's sums, not the accumulated buffers. */
void eng_bn_backward_ref(float *din, float *dgamma, float *dbeta, const float *dout, const float *in, const float *mean,
                         const float *invstd, const float *gamma, size_t m, int c)
{
    assert(dout && in && mean && invstd && gamma && m > 0 && c > 0);
    for (int ch = 0; ch < c; ch++) {
        const double mu = mean[ch], is = invstd[ch];
        double sdy = 0.0, sdyxh = 0.0;
        for (size_t r = 0; r < m; r++) {
            const double dy = dout[r * c + ch];
            sdy += dy;
            sdyxh += dy * (in[r * c + ch] - mu) * is;
        }
        if (dbeta) dbeta[ch] += (float)sdy;
        if (dgamma) dgamma[ch] += (float)sdyxh;
        if (!din) continue;
        const double k = gamma[ch] * is / (double)m;
        for (size_t r = 0; r < m; r++) {
            const double xh = (in[r * c + ch] - mu) * is;
            din[r * c + ch] += (float)(k * ((double)m * dout[r * c + ch] - sdy - xh * sdyxh));
        }
    }
}

void eng_bn_fold(float *w, float *b, const float *gamma, const float *beta, const float *rmean, const float *rvar,
                 const eng_conv_dims *d, float eps)
{
    assert(w && b && gamma && beta && rmean && rvar && d && d->groups > 0);
    const size_t per_o = (size_t)d->kh * d->kw * (d->c / d->groups); /* OHWI: one output channel is contiguous */
    for (int o = 0; o < d->o; o++) {
        const double scale = gamma[o] / sqrt((double)rvar[o] + eps);
        float *wo = w + (size_t)o * per_o;
        for (size_t i = 0; i < per_o; i++) wo[i] = (float)(wo[i] * scale);
        b[o] = (float)(((double)b[o] - rmean[o]) * scale + beta[o]);
    }
}

/* ---- batch norm + SiLU -------------------------------------------------------
 * The forward passes are the two reference ops one after the other (SiLU in
 * place on the batch-norm output, which the fused op never keeps). */
void eng_bn_silu_forward_train_ref(float *out, float *mean, float *invstd, const float *in, const float *gamma,
                                   const float *beta, size_t m, int c, float eps)
{
    eng_bn_forward_train_ref(out, mean, invstd, in, gamma, beta, m, c, eps);
    eng_silu_forward_ref(out, out, m * (size_t)c);
}

void eng_bn_silu_forward_infer_ref(float *out, const float *in, const float *gamma, const float *beta,
                                   const float *rmean, const float *rvar, size_t m, int c, float eps)
{
    eng_bn_forward_infer_ref(out, in, gamma, beta, rmean, rvar, m, c, eps);
    eng_silu_forward_ref(out, out, m * (size_t)c);
}

/* dout * silu'(y) at y = (x - mu) * is * gamma + beta: the batch-norm output
 * recomputed from its input and the batch statistics. */
static double bn_silu_dy(double dout, double x, double mu, double is, double gamma, double beta)
{
    const double y = (x - mu) * is * gamma + beta, s = eng__sigmoid(y);
    return dout * s * (1.0 + y * (1.0 - s));
}

/* eng_bn_backward_ref applied to dy = dout * silu'(y), y recomputed as above
 * wherever dy is needed, so nothing of the size of the tensor is kept. */
void eng_bn_silu_backward_ref(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                              const float *mean, const float *invstd, const float *gamma, const float *beta, size_t m,
                              int c)
{
    assert(dout && in && mean && invstd && gamma && beta && m > 0 && c > 0);
    for (int ch = 0; ch < c; ch++) {
        const double mu = mean[ch], is = invstd[ch], g = gamma[ch], b = beta[ch];
        double sdy = 0.0, sdyxh = 0.0;
        for (size_t r = 0; r < m; r++) {
            const double x = in[r * c + ch], dy = bn_silu_dy(dout[r * c + ch], x, mu, is, g, b);
            sdy += dy;
            sdyxh += dy * (x - mu) * is;
        }
        if (dbeta) dbeta[ch] += (float)sdy;
        if (dgamma) dgamma[ch] += (float)sdyxh;
        if (!din) continue;
        const double k = g * is / (double)m;
        for (size_t r = 0; r < m; r++) {
            const double x = in[r * c + ch], xh = (x - mu) * is, dy = bn_silu_dy(dout[r * c + ch], x, mu, is, g, b);
            din[r * c + ch] += (float)(k * ((double)m * dy - sdy - xh * sdyxh));
        }
    }
}
