/*
 * Internal helpers shared by the engine's oneDNN paths: the one CPU engine
 * of the process, oneDNN status codes turned into lupe errors, the thread
 * count (oneDNN runs on OpenMP in Debian's build) and aligned blocks from
 * the allocation funnel. Not API: the double underscore says so.
 */
#ifndef LUPE_ENGINE_DNNL_UTIL_H
#define LUPE_ENGINE_DNNL_UTIL_H

#include <oneapi/dnnl/dnnl.h>

#include "lupe/base.h"

/* oneDNN wants its buffers 64-byte aligned; the funnel gives 16. */
#define ENG__DNNL_ALIGN 64

/* The process's CPU engine, created on first use (thread-safe). Returns
 * LUPE_EUNSUPPORTED with a message if oneDNN cannot make one. */
lupe_status eng__dnnl_engine(dnnl_engine_t *out);
/* Sets the lupe error for a failed oneDNN call and returns its status:
 * LUPE_ENOMEM, LUPE_EUNSUPPORTED (shape or layout oneDNN has no kernel
 * for) or LUPE_EINTERNAL. */
lupe_status eng__dnnl_err(dnnl_status_t s, const char *what);
/* Runs a oneDNN call; on failure sets `st` through eng__dnnl_err and jumps
 * to the caller's `out` label (both must exist there). */
#define DN(call, what)                                                                                                 \
    do {                                                                                                               \
        dnnl_status_t s_ = (call);                                                                                     \
        if (s_ != dnnl_success) {                                                                                      \
            st = eng__dnnl_err(s_, what);                                                                              \
            goto out;                                                                                                  \
        }                                                                                                              \
    } while (0)
/* Makes the calling thread's OpenMP team size the configured thread
 * count and returns it. Call before creating primitives: oneDNN plans its
 * work split and scratchpad for the team size it sees then. */
int eng__threads_apply(void);
/* Makes the calling thread's team size n (before executing primitives
 * that were planned for n threads). */
void eng__threads_use(int n);
/* Rounds n up to a multiple of ENG__DNNL_ALIGN. */
size_t eng__dnnl_round(size_t n);
/* p rounded up to ENG__DNNL_ALIGN. */
void *eng__dnnl_align(void *p);

#endif
