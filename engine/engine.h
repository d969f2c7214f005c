/* engine.h: what the server sees of a loaded model: one handle for validation, the memory
 * plan, weights, tokenizer, KV pool and the forward pass, whatever the architecture and device. */
#ifndef MOESERVE_ENGINE_H
#define MOESERVE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine;
struct tokenizer;

struct engine_params {
    const char *path;
    uint32_t threads;         /* 0: all cores */
    uint32_t slots;           /* sequences */
    uint32_t ctx_size;        /* KV pool tokens, all sequences together */
    uint32_t max_ctx;         /* longest sequence (0: the model's context length) */
    uint32_t batch_tokens;    /* largest batch one step runs */
    const char *kv_type;      /* "f16" or "q8_0" */
    const char *delta_rule;   /* qwen3next prompts: "exact" (NULL) or "chunked" */
    const char *device;       /* "cpu", "vulkan", "auto" */
    const char *gpu;          /* Vulkan device: its index or part of its name; NULL: the best */
    const char *n_cpu_moe;    /* Vulkan: layers whose routed experts stay on the CPU, or "auto"
                                 (NULL): as few as make the model fit the device */
    uint64_t mem_budget;      /* 0: MemAvailable / device heap */
    bool fit;                 /* shrink ctx_size and slots until the plan fits */
    /* progress while loading (may be NULL) */
    void (*progress)(void *ctx, const char *stage, double fraction);
    void *progress_ctx;
};

struct engine_info {
    const char *arch;         /* "qwen3moe", "qwen3next" */
    const char *name;         /* general.name or the file name */
    uint32_t n_vocab, n_ctx_train, n_layer, n_embd, n_expert, n_expert_used;
    uint32_t slots, ctx_size, max_ctx;  /* after --fit */
    const char *chat_template;          /* tokenizer.chat_template, or NULL */
    int32_t eos, fim_prefix, fim_suffix, fim_middle, fim_pad, repo_name, file_sep; /* -1 if absent */
    const char *device_name;
    const char *device_note;            /* why this device (a GPU passed over, the one used), or NULL */
    uint32_t n_cpu_moe;                 /* on a GPU: layers whose routed experts run on the CPU */
    uint64_t weight_bytes, kv_bytes;
};

/* Validates, plans memory, maps weights and sets up the KV pool. NULL with a message that names
 * the file, tensor or setting at fault (several lines when validation finds several problems). */
struct engine *engine_open(const struct engine_params *p, char *err, size_t errlen);
void engine_close(struct engine *e);
const struct engine_info *engine_info(const struct engine *e);

/* -------------------------------------------------------------- forward pass ---
 * One call runs n entries (token, position, sequence, wants logits) from any mix of sequences;
 * logits (n_vocab floats) are written for the entries that want them, in entry order. */
bool engine_decode(struct engine *e, uint32_t n, const int32_t *token, const uint32_t *pos,
                   const uint32_t *seq, const bool *want_logits, float *logits, char *err, size_t errlen);
/* Keeps positions [0, n_keep) of a sequence's cache, or fewer where the architecture cannot cut
 * there (qwen3next resumes from its latest state snapshot at or below n_keep); returns the
 * positions kept. Keep 0 after a failed decode: the sequence's state is unknown then. */
uint32_t engine_seq_keep(struct engine *e, uint32_t seq, uint32_t n_keep);

/* ---------------------------------------------------------------- tokenizer --- */
/* Token ids of text; special tokens such as <|im_start|> are recognised only with `special`.
 * Returns a malloc'd array and its length, or NULL on allocation failure. */
int32_t *engine_tokenize(const struct engine *e, const char *text, size_t len, bool special, size_t *n);
/* The bytes of one token (special tokens as their text); returns the length (may exceed cap:
 * then only cap bytes were written). */
size_t engine_token_bytes(const struct engine *e, int32_t id, char *buf, size_t cap);
/* End of generation: eos, <|im_end|>, <|endoftext|>, <|fim_pad|>... */
bool engine_is_eog(const struct engine *e, int32_t id);
/* The tokenizer itself (streaming decoder, lookups). */
const struct tokenizer *engine_tokenizer(const struct engine *e);
/* Control tokens never shown in generated text. */
bool engine_is_control(const struct engine *e, int32_t id);

#endif
