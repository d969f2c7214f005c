/* q_iq.c: the i-quant family (IQ1_S ... IQ3_S): grids, dequantization, dot products.
 * (being written: fills no entries yet) */
#include "kernels/quants.h"

void q_register_iq(struct q_kernels *table, const struct q_cpu *cpu)
{
    (void)table;
    (void)cpu;
}
