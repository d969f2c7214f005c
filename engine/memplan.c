/* memplan.c: the arithmetic of engine/memplan.h (see docs/memory.md for the derivation and a
 * worked example). Sizes saturate at UINT64_MAX instead of wrapping. */
#include "engine/memplan.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/vk_model.h"
#include "kernels/moe.h"
#include "kernels/quants.h"
#include "kernels/qtypes.h"

static uint64_t mul(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t max3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t m = a > b ? a : b;
    return m > c ? m : c;
}

const char *mp_part_name(enum mp_part p)
{
    static const char *const names[MP_PART_COUNT] = {"weights", "KV cache", "recurrent state",
                                                     "compute buffers", "runtime overhead"};
    return (unsigned)p < MP_PART_COUNT ? names[p] : "?";
}

/* Bytes of n values of the KV type (rounded up to whole blocks). */
static uint64_t kv_row(uint32_t kv_type, uint64_t n)
{
    const struct q_traits *tr = q_type_traits(kv_type);
    if (!tr)
        return mul(n, 4);
    uint64_t blocks = (n + tr->block_size - 1) / tr->block_size;
    return mul(blocks, tr->block_bytes);
}

uint64_t mp_kv_bytes(const struct arch_hparams *hp, uint64_t n_ctx, uint64_t n_slots, uint32_t kv_type)
{
    uint64_t cells = mul(mul(arch_n_attn_layers(hp), n_ctx), n_slots);
    uint64_t per_cell = add(mul(hp->n_head_kv, kv_row(kv_type, hp->head_k)),
                            mul(hp->n_head_kv, kv_row(kv_type, hp->head_v)));
    return mul(cells, per_cell);
}

uint64_t mp_recurrent_bytes(const struct arch_hparams *hp, uint64_t n_states)
{
    if (hp->arch != ARCH_QWEN3NEXT)
        return 0;
    uint64_t layers = hp->n_layer - arch_n_attn_layers(hp);
    uint64_t conv_ch = arch_dim_value(hp, AD_CONV_CH);
    uint64_t conv = mul(hp->ssm_conv_kernel ? hp->ssm_conv_kernel - 1 : 0, conv_ch);
    uint64_t state = mul(hp->ssm_dt_rank, mul(hp->ssm_state, hp->ssm_state));
    return mul(mul(mul(layers, n_states), add(conv, state)), 4);
}

/* What the CPU forward pass allocates per token of its largest batch (engine/qwen3moe.c and
 * kernels/moe.c), F32 unless said:
 *  - residual stream, normed input and a temporary: 3 x n_embd;
 *  - q (with gate for qwen3next), k, v: the attention projections' widths (or DeltaNet's fused
 *    qkv + gate + beta/alpha, whichever is wider), and the attention output n_head x head_v;
 *  - router probabilities n_expert, chosen experts and weights 2 x n_expert_used;
 *  - MoE per used expert: gate and up outputs 2 x n_ff_exp and the down output n_embd, plus the
 *    shared expert's 2 x n_ff_shexp;
 *  - activations quantized for the dot products (at most 292 bytes per 256 values, Q8_K): the
 *    expert input once per token and once per used expert, the expert hidden rows, and the widest
 *    input of the dense products.
 * Plus one logits row (n_vocab) per slot. Attention scores are one row per thread, not per token
 * (they are not kept for the batch), which is small enough to leave to the overhead. */
