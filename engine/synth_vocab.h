/* synth_vocab.h: a small genuine byte-level BPE vocabulary with Qwen's special tokens,
 * and a ChatML chat template, for synthetic models (a fresh machine has no real tokenizer). */
#ifndef MOESERVE_SYNTH_VOCAB_H
#define MOESERVE_SYNTH_VOCAB_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/gguf.h"

/* Adds tokenizer.* metadata for a vocabulary of exactly n_vocab tokens (padded with [PADn]). */
bool synth_vocab_write(struct gguf_writer *w, uint32_t n_vocab);

/* The smallest n_vocab synth_vocab_write accepts. */
uint32_t synth_vocab_min_size(void);

#endif
