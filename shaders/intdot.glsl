// intdot.glsl: quantized dot products in ggml-cpu's float order: exact integer sums, turned to
// float where the CPU's kernel does: per super-block for the K-quants (block_dot_int), whole rows
// for Q8_0 and MXFP4, whose float sums run across a row's blocks (row_dot_int); and the same
// orders spread over eight threads per output for the matrix-vector shaders (row_lane_acc,
// chain_row, f32_row_slots).

// Scales of the activation blocks: act_round.comp writes them beside the rounded values (one
// float per block, in the values' order) when the product's caller asks, since deriving one from
// the values costs more loads than the block's weights; a dispatch without them (NO_SCALES)
// derives them. The block at vec4 index xv is block (4 xv - p.x_off) / size of the dispatch's x.
#define NO_SCALES 0xFFFFFFFFu

// act_round's scale of the activation block of `size` values at vec4 index xv (p.xs_off given).
float given_scale(uint xv, uint size)
{
    return act_scales[p.xs_off + (4u * xv - p.x_off) / size];
}

// The Q8_K scale |d| of the activation block of 256 values at vec4 index xv. act_round wrote
// x = d * q (q integer, |q| <= 127, the largest |q| is 127) rounded to F32; d is the candidate
// near amax / 127 from which every value is reproduced; 0 for a block of zeros, -1 when the values
// are not on a Q8_K grid (activations that were not rounded: those are multiplied in F32).
float q8k_scale(uint xv)
{
    if (p.xs_off != NO_SCALES)
        return given_scale(xv, 256u);
    float amax = 0.0;
    for (uint i = 0u; i < 64u; i++) {
        vec4 v = abs(x4[xv + i]);
        amax = max(amax, max(max(v.x, v.y), max(v.z, v.w)));
    }
    if (amax == 0.0)
        return 0.0;
    uint d0 = floatBitsToUint(amax / 127.0);
    for (uint k = 0u; k < 7u; k++) {
        // candidates d0, d0 + 1, d0 - 1, d0 + 2, ... in units of the last place
        int off = (k & 1u) == 1u ? int(k + 1u) / 2 : -int(k / 2u);
        precise float c = uintBitsToFloat(uint(int(d0) + off));
        bool ok = true;
        for (uint i = 0u; i < 64u && ok; i++) {
            vec4 v = x4[xv + i];
            precise vec4 back = c * roundEven(v / c);
            ok = all(equal(back, v));
        }
        if (ok)
            return c;
    }
    return -1.0;
}

// The F32 product of one block with unrounded activations.
float block_dot_f32(uint bo, uint xv)
{
    float f = 0.0;
    for (uint g = 0u; g < GROUPS_PER_BLOCK; g++) {
        vec4 lo, hi;
        dequant8(bo, g, lo, hi);
        f += dot(lo, x4[xv + 2u * g]) + dot(hi, x4[xv + 2u * g + 1u]);
    }
    return f;
}

// Activation values v..v+3 of the block as Q8_K integers.
ivec4 q8_ints(uint xv, uint v, float d8)
{
    return ivec4(roundEven(x4[xv + v / 4u] / d8));
}

#include "f16.glsl"

// a x b + c rounded once, as the CPU's fused multiply-add: GLSL's fma() may be a multiply and an
// add (Vulkan lets it round twice; lavapipe does), which moved 1 in 2 results by an ulp. The
// product is split exactly (Dekker), the sum carried with its error (Knuth's two-sum); the last
// addition rounds the exact value except when t + e itself rounds across a midpoint (not seen).
precise float fma_rn(float a, float b, float c)
{
    const float split = 4097.0;  // 2^12 + 1
    float p = a * b;
    float ca = split * a, cb = split * b;
    float ah = ca - (ca - a), bh = cb - (cb - b);
    float al = a - ah, bl = b - bh;
    float e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    float s = c + p;
    float bb = s - c;
    float t = (c - (s - bb)) + (p - bb);
    return s + (t + e);
}

