/* test_utf8.c: strict UTF-8 validation and U+FFFD replacement of invalid bytes. */
#include <string.h>

#include "server/utf8.h"
#include "tests/test.h"

static void sanitized(const char *in, size_t n, const char *want)
{
    size_t len;
    char *out = utf8_sanitize(in, n, &len);
    CHECK(out && len == strlen(want) && memcmp(out, want, len) == 0, "sanitize gives [%s]", out ? out : "");
    free(out);
}

int main(void)
{
    CHECK(utf8_valid("héllo 世界 🙂", strlen("héllo 世界 🙂")), "valid text");
    CHECK(utf8_seq_len("\xF0\x9F\x99\x82", 4) == 4 && utf8_seq_len("\xF0\x9F\x99", 3) == 0, "4-byte and truncated");
    CHECK(!utf8_valid("\xC0\xAF", 2), "overlong refused");
    CHECK(!utf8_valid("\xED\xA0\x80", 3), "surrogate refused");
    CHECK(!utf8_valid("\xF4\x90\x80\x80", 4), "past U+10FFFF refused");
    CHECK(!utf8_valid("\x80", 1) && !utf8_valid("\xFF", 1), "stray bytes refused");
    sanitized("a\xFF" "b", 3, "a\xEF\xBF\xBD" "b");
    sanitized("\xE4\xB8", 2, "\xEF\xBF\xBD\xEF\xBF\xBD");
    sanitized("ok", 2, "ok");
    return test_finish();
}
