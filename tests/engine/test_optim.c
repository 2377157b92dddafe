/*
 * Tests of the optimizers, the weight EMA and the learning-rate schedule
 * against values worked out by hand from PyTorch's update rules.
 */
#include <math.h>

#include "lib/testutil.h"
#include "lupe/engine.h"

#define NEAR(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-6)

static void run_sgd(int nesterov, float *w_out, int steps)
{
    float w = 1.0f, g = 1.0f;
    eng_param p = {.name = "w", .w = &w, .g = &g, .n = 1, .group = ENG_GROUP_NORM};
    eng_optim_cfg cfg = {.kind = ENG_SGD, .nesterov = nesterov};
    eng_optim *o = NULL;
    assert_int_equal(eng_optim_new(&cfg, &p, 1, &o), LUPE_OK);
    const float lr[ENG_NGROUPS] = {0.1f, 0.1f, 0.1f};
    for (int i = 0; i < steps; i++) {
        eng_optim_step(o, lr, 0.9f);
        w_out[i] = w;
    }
    assert_int_equal(eng_optim_steps(o), steps);
    eng_optim_free(o);
}

static void test_sgd(void **state)
{
    (void)state;
    float w[3];
    run_sgd(0, w, 3); /* buf 1, 1.9, 2.71 */
    NEAR(w[0], 0.9), NEAR(w[1], 0.71), NEAR(w[2], 0.439);
    run_sgd(1, w, 2); /* d = g + m buf: 1.9, then 1 + 0.9 * 1.9 */
    NEAR(w[0], 0.81), NEAR(w[1], 0.539);
}

static void test_weight_decay_groups(void **state)
{
    (void)state;
    float w[3] = {2, 2, 2}, g[3] = {0, 0, 0};
    eng_param p[3] = {{"conv.w", &w[0], &g[0], 1, ENG_GROUP_DECAY},
                      {"bn.w", &w[1], &g[1], 1, ENG_GROUP_NORM},
                      {"conv.b", &w[2], &g[2], 1, ENG_GROUP_BIAS}};
    eng_optim_cfg cfg = {.kind = ENG_SGD, .weight_decay = 0.5f};
    eng_optim *o = NULL;
    assert_int_equal(eng_optim_new(&cfg, p, 3, &o), LUPE_OK);
    const float lr[ENG_NGROUPS] = {0.1f, 0.1f, 0.1f};
    eng_optim_step(o, lr, 0.0f);
    NEAR(w[0], 1.9); /* d = 0.5 * 2 */
    NEAR(w[1], 2.0);
    NEAR(w[2], 2.0);
    g[0] = 5;
    eng_optim_zero_grad(o);
    assert_true(g[0] == 0);
    eng_optim_free(o);
    eng_param bad = {"x", NULL, NULL, 1, 0};
    assert_int_equal(eng_optim_new(&cfg, &bad, 1, &o), LUPE_EARG);
}

static void test_adamw(void **state)
{
    (void)state;
    float w[2] = {1.0f, 1.0f}, g[2] = {0.5f, -2.0f};
    eng_param p = {"w", w, g, 2, ENG_GROUP_DECAY};
    eng_optim_cfg cfg = {.kind = ENG_ADAMW, .weight_decay = 0.1f, .beta2 = 0.999f, .eps = 1e-8f};
    eng_optim *o = NULL;
    assert_int_equal(eng_optim_new(&cfg, &p, 1, &o), LUPE_OK);
    const float lr[ENG_NGROUPS] = {0.01f, 0.01f, 0.01f};
    eng_optim_step(o, lr, 0.9f);
    /* Step 1: bias-corrected m/sqrt(v) = sign(g); decay first: w (1 - lr wd). */
    NEAR(w[0], 1.0 * (1 - 0.001) - 0.01);
    NEAR(w[1], 1.0 * (1 - 0.001) + 0.01);
    /* Step 2 with the same gradient: still sign(g), by the bias correction. */
    eng_optim_step(o, lr, 0.9f);
    NEAR(w[0], (0.989 * (1 - 0.001)) - 0.01);
    float *s1, *s2;
    eng_optim_state(o, 0, &s1, &s2);
    assert_non_null(s2);
    NEAR(s1[0], 0.9 * 0.05 + 0.05);
    eng_optim_free(o);
}

static void test_ema(void **state)
{
    (void)state;
    float w[2] = {1.0f, 2.0f};
    float *ws[1] = {w};
    size_t n[1] = {2};
    eng_ema *e = NULL;
    assert_int_equal(eng_ema_new(ws, n, 1, 0.5f, 1.0f, &e), LUPE_OK);
    w[0] = 3.0f;
    eng_ema_update(e);
    double d = 0.5 * (1 - exp(-1.0));
    NEAR(eng_ema_values(e, 0)[0], d * 1.0 + (1 - d) * 3.0);
    NEAR(eng_ema_values(e, 0)[1], 2.0);
    assert_int_equal(eng_ema_updates(e), 1);
    eng_ema_free(e);
}

static void test_schedule(void **state)
{
    (void)state;
    eng_sched s = {.kind = ENG_SCHED_LINEAR, .lr0 = 0.01f, .lrf = 0.01f, .epochs = 100, .warmup_iters = 1000,
                   .warmup_bias_lr = 0.1f, .warmup_momentum = 0.8f, .momentum = 0.937f};
    float lr[ENG_NGROUPS], m;
    eng_sched_at(&s, 0, 0, lr, &m);
    NEAR(lr[ENG_GROUP_BIAS], 0.1), NEAR(lr[ENG_GROUP_DECAY], 0.0), NEAR(m, 0.8);
    eng_sched_at(&s, 0, 500, lr, &m);
    NEAR(lr[ENG_GROUP_BIAS], 0.055), NEAR(lr[ENG_GROUP_NORM], 0.005), NEAR(m, 0.8685);
    eng_sched_at(&s, 50, 100000, lr, &m);
    NEAR(lr[ENG_GROUP_DECAY], 0.01 * (0.5 * 0.99 + 0.01)), NEAR(m, 0.937);
    eng_sched_at(&s, 100, 100000, lr, &m);
    NEAR(lr[ENG_GROUP_DECAY], 0.0001);
    s.kind = ENG_SCHED_COSINE;
    eng_sched_at(&s, 50, 100000, lr, &m);
    NEAR(lr[ENG_GROUP_BIAS], 0.01 * (1 + 0.01) / 2);
    eng_sched_at(&s, 0, 100000, lr, &m);
    NEAR(lr[ENG_GROUP_BIAS], 0.01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),  cmocka_unit_test(test_weight_decay_groups), cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_ema),  cmocka_unit_test(test_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
