/* clock.h — the monotonic wall clock in seconds: phase times, rates, deadlines. The one
 * definition (every module used to carry its own copy). */
#ifndef ER_CORE_CLOCK_H
#define ER_CORE_CLOCK_H

#include <time.h>

static inline double er_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
