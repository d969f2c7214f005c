/* test_chat.c: chat requests rendered with the real Qwen templates from the reference data:
 * tools shown or hidden by tool_choice, forced tool-call openings, the thinking switch. */
#include <string.h>

#include "server/chat.h"
#include "tests/test.h"

static char *slurp(const char *rel, size_t *len)
{
    char path[512];
    FILE *f = fopen(testdata_path(path, sizeof path, rel), "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    *len = fread(s, 1, (size_t)n, f);
    s[*len] = 0;
    fclose(f);
    return s;
}

static bool load(struct chat_template *ct, const char *rel)
{
    size_t len;
    char *src = slurp(rel, &len), err[256];
    CHECK(src != NULL, "read %s", rel);
    if (!src)
        return false;
    bool ok = chat_template_init(ct, src, len, err, sizeof err);
    CHECK(ok, "%s: %s", rel, err);
    free(src);
    return ok;
}

static bool render(const struct chat_template *ct, const char *body, struct chat_prompt *p)
{
    struct oai_request r;
    struct oai_error e;
    char err[256];
    bool ok = oai_parse(OAI_CHAT, body, strlen(body), &r, &e);
    CHECK(ok, "request: %s", e.message);
    ok = ok && chat_render(ct, &r, p, err, sizeof err);
    CHECK(ok, "render: %s", err);
    oai_request_free(&r);
    return ok;
}

static size_t ends(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int main(void)
{
    struct chat_template coder, qwen3;
    struct chat_prompt p;
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
                        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
    char body[1024];
    if (load(&coder, "chat-templates/Qwen3-Coder.jinja")) {
        CHECK(coder.form == TOOLCALL_XML, "Qwen3-Coder asks for XML calls");
        snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"}],%s}", tools);
        if (render(&coder, body, &p)) {
            CHECK(strstr(p.text, "get_weather") && ends(p.text, "<|im_start|>assistant\n") && !p.forced,
                  "tools rendered, generation prompt last");
            chat_prompt_free(&p);
        }
        snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],%s,\"tool_choice\":\"none\"}", tools);
        if (render(&coder, body, &p)) {
            CHECK(!strstr(p.text, "get_weather"), "tool_choice none hides the tools");
            chat_prompt_free(&p);
        }
        snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],%s,"
                 "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}", tools);
        if (render(&coder, body, &p)) {
            CHECK(ends(p.text, "<|im_start|>assistant\n<tool_call>\n<function=get_weather>\n") && p.forced,
                  "named tool: the answer starts inside the call");
            chat_prompt_free(&p);
        }
        snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
                 "\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                 "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"-3C\"}],%s}", tools);
        if (render(&coder, body, &p)) {
            CHECK(strstr(p.text, "<parameter=city>\nOslo\n</parameter>") && strstr(p.text, "-3C"),
                  "string arguments rendered as XML parameters");
            chat_prompt_free(&p);
        }
        chat_template_free(&coder);
    }
    if (load(&qwen3, "chat-templates/Qwen-Qwen3-0.6B.jinja")) {
        CHECK(qwen3.form == TOOLCALL_JSON, "Qwen3 asks for JSON calls");
        if (render(&qwen3, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"chat_template_kwargs\":{\"enable_thinking\":false}}", &p)) {
            CHECK(ends(p.text, "<think>\n\n</think>\n\n") && !p.in_reasoning, "thinking off: empty think block");
            chat_prompt_free(&p);
        }
        if (render(&qwen3, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &p)) {
            CHECK(ends(p.text, "<|im_start|>assistant\n") && !p.in_reasoning, "thinking on: the model opens <think>");
            chat_prompt_free(&p);
        }
        snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],%s,\"tool_choice\":\"required\"}", tools);
        if (render(&qwen3, body, &p)) {
            CHECK(ends(p.text, "<tool_call>\n{\"name\": \""), "required: JSON call opened");
            chat_prompt_free(&p);
        }
        chat_template_free(&qwen3);
    }
    struct chat_template bad;
    char err[256];
    CHECK(!chat_template_init(&bad, "{% for x in y %}", 16, err, sizeof err) && strstr(err, "line"),
          "unsupported template fails at load: %s", err);
    return test_finish();
}
