/* log.c: leveled, timestamped log lines (server/log.h). One line is one write, so lines from
 * HTTP threads and the engine thread never interleave mid-line. */
#include "server/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    pthread_mutex_t mu;
    enum log_level level;
    int fd;
    char path[1024];
} logger = {PTHREAD_MUTEX_INITIALIZER, LOG_INFO, 2, ""};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

bool log_setup(const char *level, const char *path, char *err, size_t errlen)
{
    int lv = -1;
    for (int i = 0; i < 4; i++)
        if (level && strcmp(level, level_names[i]) == 0)
            lv = i;
    if (lv < 0) {
        snprintf(err, errlen, "--log-level '%s' is not error, warn, info or debug", level ? level : "");
        return false;
    }
    int fd = 2;
    if (path && *path) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            snprintf(err, errlen, "--log-file %s: %s", path, strerror(errno));
            return false;
        }
    }
    pthread_mutex_lock(&logger.mu);
    if (logger.fd > 2)
        close(logger.fd);
    logger.fd = fd;
    logger.level = (enum log_level)lv;
    snprintf(logger.path, sizeof logger.path, "%s", path ? path : "");
    pthread_mutex_unlock(&logger.mu);
    return true;
}

void log_reopen(void)
{
    pthread_mutex_lock(&logger.mu);
    if (logger.path[0]) {
        int fd = open(logger.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd >= 0) {
            if (logger.fd > 2)
                close(logger.fd);
            logger.fd = fd;
        }
    }
    pthread_mutex_unlock(&logger.mu);
}

bool log_enabled(enum log_level level)
{
    return level <= logger.level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000, level_names[level]);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    n = m < 0 ? n : (n + m >= (int)sizeof line - 1 ? (int)sizeof line - 2 : n + m);
    if (line[n - 1] != '\n')
        line[n++] = '\n';
    pthread_mutex_lock(&logger.mu);
    ssize_t w = write(logger.fd, line, (size_t)n);
    (void)w;
    pthread_mutex_unlock(&logger.mu);
}
