/*
 * Optimizers (SGD with momentum and Nesterov, AdamW), the exponential
 * moving average of weights, and YOLOv8's learning-rate schedule with
 * warmup. The update rules follow PyTorch's SGD and AdamW step by step, so
 * a run can be checked against PyTorch to the last bit of float rounding.
 */
#include <math.h>
#include <string.h>

#include "lupe/engine.h"

struct eng_optim {
    eng_optim_cfg cfg;
    eng_param *p;
    int np;
    float **s1, **s2; /* SGD: momentum buffer; AdamW: first and second moments */
    int64_t steps;
};

void eng_optim_free(eng_optim *o)
{
    if (!o) return;
    for (int i = 0; i < o->np; i++) {
        if (o->s1) lupe_free(o->s1[i]);
        if (o->s2) lupe_free(o->s2[i]);
    }
    lupe_free(o->s1);
    lupe_free(o->s2);
    lupe_free(o->p);
    lupe_free(o);
}

lupe_status eng_optim_new(const eng_optim_cfg *cfg, const eng_param *params, int np, eng_optim **out)
{
    if (np < 1) return lupe_err(LUPE_EARG, "an optimizer needs parameters");
    for (int i = 0; i < np; i++)
        if (params[i].group < 0 || params[i].group >= ENG_NGROUPS || !params[i].w || !params[i].g)
            return lupe_err(LUPE_EARG, "parameter %d (%s) has no buffers or a bad group", i,
                            params[i].name ? params[i].name : "?");
    eng_optim *o = lupe_calloc(1, sizeof *o);
    if (!o) return LUPE_ENOMEM;
    o->cfg = *cfg;
    o->np = np;
    o->p = lupe_malloc((size_t)np * sizeof *o->p);
    o->s1 = lupe_calloc((size_t)np, sizeof *o->s1);
    o->s2 = cfg->kind == ENG_ADAMW ? lupe_calloc((size_t)np, sizeof *o->s2) : NULL;
    if (!o->p || !o->s1 || (cfg->kind == ENG_ADAMW && !o->s2)) goto oom;
    memcpy(o->p, params, (size_t)np * sizeof *o->p);
    for (int i = 0; i < np; i++) {
        if (!(o->s1[i] = lupe_calloc(params[i].n, sizeof(float)))) goto oom;
        if (o->s2 && !(o->s2[i] = lupe_calloc(params[i].n, sizeof(float)))) goto oom;
    }
    *out = o;
    return LUPE_OK;
oom:
    eng_optim_free(o);
    return LUPE_ENOMEM;
}

void eng_optim_step(eng_optim *o, const float lr[ENG_NGROUPS], float momentum)
{
    o->steps++;
    const eng_optim_cfg *c = &o->cfg;
    for (int i = 0; i < o->np; i++) {
        eng_param *p = &o->p[i];
        float a = lr[p->group];
        float wd = p->group == ENG_GROUP_DECAY ? c->weight_decay : 0.0f;
        float *buf = o->s1[i];
        if (c->kind == ENG_SGD) {
            /* PyTorch: d = g + wd w; buf = m buf + d (buf = d at the first
             * step); d = nesterov ? d + m buf : buf; w -= lr d. */
            for (size_t k = 0; k < p->n; k++) {
                float d = p->g[k] + wd * p->w[k];
                buf[k] = o->steps == 1 ? d : momentum * buf[k] + d;
                d = c->nesterov ? d + momentum * buf[k] : buf[k];
                p->w[k] -= a * d;
            }
        } else {
            /* PyTorch AdamW: decoupled decay, bias-corrected moments. */
            float *v = o->s2[i];
            float b1 = momentum, b2 = c->beta2;
            double bc1 = 1.0 - pow(b1, (double)o->steps), bc2 = 1.0 - pow(b2, (double)o->steps);
            float step = (float)(a / bc1), bc2s = (float)sqrt(bc2);
            for (size_t k = 0; k < p->n; k++) {
                float g = p->g[k];
                p->w[k] *= 1.0f - a * wd;
                buf[k] = b1 * buf[k] + (1.0f - b1) * g;
                v[k] = b2 * v[k] + (1.0f - b2) * g * g;
                p->w[k] -= step * buf[k] / (sqrtf(v[k]) / bc2s + c->eps);
            }
        }
    }
}

