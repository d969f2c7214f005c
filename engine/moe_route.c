/* moe_route.c: softmax top-k routing with renormalised weights (engine/moe_route.h). */
#include "engine/moe_route.h"

#include <stdbool.h>
#include <math.h>
#include <stddef.h>

#include "kernels/ops.h"

void moe_route(float *probs, uint32_t n, int64_t n_expert, int64_t k, int32_t *sel_all, float *w_all)
{
    for (uint32_t t = 0; t < n; t++) {
        float *p = probs + (size_t)t * n_expert;
        op_softmax(p, n_expert);
        int32_t *sel = sel_all + (size_t)t * k;
        float *w = w_all + (size_t)t * k;
        double sum = 0;
        for (int64_t j = 0; j < k; j++) {
            int32_t best = -1;
            for (int64_t e = 0; e < n_expert; e++) {
                bool taken = false;
                for (int64_t i = 0; i < j; i++)
                    taken |= sel[i] == e;
                if (!taken && (best < 0 || p[e] > p[best]))
                    best = (int32_t)e;
            }
            sel[j] = best;
            w[j] = p[best];
            sum += w[j];
        }
        /* as llama.cpp: the sum in double (ggml_sum_rows) rounded to float, kept above F16's
         * smallest normal, then one division per weight */
        const float norm = fmaxf((float)sum, 6.103515625e-5f);
        for (int64_t j = 0; j < k; j++)
            w[j] /= norm;
    }
}
