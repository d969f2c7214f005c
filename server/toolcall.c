/* toolcall.c: parses one tool call emitted by the model into name + JSON arguments.
 * Anything malformed is refused, so the caller can hand the raw text back as content. */
#include "server/toolcall.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_range(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static void trim_range(const char **s, size_t *len)
{
    while (*len && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_space((*s)[*len - 1]))
        (*len)--;
}

/* memmem bounded to [s, s+len). */
static const char *find(const char *s, size_t len, const char *needle)
{
    return memmem(s, len, needle, strlen(needle));
}

enum toolcall_form toolcall_form_of_template(const char *template_text)
{
    return template_text && strstr(template_text, "<function=") ? TOOLCALL_XML : TOOLCALL_JSON;
}

const char *toolcall_param_type(const json_t *tools, const char *fn, const char *param)
{
    size_t i;
    const json_t *tool;
    json_array_foreach(tools, i, tool) {
        const json_t *f = json_object_get(tool, "function");
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!name || strcmp(name, fn) != 0)
            continue;
        const json_t *props = json_object_get(json_object_get(f, "parameters"), "properties");
        const json_t *type = json_object_get(json_object_get(props, param), "type");
        if (json_is_string(type))
            return json_string_value(type);
        /* a type list like ["string", "null"]: the first non-null entry decides */
        size_t j;
        const json_t *t;
        json_array_foreach(type, j, t) {
            if (json_is_string(t) && strcmp(json_string_value(t), "null") != 0)
                return json_string_value(t);
        }
        return NULL;
    }
    return NULL;
}

json_t *toolcall_convert_value(const char *value, size_t len, const char *type)
{
    /* The model writes the value on its own lines: one newline on each side is framing. */
    if (len && value[0] == '\n') {
        value++;
        len--;
    }
    if (len && value[len - 1] == '\n')
        len--;
    if (type && strcmp(type, "string") == 0)
        return json_stringn(value, len);
    const char *t = value;
    size_t tl = len;
    trim_range(&t, &tl);
    if (tl == 4 && memcmp(t, "null", 4) == 0 && (!type || strcmp(type, "null") == 0))
        return json_null();
    if (type && strcmp(type, "boolean") == 0) {
        if (tl == 4 && strncasecmp(t, "true", 4) == 0)
            return json_true();
        if (tl == 5 && strncasecmp(t, "false", 5) == 0)
            return json_false();
        return json_stringn(value, len);
    }
    if (!type || strcmp(type, "integer") == 0 || strcmp(type, "number") == 0 ||
        strcmp(type, "object") == 0 || strcmp(type, "array") == 0) {
        json_t *j = json_loadb(t, tl, JSON_DECODE_ANY, NULL);
        bool fits = j && (!type ||
                          (strcmp(type, "integer") == 0 && json_is_integer(j)) ||
                          (strcmp(type, "number") == 0 && json_is_number(j)) ||
                          (strcmp(type, "object") == 0 && json_is_object(j)) ||
                          (strcmp(type, "array") == 0 && json_is_array(j)));
        if (fits)
            return j;
        json_decref(j);
    }
    return json_stringn(value, len);
}

/* <function=NAME> <parameter=P> VALUE </parameter> ... </function> */
static bool parse_xml(const char *s, size_t len, const json_t *tools, struct toolcall *out)
{
    trim_range(&s, &len);
    if (len < 11 || memcmp(s, "<function=", 10) != 0)
        return false;
    const char *name_end = memchr(s, '>', len);
    const char *end_fn = find(s, len, "</function>");
    if (!name_end || !end_fn || name_end > end_fn)
        return false;
    const char *after = end_fn + 11;
    size_t rest = len - (size_t)(after - s);
    trim_range(&after, &rest);
    if (rest)
        return false; /* text after </function> inside the call */
    const char *name = s + 10;
    size_t name_len = (size_t)(name_end - name);
    trim_range(&name, &name_len);
    if (!name_len)
        return false;
    char *fn = dup_range(name, name_len);
    json_t *args = json_object();
    const char *p = name_end + 1;
    bool ok = fn && args;
    while (ok) {
        size_t left = (size_t)(end_fn - p);
        const char *q = p;
        trim_range(&q, &left);
        if (!left)
            break;
        if (left < 12 || memcmp(q, "<parameter=", 11) != 0) {
            ok = false;
            break;
        }
        const char *pn_end = memchr(q, '>', left), *close = find(q, left, "</parameter>");
        if (!pn_end || !close || pn_end > close) {
            ok = false;
            break;
        }
        char *pname = dup_range(q + 11, (size_t)(pn_end - q - 11));
        const char *type = pname ? toolcall_param_type(tools, fn, pname) : NULL;
        json_t *v = pname ? toolcall_convert_value(pn_end + 1, (size_t)(close - pn_end - 1), type) : NULL;
        ok = pname && *pname && v && json_object_set_new(args, pname, v) == 0;
        if (!ok && v && pname && !*pname)
            json_decref(v);
        free(pname);
        p = close + 12;
    }
    if (ok) {
        out->name = fn;
        out->arguments = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ok = out->arguments != NULL;
        fn = NULL;
    }
    free(fn);
    json_decref(args);
    return ok;
}

/* {"name": "...", "arguments": {...} or "..."} */
static bool parse_json(const char *s, size_t len, struct toolcall *out)
{
    trim_range(&s, &len);
    json_t *j = json_loadb(s, len, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *args = json_object_get(j, "arguments");
    if (!args)
        args = json_object_get(j, "parameters");
    bool ok = name && *name && (!args || json_is_object(args) || json_is_string(args));
    if (ok) {
        out->name = strdup(name);
        if (!args)
            out->arguments = strdup("{}");
        else if (json_is_string(args))
            out->arguments = strdup(json_string_value(args));
        else
            out->arguments = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ok = out->name && out->arguments;
        if (!ok)
            toolcall_free(out);
    }
    json_decref(j);
    return ok;
}

bool toolcall_parse(const char *text, size_t len, const json_t *tools, struct toolcall *out)
{
    memset(out, 0, sizeof *out);
    const char *s = text;
    size_t l = len;
    trim_range(&s, &l);
    if (l && s[0] == '<')
        return parse_xml(s, l, tools, out);
    return parse_json(s, l, out);
}

void toolcall_free(struct toolcall *tc)
{
    free(tc->name);
    free(tc->arguments);
    tc->name = tc->arguments = NULL;
}
