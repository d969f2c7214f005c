/* inspect_report.h: what `moeserve inspect` shows about a GGUF model (hyperparameters,
 * tokenizer, quant layout, check results, memory plan), as text or as JSON. */
#ifndef MOESERVE_INSPECT_REPORT_H
#define MOESERVE_INSPECT_REPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/arch.h"
#include "engine/gguf.h"
#include "engine/memplan.h"
#include "engine/validate.h"

/* One row of the quant-layout table: the tensors of a group stored in one type. */
struct ir_row {
    enum arch_group group;
    uint32_t type;
    uint64_t tensors, params, bytes;
};

struct ir_layout {
    struct ir_row *rows;         /* ordered by group, then type */
    size_t n;
    uint64_t params, bytes;
};

/* Groups every tensor of f; false on allocation failure. */
bool ir_layout_build(const struct gguf_file *f, struct ir_layout *out);
void ir_layout_free(struct ir_layout *l);

/* "Q4_K" for type t (upper-cased ggml name). */
void ir_type_name(uint32_t t, char *buf, size_t len);
/* "5.36 MiB" */
void ir_human_bytes(uint64_t b, char *buf, size_t len);

/* Text sections. */
void ir_print_model(FILE *out, const struct gguf_file *f, const struct arch_hparams *hp, bool known_arch);
void ir_print_tokenizer(FILE *out, const struct gguf_file *f);
void ir_print_layout(FILE *out, const struct ir_layout *l);
void ir_print_plan(FILE *out, const struct mp_request *rq, const struct mp_plan *p, const char *budget_src);

/* The same as JSON objects (new references; NULL on allocation failure). */
json_t *ir_model_json(const struct gguf_file *f, const struct arch_hparams *hp, bool known_arch);
json_t *ir_tokenizer_json(const struct gguf_file *f);
json_t *ir_layout_json(const struct ir_layout *l);
json_t *ir_plan_json(const struct mp_request *rq, const struct mp_plan *p, const char *budget_src);
json_t *ir_check_json(const struct val_report *r);

#endif
