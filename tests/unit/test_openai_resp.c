/* test_openai_resp.c: response and SSE chunk shapes as OpenAI clients parse them. */
#include <string.h>

#include "server/openai.h"
#include "tests/test.h"

int main(void)
{
    uint64_t rng = 1;
    struct oai_ident id = {.created = 1700000000, .model = "tiny"};
    oai_new_id(id.id, sizeof id.id, "chatcmpl-", &rng);
    CHECK(strncmp(id.id, "chatcmpl-", 9) == 0 && strlen(id.id) == 9 + 24, "id shape: %s", id.id);
    char other[48];
    oai_new_id(other, sizeof other, "chatcmpl-", &rng);
    CHECK(strcmp(id.id, other) != 0, "ids differ");
    struct oai_usage u = {.prompt_tokens = 10, .completion_tokens = 5, .cached_tokens = 4};
    struct oai_tool_call call = {.id = "call_1", .name = "f", .arguments = "{\"a\":1}"};
    json_t *r = oai_chat_response(&id, "", "thought", &call, 1, "tool_calls", NULL, &u);
    char *s = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
    CHECK(s && strstr(s, "\"object\":\"chat.completion\""), "object");
    CHECK(s && strstr(s, "\"content\":null"), "content null beside tool calls");
    CHECK(s && strstr(s, "\"reasoning_content\":\"thought\""), "reasoning");
    CHECK(s && strstr(s, "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]"),
          "tool call shape: %s", s);
    CHECK(s && strstr(s, "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,\"prompt_tokens_details\":{\"cached_tokens\":4}}"),
          "usage");
    CHECK(s && strstr(s, "\"finish_reason\":\"tool_calls\""), "finish reason");
    free(s);
    json_decref(r);
    char *c = oai_chat_chunk(&id, json_pack("{s:s}", "content", "Hi"), NULL, NULL);
    CHECK(c && strncmp(c, "data: {", 7) == 0 && strcmp(c + strlen(c) - 2, "\n\n") == 0, "SSE framing");
    CHECK(c && strstr(c, "\"delta\":{\"content\":\"Hi\"}") && strstr(c, "\"finish_reason\":null") &&
              strstr(c, "chat.completion.chunk"),
          "chunk shape: %s", c);
    free(c);
    c = oai_usage_chunk(&id, true, &u);
    CHECK(c && strstr(c, "\"choices\":[]") && strstr(c, "\"total_tokens\":15"), "usage chunk");
    free(c);
    c = oai_completion_chunk(&id, "ab\0cd", 5, "length", NULL);
    CHECK(c && strstr(c, "\"text\":\"ab\\u0000cd\"") && strstr(c, "\"finish_reason\":\"length\""), "completion chunk: %s", c);
    free(c);
    json_t *cr = oai_completion_response(&id, "text", "stop", NULL, &u);
    s = json_dumps(cr, JSON_COMPACT);
    CHECK(s && strstr(s, "\"object\":\"text_completion\"") && strstr(s, "\"text\":\"text\""), "completion response");
    free(s);
    json_decref(cr);
    return test_finish();
}
