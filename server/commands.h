/* commands.h: the moeserve subcommands, one file each (server/cmd_*.c).
 * Each takes the arguments after its name and returns the process exit status. */
#ifndef MOESERVE_COMMANDS_H
#define MOESERVE_COMMANDS_H

int cmd_inspect(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
