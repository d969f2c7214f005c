/* q_basic.c: float, legacy, K-quant, ternary and FP4 types: dequantization, dot products.
 * (being written: fills no entries yet) */
#include "kernels/quants.h"

void q_register_basic(struct q_kernels *table, const struct q_cpu *cpu)
{
    (void)table;
    (void)cpu;
}
