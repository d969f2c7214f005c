/* synth_vocab.c: builds a byte-level BPE vocabulary (GPT-2 byte alphabet, merges that spell
 * common English and code words) plus Qwen's added tokens, and a ChatML template of our own. */
#include "engine/synth_vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "it", "that", "for", "you", "with", "on", "as", "are",
    "this", "be", "at", "have", "from", "or", "by", "not", "what", "all", "were", "when", "we",
    "there", "can", "an", "your", "which", "their", "if", "do", "will", "each", "about", "how",
    "up", "out", "them", "then", "she", "many", "some", "so", "these", "would", "other", "into",
    "has", "more", "her", "two", "like", "him", "see", "time", "could", "no", "make", "than",
    "first", "been", "its", "who", "now", "people", "my", "made", "over", "did", "down", "only",
    "way", "find", "use", "may", "water", "long", "little", "very", "after", "words", "called",
    "just", "where", "most", "know", "hello", "world", "model", "server", "token", "expert",
    "return", "int", "char", "void", "struct", "const", "static", "while", "else", "include",
    "function", "def", "class", "import", "self", "print", "true", "false", "null", "None",
    "string", "value", "data", "file", "error", "list", "index", "size", "count", "result",
};

static const char *const added_tokens[][2] = {
    /* text, token type (3 control, 4 user-defined), as in Qwen3's GGUF files */
    {"<|endoftext|>", "3"}, {"<|im_start|>", "3"}, {"<|im_end|>", "3"},
    {"<|object_ref_start|>", "3"}, {"<|object_ref_end|>", "3"}, {"<|box_start|>", "3"},
    {"<|box_end|>", "3"}, {"<|quad_start|>", "3"}, {"<|quad_end|>", "3"},
    {"<|vision_start|>", "3"}, {"<|vision_end|>", "3"}, {"<|vision_pad|>", "3"},
    {"<|image_pad|>", "3"}, {"<|video_pad|>", "3"}, {"<tool_call>", "4"}, {"</tool_call>", "4"},
    {"<|fim_prefix|>", "4"}, {"<|fim_middle|>", "4"}, {"<|fim_suffix|>", "4"},
    {"<|fim_pad|>", "4"}, {"<|repo_name|>", "4"}, {"<|file_sep|>", "4"},
    {"<tool_response>", "4"}, {"</tool_response>", "4"}, {"<think>", "4"}, {"</think>", "4"},
};
#define N_ADDED (sizeof added_tokens / sizeof added_tokens[0])

static const char chatml_template[] =
    "{%- for message in messages -%}\n"
    "{%- if message.role == 'tool' -%}\n"
    "<|im_start|>user\n<tool_response>\n{{ message.content }}\n</tool_response><|im_end|>\n"
    "{% else -%}\n"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{% endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "<|im_start|>assistant\n"
    "{% endif -%}\n";

struct vocab {
    char **tokens;
    int32_t *types;
    char **merges;
    uint32_t n_tokens, n_merges, cap;
};

/* GPT-2's printable stand-in for each byte, as UTF-8 (bytes_to_unicode). */
static void byte_symbol(int b, char out[3])
{
    int cp = b;
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
        int n = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF)))
                n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static int find_token(const struct vocab *v, const char *s)
{
    for (uint32_t i = 0; i < v->n_tokens; i++)
        if (strcmp(v->tokens[i], s) == 0)
            return (int)i;
    return -1;
}

static bool add_token(struct vocab *v, const char *s, int32_t type)
{
    if (v->n_tokens == v->cap)
        return false;
    v->tokens[v->n_tokens] = strdup(s);
    v->types[v->n_tokens] = type;
    return v->tokens[v->n_tokens++] != NULL;
}

/* Spells `word` (already in byte symbols) by merging prefix + next symbol, adding the merges. */
static bool add_word(struct vocab *v, const char *word)
{
    char prefix[64] = {0};
    size_t len = 0;
    for (const char *p = word; *p;) {
        size_t sym = ((unsigned char)*p >= 0xC0) ? 2 : 1;
        if (len + sym >= sizeof prefix)
            return true;
        char next[64];
        memcpy(next, prefix, len);
        memcpy(next + len, p, sym);
        next[len + sym] = 0;
        if (len > 0 && find_token(v, next) < 0) {
            if (v->n_tokens == v->cap)
                return true;
            char *merge = malloc(len + sym + 2);
            if (!merge)
                return false;
            memcpy(merge, prefix, len);
            merge[len] = ' ';
            memcpy(merge + len + 1, p, sym);
            merge[len + 1 + sym] = 0;
            v->merges[v->n_merges++] = merge;
            if (!add_token(v, next, 1))
                return false;
        }
        memcpy(prefix, next, len + sym + 1);
        len += sym;
        p += sym;
    }
    return true;
}

static void free_vocab(struct vocab *v)
{
    for (uint32_t i = 0; i < v->n_tokens; i++)
        free(v->tokens[i]);
    for (uint32_t i = 0; i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->tokens);
    free(v->types);
    free(v->merges);
}

uint32_t synth_vocab_min_size(void)
{
    return 512;
}

bool synth_vocab_write(struct gguf_writer *w, uint32_t n_vocab)
{
    struct vocab v = {.cap = n_vocab};
    v.tokens = calloc(n_vocab, sizeof *v.tokens);
    v.types = calloc(n_vocab, sizeof *v.types);
    v.merges = calloc(n_vocab, sizeof *v.merges);
    bool ok = v.tokens && v.types && v.merges && n_vocab >= synth_vocab_min_size();
    for (int b = 0; ok && b < 256; b++) {
        char sym[3];
        byte_symbol(b, sym);
        ok = add_token(&v, sym, 1);
    }
    /* merged words, each also with the space symbol in front; room left for the added tokens */
    uint32_t limit = n_vocab - (uint32_t)N_ADDED;
    for (size_t i = 0; ok && i < sizeof words / sizeof words[0] && v.n_tokens < limit; i++) {
        char spaced[64];
        snprintf(spaced, sizeof spaced, "\xC4\xA0%s", words[i]); /* U+0120, GPT-2's space */
        uint32_t saved = v.cap;
        v.cap = limit;
        ok = add_word(&v, words[i]) && add_word(&v, spaced);
        v.cap = saved;
    }
    uint32_t first_added = v.n_tokens;
    for (size_t i = 0; ok && i < N_ADDED; i++)
        ok = add_token(&v, added_tokens[i][0], atoi(added_tokens[i][1]));
    for (uint32_t i = 0; ok && v.n_tokens < n_vocab; i++) {
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%u]", v.n_tokens);
        ok = add_token(&v, pad, 5);
    }
    ok = ok && gguf_w_str(w, "tokenizer.ggml.model", "gpt2") &&
         gguf_w_str(w, "tokenizer.ggml.pre", "qwen2") &&
         gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, v.n_tokens) &&
         gguf_w_arr_i32(w, "tokenizer.ggml.token_type", v.types, v.n_tokens) &&
         gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merges, v.n_merges) &&
         gguf_w_u32(w, "tokenizer.ggml.eos_token_id", first_added + 2) &&
         gguf_w_u32(w, "tokenizer.ggml.padding_token_id", first_added) &&
         gguf_w_u32(w, "tokenizer.ggml.bos_token_id", first_added) &&
         gguf_w_bool(w, "tokenizer.ggml.add_bos_token", false) &&
         gguf_w_str(w, "tokenizer.chat_template", chatml_template);
    free_vocab(&v);
    return ok;
}
