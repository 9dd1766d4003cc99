/* A barrier for a team of threads that meet many times per call (a recurrent model step
 * of one stream: two barriers per residual block, about 90 per audio sample).
 *
 * OpenMP's barrier in libgomp ends every wait with a futex_wake system call, taken by the
 * last thread to arrive, even when nobody sleeps: measured on one-stream Sashimi generation
 * (2 threads, perf), libgomp's barrier and the futex calls were 27% + 5% of the time. This
 * one is a counter and a generation number in user space: the last thread to arrive bumps
 * the generation (release) and the others spin on it (acquire), so whatever a thread wrote
 * before the barrier is visible to every thread after it. A waiter spins with the CPU's
 * pause hint for S4_BARRIER_SPINS rounds (some 10-20 microseconds: a team's barriers come
 * every microsecond or so), then sleeps on the generation (a futex on Linux, yielding
 * elsewhere), counted in `sleepers`, so that a team larger than the free cores (a thread
 * descheduled while the others wait, another process on the cores) does not burn the
 * time the late thread needs; the last thread makes the wake-up call only when someone
 * sleeps.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CORE_BARRIER_H
#define S4_CORE_BARRIER_H

#include <limits.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

enum { S4_BARRIER_SPINS = 1024 };

/* One cache line each: arriving threads write count, waiting threads read gen. */
typedef struct s4__barrier {
    alignas(64) atomic_int count;
    alignas(64) atomic_int gen;
    atomic_int sleepers;
} s4__barrier;

/* Before the team starts (by one thread). */
static inline void s4__barrier_init(s4__barrier *b)
{
    atomic_init(&b->count, 0);
    atomic_init(&b->gen, 0);
    atomic_init(&b->sleepers, 0);
}

static inline void s4__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Sleeps while *gen == g (returns at once if it no longer is). */
static inline void s4__barrier_sleep(atomic_int *gen, int g)
{
#if defined(__linux__)
    syscall(SYS_futex, (int *)(void *)gen, FUTEX_WAIT_PRIVATE, g, NULL, NULL, 0);
#else
    (void)gen, (void)g;
    sched_yield();
#endif
}

static inline void s4__barrier_wake(atomic_int *gen)
{
#if defined(__linux__)
    syscall(SYS_futex, (int *)(void *)gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)gen;
#endif
}

/* Every one of the nt threads of the team calls it; returns when all have. */
static inline void s4__barrier_wait(s4__barrier *b, int nt)
{
    if (nt <= 1)
        return;
    const int g = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == nt - 1) {
        /* The last: nobody touches count until gen moves, so reset it first. The store of
         * gen and the load of sleepers are sequentially consistent, as are a sleeper's
         * increment and its load of gen: one of the two sees the other, so a sleeper
         * either finds gen moved or is woken. */
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_store_explicit(&b->gen, g + 1, memory_order_seq_cst);
        if (atomic_load_explicit(&b->sleepers, memory_order_seq_cst) > 0)
            s4__barrier_wake(&b->gen);
        return;
    }
    for (int spins = 0; spins < S4_BARRIER_SPINS; spins++) {
        if (atomic_load_explicit(&b->gen, memory_order_acquire) != g)
            return;
        s4__cpu_relax();
    }
    atomic_fetch_add_explicit(&b->sleepers, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&b->gen, memory_order_seq_cst) == g)
        s4__barrier_sleep(&b->gen, g);
    atomic_fetch_sub_explicit(&b->sleepers, 1, memory_order_relaxed);
}

#endif
