/*
 * ONNX Runtime through its C API, loaded with dlopen so that lupe's builds
 * never link it. Built against the header scripts/ort installs; without it
 * every call says the oracle is missing.
 */
#include "lib/ort.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include("onnxruntime_c_api.h")
#define HAVE_ORT_HEADER 1
#endif
#endif

#ifndef HAVE_ORT_HEADER

ort_session *ort_open(const char *model, int threads, char *why, size_t whylen)
{
    (void)model, (void)threads;
    snprintf(why, whylen, "ONNX Runtime's header was not found at build time (run scripts/ort)");
    return NULL;
}
int ort_run(ort_session *s, const float *in, const int64_t *shape, int rank, float **out, int64_t oshape[8],
            int *orank, char *why, size_t whylen)
{
    (void)s, (void)in, (void)shape, (void)rank, (void)out, (void)oshape, (void)orank;
    snprintf(why, whylen, "ONNX Runtime is not available");
    return -1;
}
void ort_close(ort_session *s) { (void)s; }
const char *ort_version(void) { return ""; }

#else

#include "onnxruntime_c_api.h"

/* ONNX Runtime keeps a few allocations of its own to the end of the
 * process (1 KB in 8 blocks with 1.30, reached from none of our
 * pointers), which LeakSanitizer reports in every ASan test that loads it.
 * They are not ours to free: the sanitizer is told to ignore leaks whose
 * allocation is inside the library, and still reports any of lupe's. */
const char *__lsan_default_suppressions(void);
__attribute__((used)) const char *__lsan_default_suppressions(void)
{
    return "leak:libonnxruntime.so\n";
}

struct ort_session {
    OrtSession *sess;
    OrtSessionOptions *opts;
    char *in_name, *out_name;
};

static const OrtApi *api;
static OrtEnv *env;
static const char *version = "";

/* Copies an OrtStatus's message into why and releases it; -1 if st was an error. */
static int check(OrtStatus *st, const char *what, char *why, size_t whylen)
{
    if (!st) return 0;
    snprintf(why, whylen, "ONNX Runtime: %s: %s", what, api->GetErrorMessage(st));
    api->ReleaseStatus(st);
    return -1;
}

static int load(char *why, size_t whylen)
{
    if (api) return 0;
    const char *path = getenv("LUPE_ORT_LIB");
    char buf[4096];
    if (!path || !*path) {
        /* tests run from the repository root (tests/run cds there) */
        snprintf(buf, sizeof buf, "build/ort/lib/libonnxruntime.so.1");
        path = buf;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, whylen, "ONNX Runtime not loadable (%s); run scripts/ort or set LUPE_ORT_LIB", dlerror());
        return -1;
    }
    const OrtApiBase *(*get_base)(void) = (const OrtApiBase *(*)(void))dlsym(h, "OrtGetApiBase");
    if (!get_base) {
        snprintf(why, whylen, "%s has no OrtGetApiBase", path);
        return -1;
    }
    const OrtApiBase *base = get_base();
    const OrtApi *a = base->GetApi(ORT_API_VERSION);
    if (!a) {
        snprintf(why, whylen, "%s (ONNX Runtime %s) lacks C API version %d", path, base->GetVersionString(),
                 ORT_API_VERSION);
        return -1;
    }
    api = a;
    version = base->GetVersionString();
    if (check(api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "lupe-oracle", &env), "CreateEnv", why, whylen)) {
        api = NULL;
        return -1;
    }
    return 0;
}

