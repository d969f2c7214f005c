/* deltanet_avx2.c: the delta rule's hot loops (deltanet_simd.h) built for AVX2 + FMA, 8 floats
 * a vector; deltanet.c picks these at run time when the CPU has them. */
#pragma GCC optimize("fp-contract=fast") /* let a*b + c become one FMA */
#include <math.h>

#include "kernels/deltanet_internal.h"

#define DN_VW 8
#define DN_FN(name) name##_avx2
#include "kernels/deltanet_simd.h"
