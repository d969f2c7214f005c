/* main.c: the moeserve command line: dispatches subcommands.
 * (being written) */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "moeserve: no subcommands yet\n");
    return 2;
}
