/* cli.c: strict parsing of command-line numbers and sizes (server/cli.h).
 * strtoull alone accepts "12abc" and "-1"; these wrappers do not. */
#include "server/cli.h"

#include "engine/memplan.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (!cli_parse_u64(s, &v) || v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool cli_parse_f32(const char *s, float *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return false;
    *out = (float)v;
    return true;
}

bool cli_parse_size(const char *s, uint64_t *out)
{
    return mp_parse_size(s, out); /* one size syntax for the planner and every flag */
}
