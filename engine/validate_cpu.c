/* validate_cpu.c: the CPU backend's capabilities for the validator (which types have kernels).
 * Kept apart from validate.c so the validator links without the kernels (fuzzing). */
#include "engine/validate.h"
#include "kernels/quants.h"

static bool cpu_type_ok(const struct val_caps *caps, uint32_t type)
{
    const struct q_kernels *k = q_kernels_get(type);
    return k && k->dequant && k->dot;
}

static const struct val_caps cpu_caps = {"cpu", cpu_type_ok, NULL};

const struct val_caps *val_cpu_caps(void)
{
    return &cpu_caps;
}
