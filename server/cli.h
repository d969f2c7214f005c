/* cli.h: strict parsing of command-line numbers and sizes shared by the subcommands.
 * A value that is not entirely a number in range is rejected, never truncated. */
#ifndef MOESERVE_CLI_H
#define MOESERVE_CLI_H

#include <stdbool.h>
#include <stdint.h>

bool cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
bool cli_parse_u64(const char *s, uint64_t *out);
bool cli_parse_f32(const char *s, float *out);
/* Sizes like 16G, 16GiB, 512M, 1.5T or plain bytes (K/M/G/T and KiB.. are powers of 1024,
 * KB/MB/GB/TB powers of 1000), as engine/memplan.h parses them. */
bool cli_parse_size(const char *s, uint64_t *out);

#endif