uint64_t mp_compute_bytes(const struct arch_hparams *hp, uint64_t n_batch, uint64_t n_slots)
{
    uint64_t proj = add(add(arch_dim_value(hp, hp->arch == ARCH_QWEN3NEXT ? AD_Q_GATED : AD_Q),
                            arch_dim_value(hp, AD_K)), arch_dim_value(hp, AD_V));
    if (hp->arch == ARCH_QWEN3NEXT) {
        uint64_t dn = add(add(arch_dim_value(hp, AD_CONV_CH), hp->ssm_inner), mul(2, hp->ssm_dt_rank));
        proj = proj > dn ? proj : dn;
    }
    const uint64_t k = hp->n_expert_used, att = mul(hp->n_head, hp->head_v);
    uint64_t moe = add(add(hp->n_expert, mul(2, k)), add(mul(k, add(mul(2, hp->n_ff_exp), hp->n_embd)),
                                                        mul(2, hp->n_ff_shexp)));
    uint64_t floats = add(add(mul(3, hp->n_embd), proj), add(att, moe));
    uint64_t widest = max3(hp->n_embd, att, max3(hp->n_ff_exp, hp->n_ff_shexp, hp->ssm_inner));
    uint64_t act_values = add(add(mul(add(1, k), hp->n_embd), mul(k, hp->n_ff_exp)), widest);
    uint64_t act_bytes = (mul(act_values, 292) + 255) / 256;
    return add(mul(n_batch, add(mul(floats, 4), act_bytes)), mul(mul(n_slots, hp->n_vocab), 4));
}

uint64_t mp_overhead_bytes(const struct arch_hparams *hp, uint64_t metadata_bytes)
{
    return add(add(MP_RUNTIME_BASE, metadata_bytes), mul(hp->n_vocab, MP_TOKENIZER_BYTES_PER_TOKEN));
}

uint64_t mp_weight_bytes(const struct gguf_file *f)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        sum = add(sum, f->tensors[i].nbytes);
    return sum;
}

static void fill_device(const struct arch_hparams *hp, uint64_t weights, uint64_t n_ctx,
                        uint64_t n_slots, const struct mp_request *rq, uint64_t budget,
                        struct mp_device *d)
{
    uint64_t batch = rq->n_batch ? rq->n_batch : MP_DEFAULT_BATCH;
    uint64_t ctx_all = mul(n_ctx, n_slots);
    if (batch > ctx_all)
        batch = ctx_all ? ctx_all : 1;
    memset(d, 0, sizeof *d);
    d->name = "cpu";
    d->part[MP_WEIGHTS] = weights;
    d->part[MP_KV] = mp_kv_bytes(hp, n_ctx, n_slots, rq->kv_type);
    /* sequences with a recurrent state, each with its snapshots; one logits row per sequence */
    uint64_t states = rq->n_state_seqs ? rq->n_state_seqs : n_slots;
    d->part[MP_RECURRENT] = mp_recurrent_bytes(hp, mul(states, add(1, rq->n_snapshots)));
    d->part[MP_COMPUTE] = mp_compute_bytes(hp, batch, states);
    d->part[MP_OVERHEAD] = mp_overhead_bytes(hp, rq->metadata_bytes);
    for (int p = 0; p < MP_PART_COUNT; p++)
        d->total = add(d->total, d->part[p]);
    d->budget = budget;
    d->fits = d->total <= budget;
}

