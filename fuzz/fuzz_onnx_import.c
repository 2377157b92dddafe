/*
 * libFuzzer target for ONNX import: any bytes must give a clean error or a
 * planned net, with nothing leaked through the funnel. A net that loads is
 * run once on a grey image when it is small enough to run quickly. The
 * funnel is capped at 256 MiB so that a file announcing huge tensors fails
 * with ENOMEM instead of tripping the fuzzer's allocation limit.
 */
#include <stdlib.h>

#include "lupe/engine.h"
#include "lupe/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        lupe_base_init();
        lupe_alloc_set_limit((size_t)256 << 20);
        init = 1;
    }
    if (size > (1u << 20)) return 0;
    onnx_net *net = NULL;
    if (onnx_net_load_mem(data, size, "fuzz.onnx", 1, &net) == LUPE_OK) {
        const onnx_net_stats *s = onnx_net_get_stats(net);
        if (onnx_net_input_numel(net) <= (1u << 16) && onnx_net_output_numel(net) <= (1u << 20) &&
            s->arena_bytes <= ((size_t)64 << 20)) {
            float *in = malloc(onnx_net_input_numel(net) * sizeof(float));
            float *out = malloc((onnx_net_output_numel(net) ? onnx_net_output_numel(net) : 1) * sizeof(float));
            if (in && out) {
                for (size_t i = 0; i < onnx_net_input_numel(net); i++) in[i] = 0.5f;
                if (onnx_net_run(net, in, out)) abort(); /* a planned net runs */
            }
            free(in), free(out);
        }
        onnx_net_free(net);
    }
    lupe_alloc_stats st;
    lupe_alloc_get_stats(&st);
    if (st.live_bytes) abort();
    return 0;
}