// The sum of eight float lanes as the CPU's hsum: (0 + 4, 1 + 5, ...), then pairs, then the two.
float lanes_hsum(float a[8])
{
    precise float s0 = a[0] + a[4], s1 = a[1] + a[5], s2 = a[2] + a[6], s3 = a[3] + a[7];
    precise float t0 = s0 + s2, t1 = s1 + s3;
    precise float r = t0 + t1;
    return r;
}

// The Q8_0 scale of the activation block of 32 values at vec4 index xv: x = d * q exactly (d
// F16, the largest |q| 127). 0 for a block of zeros, -1 when the values are not on that grid.
float q8_0_scale(uint xv)
{
    if (p.xs_off != NO_SCALES)
        return given_scale(xv, 32u);
    float amax = 0.0;
    for (uint i = 0u; i < 8u; i++) {
        vec4 v = abs(x4[xv + i]);
        amax = max(amax, max(max(v.x, v.y), max(v.z, v.w)));
    }
    if (amax == 0.0)
        return 0.0;
    precise float d = unpackHalf2x16(f16_bits(amax / 127.0)).x;
    for (uint i = 0u; i < 8u; i++) {
        vec4 v = x4[xv + i];
        precise vec4 back = d * roundEven(v / d);
        if (!all(equal(back, v)))
            return -1.0;
    }
    return d;
}

#if defined(QTYPE_f32)
// The sum of 16 lanes as ggml's AVX-512 reduce: 8 + 8, 4 + 4, then (0 + 2) + (1 + 3).
float reduce16(float v[16])
{
    precise float a[8], b[4];
    for (uint i = 0u; i < 8u; i++)
        a[i] = v[8u + i] + v[i];
    for (uint i = 0u; i < 4u; i++)
        b[i] = a[4u + i] + a[i];
    precise float r = (b[0] + b[2]) + (b[1] + b[3]);
    return r;
}

// One F32 row of 8 nb values at byte rb times x at vec4 index xv, in ggml-cpu's orders (the
// router): a token alone as the AVX-512 vec_dot (64 slots of fused multiply-adds folded
// (0 + 2) + (1 + 3) to 16 lanes, reduced, the tail of n % 64 added one by one), the tokens of a
// batch (per_pair) as tinyBLAS (16 lanes, reduced).
float row_dot_int(uint rb, uint xv, uint nb, bool per_pair)
{
    uint n = 8u * nb, w = rb >> 2;
    float lane[16];
    for (uint l = 0u; l < 16u; l++)
        lane[l] = 0.0;
    if (per_pair) {
        for (uint i = 0u; i < n; i += 4u) {
            vec4 xs = x4[xv + i / 4u];
            for (uint e = 0u; e < 4u; e++)
                lane[(i + e) % 16u] = fma_rn(uintBitsToFloat(w32[w + i + e]), xs[e], lane[(i + e) % 16u]);
        }
        return reduce16(lane);
    }
    uint np = n - n % 64u;
    for (uint l = 0u; l < 16u; l++) {
        float slot[4];
        for (uint q = 0u; q < 4u; q++) {
            slot[q] = 0.0;
            for (uint i = 16u * q + l; i < np; i += 64u)
                slot[q] = fma_rn(uintBitsToFloat(w32[w + i]), x4[xv + i / 4u][i % 4u], slot[q]);
        }
        precise float f = (slot[0] + slot[2]) + (slot[1] + slot[3]);
        lane[l] = f;
    }
    float sum = reduce16(lane);
    for (uint i = np; i < n; i++)
        sum = fma_rn(uintBitsToFloat(w32[w + i]), x4[xv + i / 4u][i % 4u], sum);
    return sum;
}
#define HAVE_ROW_DOT 1

// The same orders spread over eight threads (matvec.comp's F32 rows): thread L owns slots L,
// L + 8, ... of the order's slot set (the 64 slots of a token alone, the 16 lanes of a batch),
// each the CPU's chain of fused multiply-adds over its elements; f32_row_sum folds them as
// row_dot_int does. slots[k] is slot L + 8k.
void f32_row_slots(uint rb, uint xv, uint n, bool per_pair, uint L, out float slots[8])
{
    uint w = rb >> 2, n_slots = per_pair ? 16u : 64u, np = per_pair ? n : n - n % 64u;
    for (uint k = 0u; k < 8u; k++) {
        uint sl = L + 8u * k;
        precise float acc = 0.0;
        if (sl < n_slots)
            for (uint i = sl; i < np; i += n_slots)
                acc = fma_rn(uintBitsToFloat(w32[w + i]), x4[xv + i / 4u][i % 4u], acc);
        slots[k] = acc;
    }
}

