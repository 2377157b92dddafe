/*
 * ONNX Runtime as an oracle for tests and benchmarks (never linked into
 * lupe): the library is loaded with dlopen at run time from $LUPE_ORT_LIB,
 * or build/ort/lib/libonnxruntime.so.1 as scripts/ort installs it. When it
 * is missing (no npm, no registry) ort_open says why and tests skip.
 *
 *     char why[256];
 *     ort_session *s = ort_open("m.onnx", 2, why, sizeof why);
 *     if (!s) skip(why);
 *     int64_t shape[4] = {1, 3, 96, 96}, oshape[8]; int orank;
 *     float *out = NULL;
 *     if (ort_run(s, in, shape, 4, &out, oshape, &orank, why, sizeof why)) fail(why);
 *     free(out); ort_close(s);
 */
#ifndef LUPE_TEST_ORT_H
#define LUPE_TEST_ORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ort_session ort_session;

/* A session on the model file with `threads` intra-op threads (0: ORT's
 * default), all graph optimisations, sequential execution. NULL with the
 * reason in why when ONNX Runtime or the model cannot be loaded. */
ort_session *ort_open(const char *model, int threads, char *why, size_t whylen);
/* Runs the model's first input (float32 of the given shape) and returns its
 * first output: *out from malloc (caller frees), its shape and rank (up to
 * 8). 0 on success, -1 with why. */
int ort_run(ort_session *s, const float *in, const int64_t *shape, int rank, float **out, int64_t oshape[8],
            int *orank, char *why, size_t whylen);
void ort_close(ort_session *s);
/* The ONNX Runtime version string, or "" before the first ort_open. */
const char *ort_version(void);

#endif
