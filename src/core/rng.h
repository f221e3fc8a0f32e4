/* rng.h — deterministic random numbers (splitmix64-seeded xoshiro256**), identical on every
 * platform, for weight initialisation and sampling. State is a plain struct: copy it to
 * checkpoint it. */
#ifndef ER_RNG_H
#define ER_RNG_H
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} er_rng;

void er_rng_seed(er_rng *r, uint64_t seed);
uint64_t er_rng_next(er_rng *r);
/* uniform in [0, 1) with 53 random bits */
double er_rng_uniform(er_rng *r);
/* uniform integer in [0, n), n > 0, without modulo bias */
uint64_t er_rng_below(er_rng *r, uint64_t n);
/* standard normal (Box-Muller, one value per call) */
double er_rng_normal(er_rng *r);
#endif
