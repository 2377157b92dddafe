/*
 * The synthetic tags' randomness: per-image streams (splitmix64 seeding
 * xoshiro256**), integer hashes, value noise, and exp/sin/cos written as
 * plain arithmetic so that every machine and build computes the same bits.
 */
#include <math.h>

#include "synth/synth_internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void synth__rng_seed(synth_rng *r, uint64_t seed, uint64_t index, uint64_t stream)
{
    /* Each of seed, index and stream passes through the mixer before the
     * next is folded in, so (1, 2) and (2, 1) give unrelated streams. */
    uint64_t k = seed;
    k = splitmix64(&k) ^ index;
    k = splitmix64(&k) ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&k);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t synth__rng_next(synth_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double synth__uniform(synth_rng *r)
{
    return (double)(synth__rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double synth__range(synth_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * synth__uniform(r);
}

int synth__int(synth_rng *r, int lo, int hi)
{
    if (hi <= lo) return lo;
    uint64_t span = (uint64_t)((int64_t)hi - lo) + 1;
    /* Multiply-shift: the bias is below 2^-32 for any span an image uses. */
    return lo + (int)(((synth__rng_next(r) >> 32) * span) >> 32);
}

int synth__chance(synth_rng *r, double p)
{
    return synth__uniform(r) < p;
}

double synth__gauss(synth_rng *r)
{
    /* Irwin-Hall with four terms: variance 1/3 before scaling; close enough
     * to a normal for jitter, and free of log and cos. One draw per
     * statement (see the header). */
    double s = 0;
    for (int i = 0; i < 4; i++) s += synth__uniform(r);
    return (s - 2.0) * 1.7320508075688772;
}

uint32_t synth__seed32(synth_rng *r)
{
    return (uint32_t)(synth__rng_next(r) >> 32);
}

double synth__exp(double x)
{
    if (x < -700) return 0;
    if (x > 700) x = 700;
    /* x = k ln2 + f with |f| <= ln2/2; e^f by its series to the 13th term
     * (error below 1e-15), then scaled by 2^k exactly. */
    double k = floor(x * 1.4426950408889634 + 0.5);
    double f = x - k * 0.6931471803691238 - k * 1.9082149292705877e-10;
    double term = 1, sum = 1;
    for (int i = 1; i <= 13; i++) {
        term *= f / i;
        sum += term;
    }
    return ldexp(sum, (int)k);
}

double synth__log(double x)
{
    if (!(x > 0)) return -1e300;
    /* x = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(z), z =
     * (m-1)/(m+1), |z| < 0.172, by its series to z^31 (error below 1e-17). */
    int e;
    double m = frexp(x, &e);
    if (m < 0.7071067811865476) m *= 2, e--;
    double z = (m - 1) / (m + 1), z2 = z * z, term = z, sum = z;
    for (int k = 3; k <= 31; k += 2) {
        term *= z2;
        sum += term / k;
    }
    return 2 * sum + e * 0.6931471805599453;
}

double synth__pow(double x, double p)
{
    return x > 0 ? synth__exp(p * synth__log(x)) : 0;
}

/* sin and cos on [-pi/4, pi/4] by their series (error below 1e-16). */
static double sin_small(double x)
{
    double x2 = x * x, term = x, sum = x;
    for (int i = 1; i <= 8; i++) {
        term *= -x2 / ((2 * i) * (2 * i + 1));
        sum += term;
    }
    return sum;
}

static double cos_small(double x)
{
    double x2 = x * x, term = 1, sum = 1;
    for (int i = 1; i <= 8; i++) {
        term *= -x2 / ((2 * i - 1) * (2 * i));
        sum += term;
    }
    return sum;
}

/* x = q pi/2 + f with |f| <= pi/4; q mod 4 picks the function and sign. */
static void reduce(double x, double *f, int *q)
{
    double k = floor(x * 0.6366197723675814 + 0.5);
    *f = x - k * 1.5707963267341256 - k * 6.0771005065061922e-11;
    long long kk = (long long)k;
    *q = (int)(((kk % 4) + 4) % 4);
}

double synth__sin(double x)
{
    double f;
    int q;
    reduce(x, &f, &q);
    switch (q) {
    case 0: return sin_small(f);
    case 1: return cos_small(f);
    case 2: return -sin_small(f);
    default: return -cos_small(f);
    }
}

double synth__cos(double x)
{
    double f;
    int q;
    reduce(x, &f, &q);
    switch (q) {
    case 0: return cos_small(f);
    case 1: return -sin_small(f);
    case 2: return -cos_small(f);
    default: return sin_small(f);
    }
}

uint32_t synth__hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static inline float lattice(int ix, int iy, uint32_t seed)
{
    uint32_t h = synth__hash32((uint32_t)ix * 0x9e3779b1u ^ synth__hash32((uint32_t)iy + seed));
    return (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

float synth__vnoise(float x, float y, uint32_t seed)
{
    float fx = floorf(x), fy = floorf(y);
    int ix = (int)fx, iy = (int)fy;
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3.f - 2.f * tx);
    ty = ty * ty * (3.f - 2.f * ty);
    float a = lattice(ix, iy, seed), b = lattice(ix + 1, iy, seed);
    float c = lattice(ix, iy + 1, seed), d = lattice(ix + 1, iy + 1, seed);
    float top = a + (b - a) * tx, bot = c + (d - c) * tx;
    return top + (bot - top) * ty;
}

float synth__vnoise1(float x, uint32_t seed)
{
    float fx = floorf(x);
    int ix = (int)fx;
    float t = x - fx;
    t = t * t * (3.f - 2.f * t);
    float a = lattice(ix, 0x5bd1e995, seed), b = lattice(ix + 1, 0x5bd1e995, seed);
    return a + (b - a) * t;
}
