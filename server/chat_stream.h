/* chat_stream.h: splits generated text, as it streams, into content, reasoning (<think>...</think>)
 * and tool calls (<tool_call>...</tool_call>), holding back only what could be the start of a tag. */
#ifndef MOESERVE_CHAT_STREAM_H
#define MOESERVE_CHAT_STREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum chat_event_kind { CHAT_CONTENT, CHAT_REASONING, CHAT_TOOL_NAME, CHAT_TOOL_ARGS };

struct chat_event {
    enum chat_event_kind kind;
    const char *text;      /* content, reasoning, tool name, or an arguments fragment */
    size_t len;
    int tool_index;        /* for CHAT_TOOL_*: 0, 1, ... in order of appearance */
};

typedef void (*chat_emit_fn)(void *ctx, const struct chat_event *ev);

struct chat_stream_opts {
    bool parse_reasoning;     /* split <think>...</think> off into reasoning */
    bool start_in_reasoning;  /* the prompt already opened <think> */
    bool parse_tools;         /* recognise <tool_call> blocks */
    const json_t *tools;      /* the request's tools (types for XML parameters); may be NULL */
};

struct chat_stream;

struct chat_stream *chat_stream_new(const struct chat_stream_opts *opts);
void chat_stream_free(struct chat_stream *cs);
/* Feeds generated text; emits every event that is certain now. False on allocation failure. */
bool chat_stream_feed(struct chat_stream *cs, const char *text, size_t len, chat_emit_fn emit, void *ctx);
/* End of generation: flushes held text; an unfinished tool call becomes content. */
void chat_stream_finish(struct chat_stream *cs, chat_emit_fn emit, void *ctx);
int chat_stream_tool_calls(const struct chat_stream *cs);

#endif