// The row's result from its slots (slot[s] for s < 64, or < 16 with per_pair) and the tail a
// token alone adds one by one.
float f32_row_sum(uint rb, uint xv, uint n, bool per_pair, float slot[64])
{
    float lane[16];
    for (uint l = 0u; l < 16u; l++) {
        precise float f = (slot[l] + slot[32u + l]) + (slot[16u + l] + slot[48u + l]);
        lane[l] = per_pair ? slot[l] : f;
    }
    float sum = reduce16(lane);
    uint w = rb >> 2;
    for (uint i = per_pair ? n : n - n % 64u; i < n; i++)
        sum = fma_rn(uintBitsToFloat(w32[w + i]), x4[xv + i / 4u][i % 4u], sum);
    return sum;
}
#define HAVE_F32_SLOTS 1
#endif

#if defined(QTYPE_q8_0) || defined(QTYPE_mxfp4)
// The F32 product of one row of nb blocks with unrounded activations.
float row_dot_f32(uint rb, uint xv, uint nb)
{
    float f = 0.0;
    for (uint b = 0u; b < nb; b++)
        f += block_dot_f32(rb + b * BLOCK_BYTES, xv + b * (QK / 4u));
    return f;
}
#endif

#if defined(QTYPE_q8_0)
int ld_i8(uint b)
{
    return int(ld_u8(b) << 24) >> 24;
}

// One Q8_0 row of nb blocks at byte rb times Q8_0 activations at vec4 index xv, as ggml-cpu's
// AVX2 vec_dot (and tinyBLAS) sum it: 8 lanes, each the integer sum of 4 adjacent products,
// accumulated over the blocks with one fused multiply-add by the block's d_w x d_x; then the
// lanes summed pairwise (4 + 4, 2 + 2, 1 + 1).
float row_dot_int(uint rb, uint xv, uint nb, bool per_pair)
{
    precise float acc[8];
    for (uint l = 0u; l < 8u; l++)
        acc[l] = 0.0;
    for (uint b = 0u; b < nb; b++) {
        uint bo = rb + 34u * b, bx = xv + 8u * b;
        float d8 = q8_0_scale(bx);
        if (d8 < 0.0)
            return row_dot_f32(rb, xv, nb);
        if (d8 == 0.0)
            continue;
        precise float d = ld_f16(bo) * d8;
        for (uint l = 0u; l < 8u; l++) {
            ivec4 q8 = ivec4(roundEven(x4[bx + l] / d8));
            uint w = bo + 2u + 4u * l;
            int s = ld_i8(w) * q8.x + ld_i8(w + 1u) * q8.y + ld_i8(w + 2u) * q8.z + ld_i8(w + 3u) * q8.w;
            acc[l] = fma_rn(d, float(s), acc[l]);
        }
    }
    for (uint l = 0u; l < 4u; l++)
        acc[l] = acc[l] + acc[l + 4u];
    for (uint l = 0u; l < 2u; l++)
        acc[l] = acc[l] + acc[l + 2u];
    precise float r = acc[0] + acc[1];
    return r;
}
#define HAVE_ROW_DOT 1

// The same lanes for the lane path (row_lane_acc): lane L of a block is the integer sum of its
// values 4L..4L+3, taken times d_w x d_x; the lanes' sum is the pairwise one above (lanes_hsum).
int block_lane_int(uint bo, uint xv, float d8, uint L)
{
    ivec4 q8 = ivec4(roundEven(x4[xv + L] / d8));
    uint w = bo + 2u + 4u * L;
    return ld_i8(w) * q8.x + ld_i8(w + 1u) * q8.y + ld_i8(w + 2u) * q8.z + ld_i8(w + 3u) * q8.w;
}

