/* Seeded generator: xoshiro256** seeded by splitmix64.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void s4__rng_seed(s4_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

uint64_t s4__rng_next(s4_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double s4__rng_uniform(s4_rng *rng)
{
    return (double)(s4__rng_next(rng) >> 11) * 0x1.0p-53;
}

double s4__rng_normal(s4_rng *rng)
{
    /* 1 - u lies in (0, 1], so the logarithm is finite. */
    const double u1 = 1.0 - s4__rng_uniform(rng);
    const double u2 = s4__rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925286766559 * u2);
}
