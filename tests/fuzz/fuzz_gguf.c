/* fuzz_gguf.c: libFuzzer target: gguf_parse on arbitrary bytes, then the load-time validator
 * and the typed getters on whatever parses. Any crash or sanitizer report is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/arch.h"
#include "engine/gguf.h"
#include "engine/validate.h"

static bool any_type(const struct val_caps *caps, uint32_t type)
{
    return type % 3 != 0;    /* some types "missing", to exercise that path */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct gguf_file *f = gguf_parse(data, size, "fuzz", err, sizeof err);
    if (!f)
        return 0;
    struct val_caps caps = {"fuzz", any_type, NULL};
    struct val_report r;
    struct arch_hparams hp;
    val_check(f, &caps, &hp, &r);
    val_report_free(&r);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kv[i];
        uint64_t u;
        double d;
        free(gguf_get_str_dup(f, kv->key));
        gguf_get_u64(f, kv->key, &u);
        gguf_get_f64(f, kv->key, &d);
        if (kv->val.type == GGUF_ARRAY && kv->val.a.count)
            (void)gguf_arr_elem(&kv->val.a, kv->val.a.count - 1);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        if (t->nbytes) {
            volatile uint8_t first = ((const uint8_t *)t->data)[0];
            volatile uint8_t last = ((const uint8_t *)t->data)[t->nbytes - 1];
            (void)first;
            (void)last;
        }
    }
    gguf_close(f);
    return 0;
}