float block_lane_d(uint bo, float d8)
{
    precise float d = ld_f16(bo) * d8;
    return d;
}
#define LANE_LAST_SCALE 1.0
#define LANE_ACT_SCALE q8_0_scale
#define HAVE_LANE_DOT 1

#elif defined(QTYPE_mxfp4)
// One MXFP4 row of nb blocks times Q8_0 activations, in the order of ggml-cpu's repacked MXFP4
// kernels (every MXFP4 matrix of 8k rows, single tokens and groups alike): per block the exact
// integer sum, one fused multiply-add with (halved E8M0 scale x activation scale).
// The chain path's unit (chain_row) is the block: its integer sum.
#define CHAIN_UNITS 1u
#define CHAIN_ACT_SCALE q8_0_scale
ivec2 chain_unit_int(uint bo, uint bx, float d8, uint unit)
{
    int s = 0;
    for (uint l = 0u; l < 4u; l++) {
        ivec4 lo = ivec4(roundEven(x4[bx + l] / d8)), hi = ivec4(roundEven(x4[bx + 4u + l] / d8));
        for (uint e = 0u; e < 4u; e++) {
            uint q = ld_u8(bo + 1u + 4u * l + e);
            s += lo[e] * int(kvalue_fp4(q & 15u)) + hi[e] * int(kvalue_fp4(q >> 4));
        }
    }
    return ivec2(s, 0);
}

// A block's fused multiply-add into the row's accumulator (acc_min unused).
void chain_block(uint bo, float d8, ivec2 sums[CHAIN_UNITS], bool per_pair, inout float acc, inout float acc_min)
{
    precise float d = block_scale(bo) * d8;
    acc = fma_rn(float(sums[0].x), d, acc);
}

float chain_result(float acc, float acc_min)
{
    return acc;
}

float row_dot_int(uint rb, uint xv, uint nb, bool per_pair)
{
    precise float acc = 0.0, unused = 0.0;
    for (uint b = 0u; b < nb; b++) {
        uint bo = rb + 17u * b, bx = xv + 8u * b;
        float d8 = q8_0_scale(bx);
        if (d8 < 0.0)
            return row_dot_f32(rb, xv, nb);
        if (d8 == 0.0)
            continue;
        ivec2 sums[1] = {chain_unit_int(bo, bx, d8, 0u)};
        chain_block(bo, d8, sums, per_pair, acc, unused);
    }
    return acc;
}
#define HAVE_ROW_DOT 1
#define HAVE_CHAIN_DOT 1
#endif

#if defined(QTYPE_q4_K)
// 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at byte sb, as integers.
ivec2 scale_min_k4_int(uint sb, uint j)
{
    if (j < 4u)
        return ivec2(ld_u8(sb + j) & 63u, ld_u8(sb + j + 4u) & 63u);
    uint b = ld_u8(sb + j + 4u);
    return ivec2((b & 15u) | ((ld_u8(sb + j - 4u) >> 6) << 4), (b >> 4) | ((ld_u8(sb + j) >> 6) << 4));
}

// Q4_K block at byte bo times the Q8_K activation block at vec4 index xv (scale d8 from
// q8k_scale; unrounded activations, d8 < 0, in F32 per value), as the CPU's repacked Q4_K kernels
// compute one super-block: integer sums of scale x (q4 . q8) and of min x (block sums), turned to
// float and taken times d (dmin) with one fused multiply-add per super-block (gemv), or per pair
// of 32-value sub-blocks (per_pair: gemm, tokens in groups of four); the mins subtracted last.
// The integer sums of pair `pair` (0..3) of the block's 32-value sub-blocks: scale x (q4 . q8)
// and min x (block sums). The chain path's unit (chain_row).
#define CHAIN_UNITS 4u
#define CHAIN_ACT_SCALE q8k_scale
ivec2 chain_unit_int(uint bo, uint xv, float d8, uint pair)
{
    int ps = 0, pm = 0;
    for (uint j = 2u * pair; j < 2u * pair + 2u; j++) {
        ivec2 sm = scale_min_k4_int(bo + 4u, j);
        uint qb = bo + 16u + 32u * pair, sh = 4u * (j % 2u);
        int s = 0, bs = 0;
        for (uint l = 0u; l < 32u; l += 4u) {
            ivec4 q8 = q8_ints(xv, 32u * j + l, d8);
            uint w = ld_u32(qb + l) >> sh;
            ivec4 q4 = ivec4(w & 15u, (w >> 8) & 15u, (w >> 16) & 15u, (w >> 24) & 15u);
            s += q8.x * q4.x + q8.y * q4.y + q8.z * q4.z + q8.w * q4.w;
            bs += q8.x + q8.y + q8.z + q8.w;
        }
        ps += sm.x * s;
        pm += sm.y * bs;
    }
    return ivec2(ps, pm);
}

