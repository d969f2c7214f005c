/* log.h: the server's log: leveled lines with a UTC timestamp to stderr or a file.
 * Process-wide by nature (signal handlers reopen it), configured once at start-up. */
#ifndef MOESERVE_LOG_H
#define MOESERVE_LOG_H

#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the level ("error".."debug") and the file (NULL: stderr). False with a message. */
bool log_setup(const char *level, const char *path, char *err, size_t errlen);
/* Reopens the log file (after logrotate moved it); called on SIGHUP. */
void log_reopen(void);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
