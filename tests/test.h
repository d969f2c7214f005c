/* test.h: the tiny assertion harness every unit test uses.
 * Counts checks, reports failures with file:line, ends with "N passed, N failed". */
#ifndef MOESERVE_TEST_H
#define MOESERVE_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static int test_passed, test_failed;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            test_passed++;                                                    \
        } else {                                                              \
            test_failed++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* Fatal precondition (e.g. a reference file that must exist): counts a failure and exits. */
#define REQUIRE(cond, ...)                                                    \
    do {                                                                      \
        bool required_ = (cond);                                              \
        CHECK(required_, __VA_ARGS__);                                        \
        if (!required_)                                                       \
            return test_finish();                                             \
    } while (0)

/* Same inside a void helper: counts a failure and returns. */
#define REQUIRE_VOID(cond)                                                    \
    do {                                                                      \
        if (!(cond)) {                                                        \
            CHECK(false, "precondition %s", #cond);                           \
            return;                                                           \
        }                                                                     \
    } while (0)

static inline int test_finish(void)
{
    printf("%d passed, %d failed\n", test_passed, test_failed);
    /* flush now: a sanitizer report at exit ends the process before stdio would */
    fflush(stdout);
    return test_failed ? 1 : 0;
}

/* Path of a file in the shared reference data: $MOESERVE_TESTDATA or ../shared/testdata
 * (tests run from the repository root). Writes into buf and returns it. */
static inline const char *testdata_path(char *buf, size_t len, const char *rel)
{
    const char *dir = getenv("MOESERVE_TESTDATA");
    snprintf(buf, len, "%s/%s", dir && *dir ? dir : "../shared/testdata", rel);
    return buf;
}

#endif