// A super-block's fused multiply-adds into the row's two accumulators, as the repacked kernels:
// one per pair (gemm) or one for the block's sums (gemv).
void chain_block(uint bo, float d8, ivec2 sums[CHAIN_UNITS], bool per_pair, inout float acc, inout float acc_min)
{
    precise float d = ld_f16(bo) * d8, dmin = ld_f16(bo + 2u) * d8;
    int isum = 0, imin = 0;
    for (uint u = 0u; u < CHAIN_UNITS; u++) {
        if (per_pair) {
            acc = fma_rn(float(sums[u].x), d, acc);
            acc_min = fma_rn(float(sums[u].y), dmin, acc_min);
        }
        isum += sums[u].x;
        imin += sums[u].y;
    }
    if (!per_pair) {
        acc = fma_rn(float(isum), d, acc);
        acc_min = fma_rn(float(imin), dmin, acc_min);
    }
}

float chain_result(float acc, float acc_min)
{
    precise float r = acc - acc_min;
    return r;
}

float block_dot_int(uint bo, uint xv, float d8, bool per_pair)
{
    if (d8 == 0.0)
        return 0.0;
    if (d8 < 0.0)
        return block_dot_f32(bo, xv);
    ivec2 sums[CHAIN_UNITS];
    for (uint u = 0u; u < CHAIN_UNITS; u++)
        sums[u] = chain_unit_int(bo, xv, d8, u);
    precise float acc = 0.0, acc_min = 0.0;
    chain_block(bo, d8, sums, per_pair, acc, acc_min);
    return chain_result(acc, acc_min);
}
#define HAVE_INT_DOT 1
#define HAVE_CHAIN_DOT 1

#elif defined(QTYPE_q6_K)
int q6k_scale(uint bo, uint i)
{
    return int(ld_u8(bo + 192u + i) << 24) >> 24;
}

// Q6_K block at byte bo times the Q8_K activation block at xv, in ggml-cpu's AVX2 order (one
// order for every batch shape; per_pair is not used): eight int32 lanes (lane L: bytes 4L..4L+3
// of each 32-value vector of unsigned quants, minus 32 x scale x block sum of values
// 32L..32L+31), each times d (block_lane_d), then summed as hsum (block_dot_int below).
int block_lane_int(uint bo, uint xv, float d8, uint L)
{
    int lane = 0;
    for (uint h = 0u; h < 2u; h++) {
        uint qhw = ld_u32(bo + 128u + 32u * h + 4u * L);
        for (uint k = 0u; k < 4u; k++) {
            uint v0 = 128u * h + 32u * k + 4u * L;
            uint qlw = ld_u32(bo + 64u * h + 32u * (k & 1u) + 4u * L) >> (4u * (k >> 1));
            uint qu = (qlw & 0x0F0F0F0Fu) | (((qhw >> (2u * k)) & 0x03030303u) << 4);
            ivec4 q8 = q8_ints(xv, v0, d8);
            int dv = q8.x * int(qu & 255u) + q8.y * int((qu >> 8) & 255u) + q8.z * int((qu >> 16) & 255u) +
                     q8.w * int(qu >> 24);
            lane += q6k_scale(bo, v0 / 16u) * dv;
        }
    }
    for (uint i = 2u * L; i < 2u * L + 2u; i++) {
        int bs = 0;
        for (uint v = 16u * i; v < 16u * i + 16u; v += 4u) {
            ivec4 q8 = q8_ints(xv, v, d8);
            bs += q8.x + q8.y + q8.z + q8.w;
        }
        lane -= 32 * q6k_scale(bo, i) * bs;
    }
    return lane;
}