ort_session *ort_open(const char *model, int threads, char *why, size_t whylen)
{
    if (load(why, whylen)) return NULL;
    ort_session *s = calloc(1, sizeof *s);
    OrtAllocator *alloc = NULL;
    if (!s) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (check(api->CreateSessionOptions(&s->opts), "CreateSessionOptions", why, whylen) ||
        check(api->SetIntraOpNumThreads(s->opts, threads), "SetIntraOpNumThreads", why, whylen) ||
        check(api->SetInterOpNumThreads(s->opts, 1), "SetInterOpNumThreads", why, whylen) ||
        check(api->SetSessionExecutionMode(s->opts, ORT_SEQUENTIAL), "SetSessionExecutionMode", why, whylen) ||
        check(api->SetSessionGraphOptimizationLevel(s->opts, ORT_ENABLE_ALL), "SetSessionGraphOptimizationLevel", why,
              whylen) ||
        check(api->CreateSession(env, model, s->opts, &s->sess), model, why, whylen) ||
        check(api->GetAllocatorWithDefaultOptions(&alloc), "GetAllocatorWithDefaultOptions", why, whylen)) {
        ort_close(s);
        return NULL;
    }
    char *in = NULL, *out = NULL;
    if (check(api->SessionGetInputName(s->sess, 0, alloc, &in), "SessionGetInputName", why, whylen) ||
        check(api->SessionGetOutputName(s->sess, 0, alloc, &out), "SessionGetOutputName", why, whylen)) {
        ort_close(s);
        return NULL;
    }
    s->in_name = strdup(in);
    s->out_name = strdup(out);
    OrtStatus *st = api->AllocatorFree(alloc, in);
    if (st) api->ReleaseStatus(st);
    if ((st = api->AllocatorFree(alloc, out))) api->ReleaseStatus(st);
    return s;
}

int ort_run(ort_session *s, const float *in, const int64_t *shape, int rank, float **out, int64_t oshape[8],
            int *orank, char *why, size_t whylen)
{
    OrtMemoryInfo *mi = NULL;
    OrtValue *iv = NULL, *ov = NULL;
    OrtTensorTypeAndShapeInfo *info = NULL;
    size_t n = 1, dims = 0;
    int rc = -1;
    *out = NULL;
    for (int i = 0; i < rank; i++) n *= (size_t)shape[i];
    if (check(api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mi), "CreateCpuMemoryInfo", why,
              whylen) ||
        check(api->CreateTensorWithDataAsOrtValue(mi, (void *)in, n * sizeof(float), shape, (size_t)rank,
                                                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &iv),
              "CreateTensorWithDataAsOrtValue", why, whylen))
        goto out;
    const char *in_names[1] = {s->in_name}, *out_names[1] = {s->out_name};
    const OrtValue *ins[1] = {iv};
    if (check(api->Run(s->sess, NULL, in_names, ins, 1, out_names, 1, &ov), "Run", why, whylen)) goto out;
    if (check(api->GetTensorTypeAndShape(ov, &info), "GetTensorTypeAndShape", why, whylen) ||
        check(api->GetDimensionsCount(info, &dims), "GetDimensionsCount", why, whylen))
        goto out;
    if (dims > 8) {
        snprintf(why, whylen, "output of rank %zu", dims);
        goto out;
    }
    if (check(api->GetDimensions(info, oshape, dims), "GetDimensions", why, whylen)) goto out;
    size_t on = 1;
    for (size_t i = 0; i < dims; i++) on *= (size_t)oshape[i];
    float *data = NULL;
    if (check(api->GetTensorMutableData(ov, (void **)&data), "GetTensorMutableData", why, whylen)) goto out;
    if (!(*out = malloc(on * sizeof(float) + 1))) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    memcpy(*out, data, on * sizeof(float));
    *orank = (int)dims;
    rc = 0;
out:
    if (info) api->ReleaseTensorTypeAndShapeInfo(info);
    if (ov) api->ReleaseValue(ov);
    if (iv) api->ReleaseValue(iv);
    if (mi) api->ReleaseMemoryInfo(mi);
    return rc;
}

void ort_close(ort_session *s)
{
    if (!s) return;
    if (s->sess) api->ReleaseSession(s->sess);
    if (s->opts) api->ReleaseSessionOptions(s->opts);
    free(s->in_name);
    free(s->out_name);
    free(s);
}

const char *ort_version(void) { return version; }

#endif
