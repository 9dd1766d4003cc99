/* The library's own seeded generator, so a seed gives the same parameters everywhere.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_RNG_H
#define S4_RNG_H

#include <stdint.h>

/* xoshiro256** (Blackman and Vigna), state seeded by splitmix64 from one 64-bit seed. */
typedef struct s4_rng {
    uint64_t s[4];
} s4_rng;

void s4__rng_seed(s4_rng *rng, uint64_t seed);
uint64_t s4__rng_next(s4_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double s4__rng_uniform(s4_rng *rng);
/* Standard normal (Box-Muller, one value per call; the second is discarded so the stream
 * position depends only on the number of calls). */
double s4__rng_normal(s4_rng *rng);

#endif
