/* moe_route.h: the router of a softmax-gated MoE layer as llama.cpp runs qwen3moe and qwen3next:
 * softmax over the expert logits, top-k, the chosen weights renormalised to sum to 1. */
#ifndef MOESERVE_MOE_ROUTE_H
#define MOESERVE_MOE_ROUTE_H

#include <stdint.h>

/* For each of n tokens: probs (n_expert logits, softmaxed in place) -> the k best experts in
 * sel[t*k..] (ties to the lower index) and their renormalised weights in w[t*k..]. */
void moe_route(float *probs, uint32_t n, int64_t n_expert, int64_t k, int32_t *sel, float *w);

#endif