float block_lane_d(uint bo, float d8)
{
    precise float dd = d8 * ld_f16(bo + 208u);
    return dd;
}
#define LANE_LAST_SCALE 1.0
#endif

#if defined(QTYPE_iq2_s) || defined(QTYPE_iq3_s)
// Grid values 8g + 4 part .. + 3 of the block at bo with their signs, and the integer scale of
// their 16 values (IQ2_S: 2 sc + 1, whose 1/8 comes last; IQ3_S: 2 sc + 1).
#if defined(QTYPE_iq2_s)
#define IQ_LAST_SCALE 0.125
ivec4 iq_ints(uint bo, uint g, uint part)
{
    uint ib = g >> 2, l = g & 3u;
    uint idx = ld_u8(bo + 2u + g) | ((ld_u8(bo + 66u + ib) << (8u - 2u * l)) & 0x300u);
    uint e = tab[IQ2S_AT + 2u * idx + part];
    uint signs = ld_u8(bo + 34u + g) >> (4u * part);
    return ivec4(uvec4(e) >> uvec4(0u, 8u, 16u, 24u) & 0xFFu) *
           (1 - 2 * ivec4(uvec4(signs) >> uvec4(0u, 1u, 2u, 3u) & 1u));
}

int iq_scale(uint bo, uint g, uint part)
{
    uint ib = g >> 2, l = g & 3u;
    return 2 * int((ld_u8(bo + 74u + ib) >> (4u * (l >> 1))) & 15u) + 1;
}
#else
#define IQ_LAST_SCALE 1.0
ivec4 iq_ints(uint bo, uint g, uint part)
{
    uint ib = g >> 2, l = g & 3u;
    uint qh = ld_u8(bo + 66u + ib);
    uint i = ld_u8(bo + 2u + 2u * g + part) | ((qh << (8u - 2u * l - part)) & 256u);
    uint e = tab[IQ3S_AT + i];
    uint signs = ld_u8(bo + 74u + g) >> (4u * part);
    return ivec4(uvec4(e) >> uvec4(0u, 8u, 16u, 24u) & 0xFFu) *
           (1 - 2 * ivec4(uvec4(signs) >> uvec4(0u, 1u, 2u, 3u) & 1u));
}

int iq_scale(uint bo, uint g, uint part)
{
    uint ib = g >> 2;
    return 2 * int((ld_u8(bo + 106u + (ib >> 1)) >> (4u * (ib & 1u))) & 15u) + 1;
}
#endif

// IQ2_S / IQ3_S block at bo times the Q8_K activation block at xv in ggml-cpu's AVX2 order (one
// order for every batch shape): eight int32 lanes, lane L the values 4L..4L+3 of each 32-value
// sub-block times their scale; each lane times d once, summed as hsum, then IQ_LAST_SCALE.
int block_lane_int(uint bo, uint xv, float d8, uint L)
{
    int lane = 0;
    for (uint ib = 0u; ib < 8u; ib++) {
        uint g = 4u * ib + L / 2u, part = L % 2u;
        ivec4 q = iq_ints(bo, g, part);
        ivec4 q8 = q8_ints(xv, 32u * ib + 4u * L, d8);
        lane += iq_scale(bo, g, part) * (q.x * q8.x + q.y * q8.y + q.z * q8.z + q.w * q8.w);
    }
    return lane;
}

float block_lane_d(uint bo, float d8)
{
    precise float d = ld_f16(bo) * d8;
    return d;
}
#define LANE_LAST_SCALE IQ_LAST_SCALE
#endif

