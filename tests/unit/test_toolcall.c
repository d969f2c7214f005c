/* test_toolcall.c: tool-call parsing (Qwen3-Coder XML and Hermes JSON, on recorded model outputs)
 * and the streaming splitter of content / reasoning / tool calls, fed whole and byte by byte. */
#include <string.h>

#include "server/chat_stream.h"
#include "server/toolcall.h"
#include "tests/test.h"

static const char *tools_json =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"},\"metric\":{\"type\":\"boolean\"},"
    "\"opts\":{\"type\":\"object\"},\"tags\":{\"type\":[\"array\",\"null\"]}}}}}]";

static void check_parse(void)
{
    json_t *tools = json_loads(tools_json, 0, NULL);
    struct toolcall tc;
    const char *xml = "\n<function=get_weather>\n<parameter=city>\nSan Francisco, CA\n</parameter>\n"
                      "<parameter=days>\n3\n</parameter>\n<parameter=metric>\ntrue\n</parameter>\n"
                      "<parameter=opts>\n{\"a\": [1, 2]}\n</parameter>\n<parameter=tags>\n[\"x\"]\n</parameter>\n</function>\n";
    CHECK(toolcall_parse(xml, strlen(xml), tools, &tc), "XML call parses");
    CHECK(tc.name && strcmp(tc.name, "get_weather") == 0, "name");
    CHECK(tc.arguments && strcmp(tc.arguments,
                                 "{\"city\":\"San Francisco, CA\",\"days\":3,\"metric\":true,\"opts\":{\"a\":[1,2]},\"tags\":[\"x\"]}") == 0,
          "typed arguments: %s", tc.arguments ? tc.arguments : "none");
    toolcall_free(&tc);
    const char *str_num = "<function=get_weather>\n<parameter=city>\n42\n</parameter>\n<parameter=days>\nsoon\n</parameter>\n</function>";
    CHECK(toolcall_parse(str_num, strlen(str_num), tools, &tc) &&
              strcmp(tc.arguments, "{\"city\":\"42\",\"days\":\"soon\"}") == 0,
          "string stays a string, a non-number integer stays text: %s", tc.arguments);
    toolcall_free(&tc);
    const char *hermes = "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n";
    CHECK(toolcall_parse(hermes, strlen(hermes), tools, &tc) && strcmp(tc.name, "get_weather") == 0 &&
              strcmp(tc.arguments, "{\"city\":\"Paris\"}") == 0,
          "Hermes JSON call");
    toolcall_free(&tc);
    const char *bad[] = {"<function=x>\n<parameter=a>\n1\n</function>", "<function=>\n</function>",
                         "{\"arguments\": {}}", "{\"name\": \"f\", \"arguments\": 3}", "not a call",
                         "<function=f>\n</function>trailing", "<function=f>\n<parameter=>1</parameter></function>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!toolcall_parse(bad[i], strlen(bad[i]), tools, &tc), "malformed call %zu refused", i);
    CHECK(toolcall_form_of_template("... <function=example> ...") == TOOLCALL_XML, "XML template");
    CHECK(toolcall_form_of_template("{\"name\": <function-name>}") == TOOLCALL_JSON, "JSON template");
    json_decref(tools);
}

struct collected {
    char content[2048], reasoning[2048], names[256], args[2048];
    int events;
};

static void collect(void *ctx, const struct chat_event *ev)
{
    struct collected *c = ctx;
    char *dst = ev->kind == CHAT_CONTENT ? c->content : ev->kind == CHAT_REASONING ? c->reasoning
              : ev->kind == CHAT_TOOL_NAME ? c->names : c->args;
    size_t cap = ev->kind == CHAT_TOOL_NAME ? sizeof c->names : sizeof c->content;
    strncat(dst, ev->text, cap - strlen(dst) - 1 < ev->len ? cap - strlen(dst) - 1 : ev->len);
    if (ev->kind == CHAT_TOOL_NAME)
        strncat(dst, ";", cap - strlen(dst) - 1);
    c->events++;
}

/* Runs text through a splitter in pieces of `piece` bytes (0: all at once). */
static struct collected split(const char *text, struct chat_stream_opts o, size_t piece)
{
    struct collected c;
    memset(&c, 0, sizeof c);
    struct chat_stream *cs = chat_stream_new(&o);
    size_t n = strlen(text), step = piece ? piece : n;
    for (size_t i = 0; i < n; i += step)
        chat_stream_feed(cs, text + i, n - i < step ? n - i : step, collect, &c);
    chat_stream_finish(cs, collect, &c);
    chat_stream_free(cs);
    return c;
}

static void check_stream(void)
{
    json_t *tools = json_loads(tools_json, 0, NULL);
    struct chat_stream_opts o = {.parse_reasoning = true, .parse_tools = true, .tools = tools};
    const char *out = "<think>\nThe user wants weather.\n</think>\n\nLet me check.\n<tool_call>\n<function=get_weather>\n"
                      "<parameter=city>\nOslo\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", "
                      "\"arguments\": {\"city\": \"Rome\"}}\n</tool_call>";
    for (size_t piece = 0; piece <= 3; piece++) {
        struct collected c = split(out, o, piece);
        CHECK(strcmp(c.reasoning, "\nThe user wants weather.\n") == 0, "reasoning (piece %zu): [%s]", piece, c.reasoning);
        CHECK(strcmp(c.content, "Let me check.\n") == 0, "content before the calls (piece %zu): [%s]", piece, c.content);
        CHECK(strcmp(c.names, "get_weather;get_weather;") == 0, "two calls (piece %zu): %s", piece, c.names);
        CHECK(strcmp(c.args, "{\"city\":\"Oslo\"}{\"city\":\"Rome\"}") == 0, "arguments (piece %zu): %s", piece, c.args);
    }
    struct collected c = split("Answer <tool_call>\n<function=broken>\n<parameter=x>1\n</tool_call> done", o, 1);
    CHECK(strstr(c.content, "<tool_call>") && strstr(c.content, "done") && !c.names[0],
          "malformed call comes back as content: [%s]", c.content);
    c = split("unfinished <tool_call>\n<function=f>", o, 2);
    CHECK(strcmp(c.content, "unfinished <tool_call>\n<function=f>") == 0, "unfinished call is content: [%s]", c.content);
    c = split("a < b and <toolbox> and <thinking>", o, 1);
    CHECK(strcmp(c.content, "a < b and <toolbox> and <thinking>") == 0, "look-alike tags pass through: [%s]", c.content);
    struct chat_stream_opts in_think = o;
    in_think.start_in_reasoning = true;
    c = split("still thinking</think>\nanswer", in_think, 1);
    CHECK(strcmp(c.reasoning, "still thinking") == 0 && strcmp(c.content, "answer") == 0,
          "prompt opened <think>: [%s] [%s]", c.reasoning, c.content);
    struct chat_stream_opts plain = {0};
    c = split("<think>x</think><tool_call>{\"name\":\"f\"}</tool_call>", plain, 1);
    CHECK(strcmp(c.content, "<think>x</think><tool_call>{\"name\":\"f\"}</tool_call>") == 0 && !c.names[0],
          "parsing off: everything is content");
    c = split("Hello <think>not reasoning</think>", o, 0);
    CHECK(strcmp(c.content, "Hello <think>not reasoning</think>") == 0, "<think> after content is text: [%s]", c.content);
    json_decref(tools);
}

int main(void)
{
    check_parse();
    check_stream();
    return test_finish();
}
