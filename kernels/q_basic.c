/* q_basic.c: registers every non-grid ggml type: floats and 32-value blocks (q_legacy.c),
 * super-block K-quants and friends (q_kquants.c). */
#include "kernels/q_block.h"

void q_register_basic(struct q_kernels *table, const struct q_cpu *cpu)
{
    q_register_legacy(table, cpu);
    q_register_kquants(table, cpu);
}
