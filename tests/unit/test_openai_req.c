/* test_openai_req.c: request parsing and validation: the forms clients really send are
 * normalised, and every malformed body gets a 400 naming the parameter at fault. */
#include <math.h>
#include <string.h>

#include "server/openai.h"
#include "tests/test.h"

static bool parse(enum oai_kind k, const char *body, struct oai_request *r, struct oai_error *e)
{
    return oai_parse(k, body, strlen(body), r, e);
}

static void expect_error(enum oai_kind k, const char *body, const char *param)
{
    struct oai_request r;
    struct oai_error e = {0};
    bool ok = parse(k, body, &r, &e);
    CHECK(!ok && e.status == 400 && (!param || strcmp(e.param, param) == 0),
          "rejected with param '%s': %.60s -> [%s] %s", param ? param : "", body, e.param, e.message);
    oai_request_free(&r);
}

static void check_chat(void)
{
    struct oai_request r;
    struct oai_error e;
    const char *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello \"},{\"type\":\"text\",\"text\":\"there\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\": 1}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"}],"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_completion_tokens\":64,"
        "\"temperature\":0,\"seed\":7,\"ignore_eos\":true,\"stop\":[\"END\",\"\"],\"logit_bias\":{\"11\":-100,\"12\":5},"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
        "\"chat_template_kwargs\":{\"enable_thinking\":false},\"user\":\"ignored\",\"unknown_field\":1}";
    CHECK(parse(OAI_CHAT, body, &r, &e), "%s", e.message);
    json_t *m = r.messages;
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system") == 0, "developer -> system");
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(m, 1), "content")), "Hello there") == 0, "parts joined");
    json_t *asst = json_array_get(m, 2);
    CHECK(strcmp(json_string_value(json_object_get(asst, "content")), "") == 0, "null content -> empty string");
    json_t *args = json_object_get(json_object_get(json_array_get(json_object_get(asst, "tool_calls"), 0), "function"), "arguments");
    CHECK(json_is_object(args) && json_integer_value(json_object_get(args, "x")) == 1, "arguments string -> object");
    CHECK(r.stream && r.include_usage && r.max_tokens == 64 && r.sampling.temperature == 0 && r.ignore_eos, "scalars");
    CHECK(r.sampling.has_seed && r.sampling.seed == 7, "seed");
    CHECK(r.n_stop == 1 && strcmp(r.stop[0], "END") == 0, "stop list (empty strings dropped)");
    CHECK(r.sampling.n_bias == 2, "logit bias entries");
    for (size_t i = 0; i < r.sampling.n_bias; i++)
        if (r.sampling.bias[i].token == 11)
            CHECK(isinf(r.sampling.bias[i].bias) && r.sampling.bias[i].bias < 0, "-100 bans");
    CHECK(r.tool_choice == OAI_TOOLS_NAMED && strcmp(r.tool_name, "f") == 0, "named tool choice");
    CHECK(json_is_false(json_object_get(r.template_kwargs, "enable_thinking")), "template kwargs");
    oai_request_free(&r);

    CHECK(parse(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r, &e) &&
              r.max_tokens == -1 && r.tool_choice == OAI_TOOLS_NONE && fabsf(r.sampling.temperature - 0.8f) < 1e-6f,
          "defaults");
    oai_request_free(&r);
}

static void check_errors(void)
{
    expect_error(OAI_CHAT, "{\"messages\":", NULL);
    expect_error(OAI_CHAT, "[1,2]", NULL);
    expect_error(OAI_CHAT, "", NULL);
    expect_error(OAI_CHAT, "{\"messages\":[]}", "messages");
    expect_error(OAI_CHAT, "{\"messages\":\"hi\"}", "messages");
    expect_error(OAI_CHAT, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[0]");
    expect_error(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages[0].content");
    expect_error(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content");
    const char *user = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char b[512];
#define E(field, param) (snprintf(b, sizeof b, "{%s,%s}", user, field), expect_error(OAI_CHAT, b, param))
    E("\"temperature\":\"hot\"", "temperature");
    E("\"temperature\":1e300", "temperature");
    E("\"max_tokens\":-1", "max_tokens");
    E("\"max_tokens\":1e30", "max_tokens");
    E("\"max_tokens\":1.5", "max_tokens");
    E("\"n\":2", "n");
    E("\"stream\":\"yes\"", "stream");
    E("\"stop\":[1]", "stop");
    E("\"logit_bias\":{\"abc\":1}", "logit_bias");
    E("\"logit_bias\":{\"5\":1000}", "logit_bias");
    E("\"top_logprobs\":5", "top_logprobs");
    E("\"tool_choice\":\"required\"", "tool_choice");
    E("\"tools\":[{\"function\":{}}]", "tools");
    E("\"tools\":[{\"function\":{\"name\":\"a\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"b\"}}", "tool_choice");
    E("\"seed\":\"x\"", "seed");
    E("\"messages\":[]", NULL); /* duplicate key */
#undef E
    /* invalid UTF-8 and absurd nesting are refused by the JSON parser, not crashed on */
    expect_error(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", NULL);
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = 0;
    expect_error(OAI_CHAT, deep, NULL);
    free(deep);
}

static void check_completions(void)
{
    struct oai_request r;
    struct oai_error e;
    CHECK(parse(OAI_COMPLETION, "{\"prompt\":\"def f(\",\"suffix\":\"\\n  return x\",\"echo\":true,\"logprobs\":3}", &r, &e) &&
              r.n_prompts == 1 && strcmp(r.prompts[0].text, "def f(") == 0 && strcmp(r.suffix, "\n  return x") == 0 &&
              r.echo && r.logprobs && r.top_logprobs == 3,
          "string prompt with suffix: %s", e.message);
    oai_request_free(&r);
    CHECK(parse(OAI_COMPLETION, "{\"prompt\":[1,2,3]}", &r, &e) && r.n_prompts == 1 && r.prompts[0].n_tokens == 3 &&
              r.prompts[0].tokens[2] == 3,
          "token prompt");
    oai_request_free(&r);
    CHECK(parse(OAI_COMPLETION, "{\"prompt\":[\"a\",[5,6]]}", &r, &e) && r.n_prompts == 2 &&
              r.prompts[1].n_tokens == 2,
          "list of prompts");
    oai_request_free(&r);
    expect_error(OAI_COMPLETION, "{\"prompt\":[1,-2]}", "prompt");
    expect_error(OAI_COMPLETION, "{\"prompt\":{}}", "prompt");
    CHECK(parse(OAI_INFILL, "{\"input_prefix\":\"a\",\"input_suffix\":\"b\",\"input_extra\":[{\"filename\":\"x.c\",\"text\":\"int x;\"}]}", &r, &e) &&
              strcmp(r.input_prefix, "a") == 0 && json_array_size(r.input_extra) == 1,
          "infill: %s", e.message);
    oai_request_free(&r);
    expect_error(OAI_INFILL, "{\"input_extra\":[{\"filename\":3}]}", "input_extra");
}

int main(void)
{
    check_chat();
    check_errors();
    check_completions();
    return test_finish();
}
