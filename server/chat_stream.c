/* chat_stream.c: the streaming splitter of model output (server/chat_stream.h).
 * A whole tool call is parsed before anything of it is sent, so a malformed one can still
 * go out as plain content; reasoning and content stream as they come. */
#include "server/chat_stream.h"

#include <stdlib.h>
#include <string.h>

#include "server/toolcall.h"

enum state { ST_CONTENT, ST_REASONING, ST_TOOL };

struct chat_stream {
    struct chat_stream_opts o;
    enum state state;
    char *buf;                /* text not yet emitted */
    size_t len, cap;
    bool seen_content;        /* non-space content emitted (a later <think> is just text) */
    bool skip_space;          /* drop whitespace after </think> or </tool_call> */
    int n_tools;
};

static const char TAG_THINK[] = "<think>", TAG_END_THINK[] = "</think>";
static const char TAG_TOOL[] = "<tool_call>", TAG_END_TOOL[] = "</tool_call>";

struct chat_stream *chat_stream_new(const struct chat_stream_opts *opts)
{
    struct chat_stream *cs = calloc(1, sizeof *cs);
    if (!cs)
        return NULL;
    cs->o = *opts;
    cs->state = opts->parse_reasoning && opts->start_in_reasoning ? ST_REASONING : ST_CONTENT;
    return cs;
}

void chat_stream_free(struct chat_stream *cs)
{
    if (cs) {
        free(cs->buf);
        free(cs);
    }
}

int chat_stream_tool_calls(const struct chat_stream *cs)
{
    return cs->n_tools;
}

static void emit_text(struct chat_stream *cs, enum chat_event_kind kind, const char *s, size_t n,
                      chat_emit_fn emit, void *ctx)
{
    if (cs->skip_space) {
        while (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) {
            s++;
            n--;
        }
        if (!n)
            return;
        cs->skip_space = false;
    }
    if (!n)
        return;
    if (kind == CHAT_CONTENT)
        for (size_t i = 0; i < n && !cs->seen_content; i++)
            cs->seen_content = !(s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r');
    struct chat_event ev = {.kind = kind, .text = s, .len = n};
    emit(ctx, &ev);
}

/* Length of the longest suffix of s that is a proper prefix of tag (text to hold back). */
static size_t partial_tag(const char *s, size_t n, const char *tag)
{
    size_t tl = strlen(tag);
    for (size_t k = tl - 1 < n ? tl - 1 : n; k > 0; k--)
        if (memcmp(s + n - k, tag, k) == 0)
            return k;
    return 0;
}

static void consume(struct chat_stream *cs, size_t n)
{
    memmove(cs->buf, cs->buf + n, cs->len - n);
    cs->len -= n;
}

static void emit_tool(struct chat_stream *cs, const char *body, size_t n, chat_emit_fn emit, void *ctx)
{
    struct toolcall tc;
    if (!toolcall_parse(body, n, cs->o.tools, &tc)) {
        /* not a call after all: the model's text goes back to the client unchanged */
        emit_text(cs, CHAT_CONTENT, TAG_TOOL, strlen(TAG_TOOL), emit, ctx);
        emit_text(cs, CHAT_CONTENT, body, n, emit, ctx);
        emit_text(cs, CHAT_CONTENT, TAG_END_TOOL, strlen(TAG_END_TOOL), emit, ctx);
        return;
    }
    struct chat_event ev = {.kind = CHAT_TOOL_NAME, .text = tc.name, .len = strlen(tc.name),
                            .tool_index = cs->n_tools};
    emit(ctx, &ev);
    ev.kind = CHAT_TOOL_ARGS;
    ev.text = tc.arguments;
    ev.len = strlen(tc.arguments);
    emit(ctx, &ev);
    cs->n_tools++;
    cs->skip_space = true;
    toolcall_free(&tc);
}

/* One step of the state machine; returns false when it needs more text. */
static bool step(struct chat_stream *cs, chat_emit_fn emit, void *ctx)
{
    const char *b = cs->buf;
    size_t n = cs->len;
    if (cs->state == ST_REASONING) {
        const char *end = memmem(b, n, TAG_END_THINK, strlen(TAG_END_THINK));
        size_t upto = end ? (size_t)(end - b) : n - partial_tag(b, n, TAG_END_THINK);
        emit_text(cs, CHAT_REASONING, b, upto, emit, ctx);
        if (!end) {
            consume(cs, upto);
            return false;
        }
        consume(cs, upto + strlen(TAG_END_THINK));
        cs->state = ST_CONTENT;
        cs->skip_space = true;
        return true;
    }
    if (cs->state == ST_TOOL) {
        const char *end = memmem(b, n, TAG_END_TOOL, strlen(TAG_END_TOOL));
        if (!end)
            return false;
        emit_tool(cs, b, (size_t)(end - b), emit, ctx);
        consume(cs, (size_t)(end - b) + strlen(TAG_END_TOOL));
        cs->state = ST_CONTENT;
        return true;
    }
    const char *tool = cs->o.parse_tools ? memmem(b, n, TAG_TOOL, strlen(TAG_TOOL)) : NULL;
    const char *think = cs->o.parse_reasoning && !cs->seen_content ? memmem(b, n, TAG_THINK, strlen(TAG_THINK)) : NULL;
    for (const char *p = b; think && p < think; p++) /* <think> opens reasoning only before any content */
        if (!(*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
            think = NULL;
    const char *tag = tool && (!think || tool < think) ? tool : think;
    if (!tag) {
        size_t hold = 0;
        if (cs->o.parse_tools)
            hold = partial_tag(b, n, TAG_TOOL);
        if (think == NULL && cs->o.parse_reasoning && !cs->seen_content) {
            size_t h = partial_tag(b, n, TAG_THINK);
            hold = h > hold ? h : hold;
        }
        emit_text(cs, CHAT_CONTENT, b, n - hold, emit, ctx);
        consume(cs, n - hold);
        return false;
    }
    emit_text(cs, CHAT_CONTENT, b, (size_t)(tag - b), emit, ctx);
    bool is_tool = tag == tool;
    consume(cs, (size_t)(tag - b) + strlen(is_tool ? TAG_TOOL : TAG_THINK));
    cs->state = is_tool ? ST_TOOL : ST_REASONING;
    return true;
}

bool chat_stream_feed(struct chat_stream *cs, const char *text, size_t len, chat_emit_fn emit, void *ctx)
{
    if (cs->len + len > cs->cap) {
        size_t cap = cs->cap ? cs->cap : 256;
        while (cap < cs->len + len)
            cap *= 2;
        char *p = realloc(cs->buf, cap);
        if (!p)
            return false;
        cs->buf = p;
        cs->cap = cap;
    }
    memcpy(cs->buf + cs->len, text, len);
    cs->len += len;
    while (cs->len && step(cs, emit, ctx))
        ;
    return true;
}

void chat_stream_finish(struct chat_stream *cs, chat_emit_fn emit, void *ctx)
{
    if (cs->state == ST_TOOL) {
        emit_text(cs, CHAT_CONTENT, TAG_TOOL, strlen(TAG_TOOL), emit, ctx);
        emit_text(cs, CHAT_CONTENT, cs->buf, cs->len, emit, ctx);
    } else {
        emit_text(cs, cs->state == ST_REASONING ? CHAT_REASONING : CHAT_CONTENT, cs->buf, cs->len, emit, ctx);
    }
    cs->len = 0;
    cs->state = ST_CONTENT;
}
