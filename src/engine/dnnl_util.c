/*
 * The oneDNN plumbing the fast ops share: one CPU engine per process, error
 * translation, alignment, and the thread count. Debian's libdnnl is built
 * with OpenMP (libgomp), so the thread count is OpenMP's team size.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/dnnl_util.h"
#include "lupe/engine.h"

/* From libgomp, which libdnnl already loads. Declared here rather than
 * through <omp.h> so that compilers without an OpenMP header (clang as the
 * fuzzers use it) still build this file; the link adds -lgomp. */
extern int omp_get_max_threads(void);
extern int omp_get_num_procs(void);
extern void omp_set_num_threads(int n);

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static dnnl_status_t engine_status;

static void engine_create(void)
{
    engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0);
}

lupe_status eng__dnnl_engine(dnnl_engine_t *out)
{
    pthread_once(&engine_once, engine_create);
    *out = engine;
    if (engine_status != dnnl_success) return eng__dnnl_err(engine_status, "creating the oneDNN CPU engine");
    return LUPE_OK;
}

static const char *status_name(dnnl_status_t s)
{
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "no implementation for these shapes and layouts";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown status";
    }
}

lupe_status eng__dnnl_err(dnnl_status_t s, const char *what)
{
    lupe_status st = s == dnnl_out_of_memory ? LUPE_ENOMEM : s == dnnl_unimplemented ? LUPE_EUNSUPPORTED : LUPE_EINTERNAL;
    return lupe_err(st, "%s: oneDNN: %s (status %d)", what, status_name(s), (int)s);
}

size_t eng__dnnl_round(size_t n)
{
    return (n + ENG__DNNL_ALIGN - 1) / ENG__DNNL_ALIGN * ENG__DNNL_ALIGN;
}

void *eng__dnnl_align(void *p)
{
    uintptr_t u = (uintptr_t)p;
    return (void *)((u + ENG__DNNL_ALIGN - 1) / ENG__DNNL_ALIGN * ENG__DNNL_ALIGN);
}

/* 0 = all cores. Atomic: set by the main thread, read by any. */
static atomic_int threads_wanted;

void eng_set_threads(int n)
{
    atomic_store(&threads_wanted, n > 0 ? n : 0);
    eng__threads_apply();
}

int eng_get_threads(void)
{
    int n = atomic_load(&threads_wanted);
    return n > 0 ? n : omp_get_num_procs();
}

/* OpenMP keeps the team size per thread, so the setting is applied to
 * whichever thread calls into the engine, and only when it differs
 * (omp_set_num_threads is cheap, but this keeps it out of the way). */
void eng__threads_use(int n)
{
    if (omp_get_max_threads() != n) omp_set_num_threads(n);
}

int eng__threads_apply(void)
{
    int n = eng_get_threads();
    eng__threads_use(n);
    return n;
}