void eng_optim_zero_grad(eng_optim *o)
{
    for (int i = 0; i < o->np; i++) memset(o->p[i].g, 0, o->p[i].n * sizeof(float));
}

int64_t eng_optim_steps(const eng_optim *o)
{
    return o->steps;
}

void eng_optim_set_steps(eng_optim *o, int64_t steps)
{
    o->steps = steps;
}

void eng_optim_state(eng_optim *o, int i, float **s1, float **s2)
{
    *s1 = o->s1[i];
    *s2 = o->s2 ? o->s2[i] : NULL;
}

struct eng_ema {
    float **w, **ema;
    size_t *n;
    int count;
    float decay, tau;
    int64_t updates;
};

void eng_ema_free(eng_ema *e)
{
    if (!e) return;
    for (int i = 0; e->ema && i < e->count; i++) lupe_free(e->ema[i]);
    lupe_free(e->ema);
    lupe_free(e->w);
    lupe_free(e->n);
    lupe_free(e);
}

lupe_status eng_ema_new(float *const *w, const size_t *n, int count, float decay, float tau, eng_ema **out)
{
    eng_ema *e = lupe_calloc(1, sizeof *e);
    if (!e) return LUPE_ENOMEM;
    e->count = count, e->decay = decay, e->tau = tau;
    e->w = lupe_malloc((size_t)count * sizeof *e->w);
    e->n = lupe_malloc((size_t)count * sizeof *e->n);
    e->ema = lupe_calloc((size_t)count, sizeof *e->ema);
    if (!e->w || !e->n || !e->ema) goto oom;
    for (int i = 0; i < count; i++) {
        e->w[i] = w[i];
        e->n[i] = n[i];
        if (!(e->ema[i] = lupe_malloc(n[i] * sizeof(float)))) goto oom;
        memcpy(e->ema[i], w[i], n[i] * sizeof(float));
    }
    *out = e;
    return LUPE_OK;
oom:
    eng_ema_free(e);
    return LUPE_ENOMEM;
}

void eng_ema_update(eng_ema *e)
{
    e->updates++;
    float d = e->decay * (1.0f - expf(-(float)e->updates / e->tau));
    for (int i = 0; i < e->count; i++)
        for (size_t k = 0; k < e->n[i]; k++) e->ema[i][k] = d * e->ema[i][k] + (1.0f - d) * e->w[i][k];
}

float *eng_ema_values(eng_ema *e, int i)
{
    return e->ema[i];
}

int64_t eng_ema_updates(const eng_ema *e)
{
    return e->updates;
}

void eng_ema_set_updates(eng_ema *e, int64_t updates)
{
    e->updates = updates;
}

void eng_sched_at(const eng_sched *s, int epoch, int64_t iter, float lr[ENG_NGROUPS], float *momentum)
{
    double x = (double)epoch, E = s->epochs > 0 ? (double)s->epochs : 1.0;
    double f = s->kind == ENG_SCHED_LINEAR ? (1.0 - x / E) * (1.0 - s->lrf) + s->lrf
                                           : ((1.0 - cos(x * M_PI / E)) / 2.0) * (s->lrf - 1.0) + 1.0;
    double base = s->lr0 * f;
    double m = s->momentum;
    for (int g = 0; g < ENG_NGROUPS; g++) lr[g] = (float)base;
    if (iter < s->warmup_iters) {
        /* Linear interpolation over the warmup, as numpy.interp. */
        double t = (double)iter / (double)s->warmup_iters;
        for (int g = 0; g < ENG_NGROUPS; g++) {
            double from = g == ENG_GROUP_BIAS ? s->warmup_bias_lr : 0.0;
            lr[g] = (float)(from + t * (base - from));
        }
        m = s->warmup_momentum + t * (s->momentum - s->warmup_momentum);
    }
    *momentum = (float)m;
}