/* Largest x in [0, hi] with fits(x), for a requirement that grows with x. */
static uint64_t largest_fitting(const struct arch_hparams *hp, uint64_t weights,
                                const struct mp_request *rq, uint64_t budget, bool vary_ctx, uint64_t hi)
{
    uint64_t lo = 0;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        struct mp_device d;
        fill_device(hp, weights, vary_ctx ? mid : rq->n_ctx, vary_ctx ? rq->n_slots : mid, rq, budget, &d);
        if (d.fits)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

void mp_plan_cpu(const struct arch_hparams *hp, uint64_t weights, const struct mp_request *rq,
                 uint64_t budget, struct mp_plan *out)
{
    memset(out, 0, sizeof *out);
    out->n_dev = 1;
    fill_device(hp, weights, rq->n_ctx, rq->n_slots, rq, budget, &out->dev[0]);
    out->max_ctx = largest_fitting(hp, weights, rq, budget, true, UINT64_C(1) << 32);
    out->max_slots = largest_fitting(hp, weights, rq, budget, false, UINT64_C(1) << 20);
}

static struct model_hparams model_shape(const struct arch_hparams *hp)
{
    return (struct model_hparams){
        .n_layer = (uint32_t)hp->n_layer, .n_embd = (uint32_t)hp->n_embd, .n_head = (uint32_t)hp->n_head,
        .n_head_kv = (uint32_t)hp->n_head_kv, .head_k = (uint32_t)hp->head_k, .head_v = (uint32_t)hp->head_v,
        .n_rot = (uint32_t)hp->rope_dims, .n_expert = (uint32_t)hp->n_expert,
        .n_expert_used = (uint32_t)hp->n_expert_used, .n_ff_exp = (uint32_t)hp->n_ff_exp,
        .n_vocab = (uint32_t)hp->n_vocab,
    };
}

static uint32_t clamp32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

bool mp_expert_layers(const struct gguf_file *f, uint32_t n_layer, struct mp_expert_layer *out, char *err,
                      size_t errlen)
{
    static const char *const kinds[3] = {"gate", "up", "down"};
    for (uint32_t l = 0; l < n_layer; l++) {
        uint32_t types[3];
        out[l].bytes = 0;
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%u.ffn_%s_exps.weight", l, kinds[k]);
            const struct gguf_tensor *t = gguf_find_tensor(f, name);
            if (!t) {
                snprintf(err, errlen, "tensor %s: missing", name);
                return false;
            }
            types[k] = t->type;
            out[l].bytes = add(out[l].bytes, t->nbytes);
        }
        out[l].gate_type = types[0];
        out[l].up_type = types[1];
        out[l].down_type = types[2];
    }
    return true;
}

/* What the CPU keeps for the routed experts of layers [0, n_cpu): their weights, and the largest
 * scratch their MoE takes for a batch. */
static void cpu_expert_bytes(const struct arch_hparams *hp, const struct mp_weights *w, uint32_t n_cpu,
                             uint64_t batch, uint64_t *weights, uint64_t *scratch)
{
    *weights = *scratch = 0;
    for (uint32_t l = 0; l < n_cpu; l++) {
        const struct mp_expert_layer *e = &w->experts[l];
        const struct q_moe_weights mw = {.gate_type = e->gate_type, .up_type = e->up_type, .down_type = e->down_type,
                                         .n_embd = hp->n_embd, .n_ff = hp->n_ff_exp, .n_expert = hp->n_expert};
        uint64_t s = q_kernels_get(e->gate_type) && q_kernels_get(e->up_type) && q_kernels_get(e->down_type)
                         ? q_moe_scratch_bytes(&mw, (int64_t)batch, (int)hp->n_expert_used)
                         : 0;  /* a type without kernels fails at load, not here */
        *weights = add(*weights, e->bytes);
        *scratch = s > *scratch ? s : *scratch;
    }
}

static void fill_vulkan(const struct arch_hparams *hp, const struct mp_weights *w, uint64_t n_ctx, uint32_t n_cpu,
                        const struct mp_request *rq, uint64_t device_budget, uint64_t host_budget,
                        struct mp_plan *out)
{
    memset(out, 0, sizeof *out);
    out->n_dev = 2;
    out->n_cpu_moe = n_cpu;
    struct mp_device *gpu = &out->dev[0], *cpu = &out->dev[1];
    const struct model_hparams mh = model_shape(hp);
    uint64_t slots = rq->n_slots ? rq->n_slots : 1, batch = rq->n_batch ? rq->n_batch : MP_DEFAULT_BATCH;
    struct vk_model_bytes b;
    vk_model_ctx_bytes(&mh, clamp32(slots), clamp32(mul(n_ctx, slots)), clamp32(n_ctx), clamp32(batch), &b);
    uint64_t host_experts, moe_scratch;
    cpu_expert_bytes(hp, w, n_cpu, batch, &host_experts, &moe_scratch);
    gpu->name = "vulkan";
    gpu->part[MP_WEIGHTS] = w->total - host_experts;
    gpu->part[MP_KV] = b.kv;
    gpu->part[MP_COMPUTE] = b.compute;
    cpu->name = "cpu";
    cpu->part[MP_WEIGHTS] = host_experts;
    cpu->part[MP_COMPUTE] = add(add(b.host, VK_STAGING_BYTES), n_cpu ? add(b.host_moe, moe_scratch) : 0);
    cpu->part[MP_OVERHEAD] = mp_overhead_bytes(hp, rq->metadata_bytes);
    gpu->budget = device_budget;
    cpu->budget = host_budget;
    for (size_t d = 0; d < 2; d++) {
        for (int p = 0; p < MP_PART_COUNT; p++)
            out->dev[d].total = add(out->dev[d].total, out->dev[d].part[p]);
        out->dev[d].fits = out->dev[d].total <= out->dev[d].budget;
    }
}

