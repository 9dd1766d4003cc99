/* A barrier for a team of threads that meet many times per call (a recurrent model step
 * of one stream: two barriers per residual block, about 90 per audio sample).
 *
 * OpenMP's barrier in libgomp ends every wait with a futex_wake system call, taken by the
 * last thread to arrive, even when nobody sleeps: measured on one-stream Sashimi generation
 * (2 threads, perf), libgomp's barrier and the futex calls were 27% + 5% of the time. This
 * one is a counter and a generation number in user space: the last thread to arrive bumps
 * the generation (release) and the others spin on it (acquire), so whatever a thread wrote
 * before the barrier is visible to every thread after it. A waiter spins with the CPU's
 * pause hint and, after S4_BARRIER_SPINS rounds, yields its core on every round, so a team
 * larger than the free cores (a thread descheduled while the others wait) still makes
 * progress instead of burning whole time slices.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CORE_BARRIER_H
#define S4_CORE_BARRIER_H

#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>

enum { S4_BARRIER_SPINS = 4096 };

/* One cache line each: arriving threads write count, waiting threads read gen. */
typedef struct s4__barrier {
    alignas(64) atomic_int count;
    alignas(64) atomic_int gen;
} s4__barrier;

/* Before the team starts (by one thread). */
static inline void s4__barrier_init(s4__barrier *b)
{
    atomic_init(&b->count, 0);
    atomic_init(&b->gen, 0);
}

static inline void s4__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Every one of the nt threads of the team calls it; returns when all have. */
static inline void s4__barrier_wait(s4__barrier *b, int nt)
{
    if (nt <= 1)
        return;
    const int g = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == nt - 1) {
        /* The last: nobody touches count until gen moves, so reset it first. */
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_store_explicit(&b->gen, g + 1, memory_order_release);
        return;
    }
    for (unsigned spins = 0; atomic_load_explicit(&b->gen, memory_order_acquire) == g; spins++) {
        if (spins < S4_BARRIER_SPINS)
            s4__cpu_relax();
        else
            sched_yield();
    }
}

#endif
