/* atomics: the small vocabulary of explicitly ordered operations that every
 * concurrent module uses. Each name carries its memory order, so a reader of
 * the call site sees what is ordered without looking anything up; each call
 * site carries a one-line comment saying what it pairs with.
 *
 * These operate on _Atomic fields that may live in memory shared between
 * processes. That is only sound when the operations are lock-free (a lock in
 * libatomic would be per process), which the static assertions check.
 * volatile is never used for synchronisation. */
#ifndef SHMBUS_ATOMICS_H
#define SHMBUS_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free for shared memory");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free for shared memory");

typedef _Atomic uint64_t shmbus__a64;
typedef _Atomic uint32_t shmbus__a32;

#define shmbus__load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define shmbus__load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define shmbus__load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)

#define shmbus__store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define shmbus__store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define shmbus__store_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)

#define shmbus__fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define shmbus__fetch_add_release(p, v) atomic_fetch_add_explicit((p), (v), memory_order_release)
#define shmbus__fetch_add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define shmbus__fetch_or_seq_cst(p, v) atomic_fetch_or_explicit((p), (v), memory_order_seq_cst)
#define shmbus__fetch_and_release(p, v) atomic_fetch_and_explicit((p), (v), memory_order_release)
#define shmbus__fetch_and_seq_cst(p, v) atomic_fetch_and_explicit((p), (v), memory_order_seq_cst)
#define shmbus__exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)

/* Compare-and-swap; on failure *expected receives the current value. */
#define shmbus__cas_relaxed(p, expected, desired)                                                  \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_relaxed,        \
                                          memory_order_relaxed)
#define shmbus__cas_acq_rel(p, expected, desired)                                                  \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acq_rel,        \
                                          memory_order_acquire)
#define shmbus__cas_seq_cst(p, expected, desired)                                                  \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_seq_cst,        \
                                          memory_order_seq_cst)

#define shmbus__fence_acquire() atomic_thread_fence(memory_order_acquire)
#define shmbus__fence_release() atomic_thread_fence(memory_order_release)
#define shmbus__fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)

/* A hint to the CPU inside spin loops (PAUSE on x86, YIELD on arm64). */
static inline void shmbus__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#else
  atomic_signal_fence(memory_order_seq_cst);
#endif
}

#endif /* SHMBUS_ATOMICS_H */