/* The placement asked for, or for MP_CPU_MOE_AUTO the fewest CPU layers with which both sides
 * fit at the requested context (all layers when none does). */
static uint32_t choose_cpu_moe(const struct arch_hparams *hp, const struct mp_weights *w,
                               const struct mp_request *rq, uint64_t device_budget, uint64_t host_budget,
                               struct mp_plan *scratch)
{
    const uint32_t most = w->experts ? hp->n_layer : 0;
    if (rq->n_cpu_moe != MP_CPU_MOE_AUTO)
        return rq->n_cpu_moe < 0 ? 0 : (uint32_t)rq->n_cpu_moe > most ? most : (uint32_t)rq->n_cpu_moe;
    for (uint32_t n = 0; n <= most; n++) {
        fill_vulkan(hp, w, rq->n_ctx, n, rq, device_budget, host_budget, scratch);
        if (scratch->dev[0].fits && scratch->dev[1].fits)
            return n;
    }
    return most;
}

void mp_plan_vulkan(const struct arch_hparams *hp, const struct mp_weights *w, const struct mp_request *rq,
                    uint64_t device_budget, uint64_t host_budget, struct mp_plan *out)
{
    const uint32_t n_cpu = choose_cpu_moe(hp, w, rq, device_budget, host_budget, out);
    uint64_t lo = 0, hi = UINT32_MAX;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        fill_vulkan(hp, w, mid, n_cpu, rq, device_budget, host_budget, out);
        if (out->dev[0].fits && out->dev[1].fits)
            lo = mid;
        else
            hi = mid - 1;
    }
    fill_vulkan(hp, w, rq->n_ctx, n_cpu, rq, device_budget, host_budget, out);
    out->max_ctx = lo;
    out->max_slots = 0;  /* the pool is shared: slots cost page-table words only */
}

bool mp_parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0))
        return false;
    static const struct { const char *suffix; double mul; } units[] = {
        {"", 1}, {"B", 1},
        {"K", 1024.0}, {"KiB", 1024.0}, {"KB", 1e3},
        {"M", 1048576.0}, {"MiB", 1048576.0}, {"MB", 1e6},
        {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"GB", 1e9},
        {"T", 1099511627776.0}, {"TiB", 1099511627776.0}, {"TB", 1e12},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix) != 0)
            continue;
        if (i < 2 && strchr(s, '.'))     /* fractional bytes make no sense */
            return false;
        double bytes = v * units[i].mul;
        if (bytes >= 18446744073709551615.0)
            return false;
        *out = (uint64_t)llround(bytes);
        return true;
    }
    return false;
}

bool mp_mem_available(uint64_t *out, char *err, size_t errlen)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) {
        snprintf(err, errlen, "/proc/meminfo: %s", strerror(errno));
        return false;
    }
    char line[256];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            *out = mul(kb, 1024);
            found = true;
            break;
        }
    }
    fclose(f);
    if (!found)
        snprintf(err, errlen, "/proc/meminfo: no MemAvailable line");
    return found;
}