#if defined(QTYPE_q6_K) || defined(QTYPE_iq2_s) || defined(QTYPE_iq3_s)
// One block alone: the eight lanes (block_lane_int) times the block's multiplier, summed, then
// the type's last scale (LANE_LAST_SCALE). Across the blocks of a row the CPU accumulates each
// lane with a fused multiply-add before the sum (HAVE_LANE_DOT: the products' lane path).
float block_dot_int(uint bo, uint xv, float d8, bool per_pair)
{
    if (d8 == 0.0)
        return 0.0;
    if (d8 < 0.0)
        return block_dot_f32(bo, xv);
    precise float d = block_lane_d(bo, d8);
    precise float a[8];
    for (uint L = 0u; L < 8u; L++)
        a[L] = d * float(block_lane_int(bo, xv, d8, L));
    precise float r = LANE_LAST_SCALE * lanes_hsum(a);
    return r;
}
#define HAVE_INT_DOT 1
#define HAVE_LANE_DOT 1
#define LANE_ACT_SCALE q8k_scale

#endif

#if defined(HAVE_LANE_DOT)
// Lane L of a row of nb blocks at byte rb times the rounded activations at vec4 index xv (their
// scales from act_round): the lane's int32 sums of each block times the block's multiplier,
// accumulated with a fused multiply-add block after block, as the CPU kernel's vector lane.
float row_lane_acc(uint rb, uint xv, uint nb, uint L)
{
    precise float acc = 0.0;
    for (uint bi = 0u; bi < nb; bi++) {
        uint bo = rb + bi * BLOCK_BYTES, xb = xv + bi * (QK / 4u);
        float d8 = LANE_ACT_SCALE(xb);
        if (d8 != 0.0)  // the CPU's fma by d = 0 leaves acc as it is
            acc = fma_rn(block_lane_d(bo, d8), float(block_lane_int(bo, xb, d8, L)), acc);
    }
    return acc;
}
#endif

#if defined(HAVE_CHAIN_DOT)
shared ivec2 chain_sums[64];  // eight groups of eight threads: the 64-thread matvec workgroups

// The chain path (MXFP4, Q4_K), given act_round's scales: the CPU accumulates a row in one
// fused multiply-add per unit or block, a chain no threads can share, but the units' integer
// sums are independent. So eight threads of a group (`g`, thread `L`) compute eight units' sums
// at a time into shared memory and the group's thread 0 runs the chain over them: the CPU's float
// order for rows of any length. Every thread of the workgroup must call it the same number of
// times (it holds barriers); `live` says whether the group has a row (rb, x at vec4 index x0).
float chain_row(uint rb, uint x0, bool live, uint L, uint g, bool per_pair)
{
    const uint nb = p.ncols / QK, n_units = nb * CHAIN_UNITS;
    precise float acc = 0.0, acc_min = 0.0;
    for (uint u0 = 0u; u0 < n_units; u0 += 8u) {
        uint u = u0 + L, bi = u / CHAIN_UNITS;
        ivec2 s = ivec2(0);
        if (live && u < n_units) {
            float d8 = CHAIN_ACT_SCALE(x0 + bi * (QK / 4u));
            if (d8 != 0.0)
                s = chain_unit_int(rb + bi * BLOCK_BYTES, x0 + bi * (QK / 4u), d8, u % CHAIN_UNITS);
        }
        chain_sums[8u * g + L] = s;
        barrier();
        // eight units are whole blocks: CHAIN_UNITS is 1 or 4
        for (uint k = 0u; live && L == 0u && k < 8u && u0 + k < n_units; k += CHAIN_UNITS) {
            uint bk = (u0 + k) / CHAIN_UNITS;
            float d8 = CHAIN_ACT_SCALE(x0 + bk * (QK / 4u));
            if (d8 == 0.0)  // the CPU's fused multiply-add by d = 0 leaves the sums as they are
                continue;
            ivec2 sums[CHAIN_UNITS];
            for (uint j = 0u; j < CHAIN_UNITS; j++)
                sums[j] = chain_sums[8u * g + k + j];
            chain_block(rb + bk * BLOCK_BYTES, d8, sums, per_pair, acc, acc_min);
        }
        barrier();
    }
    return chain_result(acc, acc_min);
}
#endif
