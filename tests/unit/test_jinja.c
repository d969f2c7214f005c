/* test_jinja.c: the Jinja interpreter against jinja2's own renderings of the Qwen chat templates
 * (testdata/chat-templates/cases.jsonl), plus tricky expressions and malformed templates. */
#include "server/jinja.h"
#include "tests/test.h"

#include <string.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

/* ------------------------------------------------------- reference cases --- */
typedef struct {
    char name[128];
    jinja_template *t;
} cached_template;

static jinja_template *template_for(cached_template *cache, int *ncache, const char *name)
{
    for (int i = 0; i < *ncache; i++)
        if (!strcmp(cache[i].name, name))
            return cache[i].t;
    char rel[256], path[512], err[256];
    snprintf(rel, sizeof rel, "chat-templates/%s", name);
    size_t len;
    char *src = read_file(testdata_path(path, sizeof path, rel), &len);
    CHECK(src != NULL, "cannot read %s", path);
    jinja_template *t = src ? jinja_parse(src, len, err, sizeof err) : NULL;
    CHECK(!src || t, "%s: %s", name, err);
    free(src);
    if (*ncache < 16) {
        snprintf(cache[*ncache].name, sizeof cache[0].name, "%s", name);
        cache[(*ncache)++].t = t;
    }
    return t;
}

static void test_reference_cases(void)
{
    char path[512];
    FILE *f = fopen(testdata_path(path, sizeof path, "chat-templates/cases.jsonl"), "rb");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f)
        return;
    cached_template cache[16];
    int ncache = 0, total = 0, passed = 0, want_err = 0, got_err = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *cs = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &jerr);
        CHECK(cs != NULL, "bad case line: %s", jerr.text);
        if (!cs)
            continue;
        total++;
        const char *id = json_string_value(json_object_get(cs, "id"));
        jinja_template *t = template_for(cache, &ncache, json_string_value(json_object_get(cs, "template")));
        json_t *vars = jinja_chat_vars(json_object_get(cs, "messages"), json_object_get(cs, "tools"),
                                       json_is_true(json_object_get(cs, "add_generation_prompt")),
                                       json_object_get(cs, "kwargs"));
        json_t *expect = json_object_get(cs, "rendered");
        char err[512] = "";
        size_t len = 0;
        char *out = t ? jinja_render(t, vars, &len, err, sizeof err) : NULL;
        if (json_is_string(expect)) {
            bool same = out && len == json_string_length(expect) &&
                        memcmp(out, json_string_value(expect), len) == 0;
            CHECK(same, "%s: %s\n--- got ---\n%s\n--- want ---\n%s", id, out ? "mismatch" : err,
                  out ? out : "", json_string_value(expect));
            passed += same;
        } else {
            want_err++;
            CHECK(out == NULL, "%s: rendered but jinja2 raised %s", id,
                  json_string_value(json_object_get(cs, "error")));
            const char *kind = json_string_value(json_object_get(cs, "error_type"));
            CHECK(!out && kind && strstr(err, kind), "%s: error '%s' is not a %s", id, err, kind);
            got_err += out == NULL;
            passed += out == NULL;
        }
        free(out);
        json_decref(vars);
        json_decref(cs);
    }
    free(line);
    fclose(f);
    for (int i = 0; i < ncache; i++)
        jinja_free(cache[i].t);
    printf("reference cases: %d/%d identical (%d/%d expected errors raised)\n", passed, total,
           got_err, want_err);
    CHECK(total == 434, "expected 434 cases, read %d", total);
}


/* ------------------------------------------- expressions vs. jinja2 3.1 --- */
/* Expected strings were produced by jinja2's ImmutableSandboxedEnvironment configured as
 * transformers configures it; `error` names the Python exception class where it raised. */
static const struct {
    const char *src, *vars, *want, *error;
} EXPR_CASES[] = {
    {"{{ [1,2,3,4][::-1] }}|{{ 'h\303\251llo'[1:3] }}|{{ [1,2,3][-1] }}|{{ 'abc'[::-1] }}|{{ [1,2,3,4,5][1:4:2] }}|{{ [1,2,3][5:] }}|{{ 'abc'[-2:] }}",
     "{}",
     "[4, 3, 2, 1]|\303\251l|3|cba|[2, 4]|[]|bc", NULL},
    {"{{ xs[::-1] | join(',') }} {{ xs[1:] }} {{ xs[:-1] }} {{ xs[-10:2] }}",
     "{\"xs\": [1, 2, 3, 4]}",
     "4,3,2,1 [2, 3, 4] [1, 2, 3] [1, 2]", NULL},
    {"{% for m in msgs[::-1] %}{{ loop.index0 }}={{ m }};{% endfor %}",
     "{\"msgs\": [\"a\", \"b\", \"c\"]}",
     "0=c;1=b;2=a;", NULL},
    {"{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}|{% endfor %}",
     "{\"xs\": \"abc\"}",
     "1/0/3/2/True/False/3|2/1/2/1/False/False/3|3/2/1/0/False/True/3|", NULL},
    {"{% for x in xs %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}",
     "{\"xs\": [1, 2, 3]}",
     "[<1>2][1<2>3][2<3>]", NULL},
    {"{% for x in xs if x is odd %}{{ loop.index }}:{{ x }}{{ ',' if not loop.last }}{% else %}none{% endfor %}",
     "{\"xs\": [1, 2, 3, 4, 5]}",
     "1:1,2:3,3:5", NULL},
    {"{% for x in xs %}{{ x }}{% else %}empty{% endfor %}",
     "{\"xs\": []}",
     "empty", NULL},
    {"{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
     "{\"d\": {\"b\": 1, \"a\": [1, \"x\"], \"c\": null}}",
     "b=1;a=[1, 'x'];c=None;bac", NULL},
    {"{% for x in xs %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}",
     "{\"xs\": [0, 1, 2, 3, 4]}",
     "02", NULL},
    {"{% for x in xs %}{{ loop.cycle('odd', 'even') }} {% endfor %}",
     "{\"xs\": [1, 2, 3]}",
     "odd even odd ", NULL},
    {"{% for a in [1,2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}",
     "{}",
     "11x 21y 1|12x 22y 2|", NULL},
    {"  {% if true %}\n    yes\n  {% endif %}\nafter {{- '  x  ' -}}  \n end",
     "{}",
     "    yes\nafter  x  end", NULL},
    {"a\n  {%- if true -%}  \n  b  \n  {%- endif %}\nc\n{# comment #}\nd {#- c -#} e\n",
     "{}",
     "abc\nde", NULL},
    {"x {%+ if true %}y{% endif +%}\nz\n    {{ 'v' }}\n",
     "{}",
     "x y\nz\n    v", NULL},
    {"{% raw %}{{ not parsed }}{% endraw %}\n{% set x = 1 %}\n  {{ x }}\n\n",
     "{}",
     "{{ not parsed }}  1\n", NULL},
    {"line1\015\nline2\015\n{{ 'a' }}\015\n",
     "{}",
     "line1\nline2\na", NULL},
    {"{{ d | tojson }}",
     "{\"d\": {\"z\": 1, \"a\": [1.0, 2.5, 1e+21, 1.5e-07, true, null, \"\303\251\342\200\250\\u001b\177\\\"\\\\/<>&'\"], \"n\": {\"x\": {}}, \"l\": []}}",
     "{\"z\": 1, \"a\": [1.0, 2.5, 1e+21, 1.5e-07, true, null, \"\303\251\342\200\250\\u001b\177\\\"\\\\/<>&'\"], \"n\": {\"x\": {}}, \"l\": []}", NULL},
    {"{{ d | tojson(indent=2) }}|{{ d | tojson(sort_keys=true) }}|{{ d|tojson(ensure_ascii=true) }}|{{ d|tojson(separators=(',', ':')) }}",
     "{\"d\": {\"b\": [1, {\"c\": \"\360\237\230\200\"}], \"a\": \"\303\274\"}}",
     "{\n  \"b\": [\n    1,\n    {\n      \"c\": \"\360\237\230\200\"\n    }\n  ],\n  \"a\": \"\303\274\"\n}|{\"a\": \"\303\274\", \"b\": [1, {\"c\": \"\360\237\230\200\"}]}|{\"b\": [1, {\"c\": \"\\ud83d\\ude00\"}], \"a\": \"\\u00fc\"}|{\"b\":[1,{\"c\":\"\360\237\230\200\"}],\"a\":\"\303\274\"}", NULL},
    {"{{ 'x<y' | tojson }} {{ 3 | tojson }} {{ none|tojson }} {{ [1,[2,[3]]]|tojson }} {{ 12345678901234567|tojson }}",
     "{}",
     "\"x<y\" 3 null [1, [2, [3]]] 12345678901234567", NULL},
    {"{{ 1 }} {{ 1.0 }} {{ 3.14 }} {{ 1e21 }} {{ 1.5e-7 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 7/2 }} {{ 7//2 }} {{ -7//2 }} {{ -7%3 }} {{ 2**10 }} {{ 2**-1 }} {{ 1+1.5 }} {{ true + 1 }} {{ 0.1+0.2 }}",
     "{}",
     "1 1.0 3.14 1e+21 1.5e-07 1e+16 1000000000000000.0 0.0001 1e-05 3.5 3 -4 2 1024 0.5 2.5 2 0.30000000000000004", NULL},
    {"{{ x }} {{ y }} {{ z }} {{ l }} {{ d }} {{ t }} {{ s|string }} {{ (1,) }} {{ (1,'a') }}",
     "{\"x\": true, \"y\": null, \"z\": 2.0, \"l\": [\"a\", \"b\\\"c\", \"d'e\", 1, null, false, 1.5], \"d\": {\"k\": [\"v\", {\"n\": null}]}, \"t\": \"plain\", \"s\": [\"\342\200\250\", \"\302\240x\", \"\\u0001\", \"\303\251\", \"\360\237\230\200\"]}",
     "True None 2.0 ['a', 'b\"c', \"d'e\", 1, None, False, 1.5] {'k': ['v', {'n': None}]} plain ['\\u2028', '\\xa0x', '\\x01', '\303\251', '\360\237\230\200'] (1,) (1, 'a')", NULL},
    {"[{{ u }}][{{ u ~ 'x' }}][{{ u|length }}][{{ u|trim }}][{{ u|string }}][{% for x in u %}no{% endfor %}][{{ 'x' in u }}][{{ u is defined }}{{ u is undefined }}{{ u is none }}{{ u is iterable }}{{ u is sequence }}][{{ not u }}][{{ u|default('d') }}][{{ u == u }}][{{ d.missing is defined }}][{{ l[9] is defined }}]",
     "{\"d\": {}, \"l\": []}",
     "[][x][0][][][][False][FalseTrueFalseTrueTrue][True][d][True][False][False]", NULL},
    {"{{ u.attr }}",
     "{}",
     NULL, "UndefinedError"},
    {"{{ u + 'a' }}",
     "{}",
     NULL, "UndefinedError"},
    {"{{ d.a.b }}",
     "{\"d\": {}}",
     NULL, "UndefinedError"},
    {"{{ none.split('x') }}",
     "{}",
     NULL, "UndefinedError"},
    {"{{ [1].startswith('x') }}",
     "{}",
     NULL, "UndefinedError"},
    {"{{ 'a' + none }}",
     "{}",
     NULL, "TypeError"},
    {"{{ 'a' + [1] }}",
     "{}",
     NULL, "TypeError"},
    {"{{ 'x' in none }}",
     "{}",
     NULL, "TypeError"},
    {"{{ (5|items) is defined }}{% if 5|items %}T{% endif %}",
     "{}",
     "TrueT", NULL},
    {"{% for k in 5|items %}{% endfor %}",
     "{}",
     NULL, "TypeError"},
    {"{{ 1 in 5|items }}",
     "{}",
     NULL, "TypeError"},
    {"{{ raise_exception('boom ' ~ 42) }}",
     "{}",
     NULL, "TemplateError"},
    {"{{ u() }}",
     "{}",
     NULL, "UndefinedError"},
    {"{{ 1 < 'a' }}",
     "{}",
     NULL, "TypeError"},
    {"{{ '\\n' + ' a '|trim + '\\n' }}|{{ xs|length - 1 }}|{{ not xs is defined }}|{{ 1 if false }}|{{ 'a' if true else 'b' }}|{{ 2 * 3 + 4 }}|{{ 2 + 3 * 4 }}|{{ -2 ** 2 }}|{{ (1 + 2) * 3 }}|{{ 1 ~ 2 + 3 }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}",
     "{\"xs\": [1, 2]}",
     NULL, "TypeError"},
    {"{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ '' and 'b' }}|{{ none or [] }}|{{ [] or {} }}|{{ 'ab' in 'cabd' }}|{{ 2 in [1,2] }}|{{ 'k' in {'k':1} }}|{{ 'z' not in 'abc' }}|{{ 1 == 1.0 }}|{{ true == 1 }}|{{ [1,2] == [1,2] }}|{{ {'a':1} == {'a':1} }}|{{ 'a' != 'a' }}",
     "{}",
     "x|b||[]|{}|True|True|True|True|True|True|True|True|False", NULL},
    {"{{ v | tojson | safe if v is mapping or (v is sequence and v is not string) else v | string }}",
     "{\"v\": [1, \"a\"]}",
     "[1, \"a\"]", NULL},
    {"{{ v | tojson | safe if v is mapping or (v is sequence and v is not string) else v | string }}",
     "{\"v\": 3.0}",
     "3.0", NULL},
    {"{% set ns = namespace(a=1, b=[]) %}{% for i in range(3) %}{% set ns.a = ns.a + i %}{% set local = i %}{% endfor %}{{ ns.a }} {{ local is defined }} {{ ns.b }}",
     "{}",
     "4 False []", NULL},
    {"{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}{% for i in [1] %}{% set x = 3 %}{{ x }}{% endfor %}{{ x }}",
     "{}",
     "232", NULL},
    {"{% set a, b = 1, 'two' %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}",
     "{}",
     "1two(1, 2)", NULL},
    {"{% set block %}  inner {{ 1 + 1 }} {% endset %}[{{ block }}]{% set f | upper %}abc{% endset %}{{ f }}",
     "{}",
     "[  inner 2 ]ABC", NULL},
    {"{% macro m(a, b, c=false, d='dd') %}<{{ a }}|{{ b }}|{{ c }}|{{ d }}|{{ g }}>{% endmacro %}{% set g = 'G' %}{{ m(1) }}{{ m(1, 2, d=4) | trim }}{{ m('x', c=true) }}",
     "{}",
     "<1||False|dd|G><1|2|False|4|G><x||True|dd|G>", NULL},
    {"{% macro outer() %}[{{ caller() }}]{% endmacro %}{% call outer() %}body {{ 1 }}{% endcall %}",
     "{}",
     "[body 1]", NULL},
    {"{% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}",
     "{}",
     "543210", NULL},
    {"{% set ns = namespace(v=0) %}{% macro bump() %}{% set ns.v = ns.v + 1 %}{% endmacro %}{{ bump() }}{{ bump() }}{{ ns.v }}",
     "{}",
     "2", NULL},
    {"{% filter upper %}hello {{ 'x' }}{% endfilter %}|{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a is defined }}",
     "{}",
     "HELLO X|3False", NULL},
    {"{{ s.startswith('ab') }} {{ s.endswith(('x','cd')) }} {{ s.split('b') }} {{ s.split() }} {{ '  a b  '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ '\\n\\nx\\n'.strip('\\n') }} {{ 'xxaxx'.lstrip('x') }} {{ 'xxaxx'.rstrip('x') }} {{ ' \\u3000a\\xa0 '.strip() }}",
     "{\"s\": \"abcd\"}",
     "True True ['a', 'cd'] ['abcd'] ['a', 'b'] ['a', 'b,c'] ['a,b', 'c'] x axx xxa a", NULL},
    {"{{ s.upper() }} {{ s.lower() }} {{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 1) }} {{ s.title() }} {{ s.capitalize() }} {{ s.find('l') }} {{ s.count('l') }} {{ '-'.join(['a','b']) }} {{ '{} and {}'.format(1, 'x') }} {{ '{0}{name}'.format('a', name='b') }}",
     "{\"s\": \"hello wORLD\"}",
     "HELLO WORLD hello world heLLo wORLD heLlo wORLD Hello World Hello world 2 2 a-b 1 and x ab", NULL},
    {"{{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }} {{ d['items'] }} {{ d.items is defined }}",
     "{\"d\": {\"a\": 1, \"items\": \"I\"}}",
     "1 dflt None ['a', 'items'] [1, 'I'] [('a', 1), ('items', 'I')] I True", NULL},
    {"{{ xs|join(', ') }}|{{ xs|first }}|{{ xs|last }}|{{ xs|length }}|{{ xs|reverse|list }}|{{ xs|sort }}|{{ xs|sort(reverse=true) }}|{{ xs|unique|list }}|{{ xs|min }}|{{ xs|max }}|{{ xs|sum }}",
     "{\"xs\": [3, 1, 2, 3]}",
     "3, 1, 2, 3|3|3|4|[3, 2, 1, 3]|[1, 2, 3, 3]|[3, 3, 2, 1]|[3, 1, 2]|1|3|9", NULL},
    {"{{ 'Hello World'|lower }}|{{ 'x'|upper }}|{{ 'hello world'|capitalize }}|{{ 'hello-world foo'|title }}|{{ 'aXa'|replace('a', 'b') }}|{{ '  x '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ '42'|int + 1 }}|{{ '3.7'|int }}|{{ 'abc'|int }}|{{ 'abc'|int(7) }}|{{ 3.9|int }}|{{ '2.5'|float }}|{{ -3|abs }}|{{ 2.567|round(1) }}|{{ 2.5|round }}|{{ 'a b  c'|wordcount }}",
     "{}",
     "hello world|X|Hello world|Hello-World Foo|bXb|x|hi|43|3|0|7|3|2.5|3|2.6|2.0|3", NULL},
    {"{{ users|map(attribute='name')|join(',') }}|{{ users|selectattr('admin')|map(attribute='name')|list }}|{{ users|rejectattr('admin')|list|length }}|{{ [1,2,3,4]|select('odd')|list }}|{{ [1,2,3,4]|reject('even')|list }}|{{ ['a','b']|map('upper')|list }}|{{ users|selectattr('name', 'equalto', 'bo')|list }}|{{ users|map(attribute='age', default=0)|list }}",
     "{\"users\": [{\"name\": \"al\", \"admin\": true}, {\"name\": \"bo\", \"admin\": false, \"age\": 3}]}",
     "al,bo|['al']|1|[1, 3]|[1, 3]|['A', 'B']|[{'name': 'bo', 'admin': False, 'age': 3}]|[0, 3]", NULL},
    {"{{ d|dictsort }}|{{ d|dictsort(by='value', reverse=true) }}|{{ ''|default('e', true) }}|{{ none|default('n') }}|{{ 'text\\nmore\\n\\nend'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'x'|safe }}|{{ '<a>'|e }}|{{ [1,2]|list }}|{{ 'ab'|list }}",
     "{\"d\": {\"b\": 2, \"a\": 3}}",
     "[('a', 3), ('b', 2)]|[('a', 3), ('b', 2)]|e|None|text\n  more\n\n  end|  a\n  b|x|&lt;a&gt;|[1, 2]|['a', 'b']", NULL},
    {"{{ 'x'|safe + '<' }}|{{ '<' + 'y'|safe }}|{{ 'x'|safe ~ '<' }}",
     "{}",
     "x&lt;|&lt;y|x<", NULL},
    {"{{ 1 is number }}{{ true is number }}{{ 1 is integer }}{{ true is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ false is false }}{{ 0 is false }}{{ true is true }}{{ {} is mapping }}{{ {} is sequence }}{{ 'a' is sequence }}{{ none is iterable }}{{ 'a' is string }}{{ 3 is divisibleby 3 }}{{ 2 is even }}{{ 'a' is in 'abc' }}{{ 1 is eq 1 }}{{ 2 is gt 1 }}{{ 1 is lt 0 }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ none is none }}{{ x is callable }}{{ 'x' is not none }}",
     "{\"x\": null}",
     "TrueTrueTrueFalseTrueTrueTrueFalseTrueTrueTrueTrueFalseTrueTrueTrueTrueTrueTrueFalseTrueTrueTrueFalseTrue", NULL},
    {"{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}",
     "{}",
     "[0, 1, 2] [1, 3, 5] [5, 3, 1] {'a': 1, 'b': 'x'} 1", NULL},
    {"{{ 'a' 'b' }} {{ \"it's\" }} {{ 'tab\\there' }} {{ '\\u00e9\\x41\\101' }} {{ '\\d' }} {{ 1_000 }} {{ 0x1F }} {{ [1,2,][1] }} {{ {'a':1,}['a'] }}",
     "{}",
     "ab it's tab\011here \303\251AA \\d 1000 31 2 1", NULL},
    {"{{ messages[0]['role'] }} {{ messages[0].content }} {{ messages.0.role }} {{ messages[-1]['content'][-3:] }}",
     "{\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}",
     "user hello user llo", NULL},
    {"{% if a %}A{% elif b %}B{% elif c %}C{% else %}D{% endif %}",
     "{\"a\": 0, \"b\": \"\", \"c\": [1]}",
     "C", NULL},
    {"{{ x|length }} {{ {'a':1}|length }} {{ '\303\274\360\237\230\200'|length }} {{ '\303\274\360\237\230\200'[1] }}",
     "{\"x\": [1, 2, 3]}",
     "3 1 2 \360\237\230\200", NULL},
    {"{{ [1,2] + [3] }} {{ 'ab' * 3 }} {{ [0] * 2 }} {{ 10 - 2.5 }} {{ -x }} {{ +x }} {{ 1 / 4 }} {{ 4 / 2 }}",
     "{\"x\": 5}",
     "[1, 2, 3] ababab [0, 0] 7.5 -5 5 0.25 2.0", NULL},
    {"{{ 1 / 0 }}",
     "{}",
     NULL, "ZeroDivisionError"},
    {"{{ [].append(1) }}",
     "{}",
     NULL, "SecurityError"},
    {"{% for x in 5 %}{% endfor %}",
     "{}",
     NULL, "TypeError"},
    {"{% set x = 1 %}{{ x.y.z }}",
     "{}",
     NULL, "UndefinedError"},
    {"{{ [1,2]|map('string')|list }}|{% if []|select('odd') %}T{% else %}F{% endif %}|{{ xs|select('odd') is sequence }}|{{ none|selectattr('a')|list }}|{{ none|map('upper')|list }}|{{ d|items is sequence }}|{{ xs|reverse is sequence }}|{{ (xs|select('odd'))[0] is defined }}",
     "{\"xs\": [1, 2, 3], \"d\": {\"a\": 1}}",
     "['1', '2']|T|False|[]|[]|False|False|False", NULL},
    {"{{ xs|select('odd')|length }}",
     "{\"xs\": [1, 2]}",
     NULL, "TypeError"},
    {"{{ xs|map('int')|tojson }}",
     "{\"xs\": [1, 2]}",
     NULL, "TypeError"},
    {"{% generation %}gen {{ 1 }}{% endgeneration %}|{%- generation -%} x {% endgeneration %}",
     "{}",
     "gen 1|x ", NULL},
    {"{{ 'a' ~ none ~ 1.0 ~ true }} {{ [none, true] ~ '' }} {{ 'ab'[5] is defined }} {{ 'x'|string|length }} {{ {'a': {'b': [1]}}.a.b[0] }}",
     "{}",
     "aNone1.0True [None, True] False 1 1", NULL},
    {"{% set d = {'z': 1, 'a': 2} %}{% for k in d %}{{ k }}{% endfor %}{{ d|tojson }}{{ d.z }}{{ d['a'] }}",
     "{}",
     "za{\"z\": 1, \"a\": 2}12", NULL},
    {"{% if false %}{{ x|nosuchfilter }}{% elif x is nosuchtest %}{% endif %}{{ 'a' if true else x|nosuchfilter }}ok",
     "{\"x\": 1}",
     NULL, "TemplateRuntimeError"},
    {"{% if true %}{{ x|nosuchfilter }}{% endif %}",
     "{\"x\": 1}",
     NULL, "TemplateRuntimeError"},
    {"{% if x is nosuchtest %}{% endif %}",
     "{\"x\": 1}",
     NULL, "TemplateRuntimeError"},
    {"{% set caf\303\251 = 'cr\303\250me' %}{{ caf\303\251 }}|{{ na\303\257ve is defined }}",
     "{}",
     "cr\303\250me|False", NULL},
    {"text{#-",
     "{}",
     "text", NULL},
    {"{{ '%s=%d' % ('a', 3) }}|{{ '%5.2f|%-4s|%04d|%x|%r|%%' % (3.14159, 'ab', 7, 255, 'q') }}|{{ '%(k)s!' % {'k': 'v'} }}|{{ '%s' % [1, 2] }}|{{ 'no args' % {} }}|{{ '%s and %s'|format('x', 2) }}|{{ '%(a)s'|format(a=1) }}|{{ '%.2s|%5s|%c' % ('h\303\251llo', '\303\251', 65) }}|{{ '%+d % d %e %g' % (5, 5, 12345.678, 0.0001) }}",
     "{}",
     "a=3| 3.14|ab  |0007|ff|'q'|%|v!|[1, 2]|no args|x and 2|1|h\303\251|    \303\251|A|+5  5 1.234568e+04 0.0001", NULL},
    {"{{ '%s %s' % ('a',) }}",
     "{}",
     NULL, "TypeError"},
    {"{{ '%s' % ('a', 'b') }}",
     "{}",
     NULL, "TypeError"},
    {"{{ '%d' % 'x' }}",
     "{}",
     NULL, "TypeError"},
    {"{{ 'abcab'.removeprefix('ab') }} {{ 'abcab'.removesuffix('ab') }} {{ 'abc'.removeprefix('x') }} {{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ 'abc'.partition('x') }} {{ 'abc'.rpartition('x') }} {{ 'hello'.index('l') }} {{ 'hello'.rindex('l') }}",
     "{}",
     "cab abc abc ('a', '=', 'b=c') ('a=b', '=', 'c') ('abc', '', '') ('', '', 'abc') 2 3", NULL},
    {"{{ 'abc'.index('z') }}",
     "{}",
     NULL, "ValueError"},
    {"{{ x[1:] }}",
     "{\"x\": 5}",
     NULL, "TypeError"},
    {"{{ d[1:] }}",
     "{\"d\": {\"a\": 1}}",
     NULL, "TypeError"},
    {"{{ u[1:] }}",
     "{}",
     NULL, "UndefinedError"},
    {"{{ d.items() }} {{ d.keys() }} {{ d.values()|list }} {{ d.items()|length }} {{ d.items() is sequence }} {% if ed.items() %}T{% else %}F{% endif %}",
     "{\"d\": {\"a\": 1}, \"ed\": {}}",
     "dict_items([('a', 1)]) dict_keys(['a']) [1] 1 False F", NULL},
    {"{{ d.items()|tojson }}",
     "{\"d\": {\"a\": 1}}",
     NULL, "TypeError"},
    {"{% if 5|items|map('string') %}T{% endif %}|{{ u|int(3) is defined }}",
     "{}",
     NULL, "UndefinedError"},
    {"{{ u|int }}",
     "{}",
     NULL, "UndefinedError"},
    {"{{ 2|round(1) }} {{ 2.25|round(1) }} {{ 2.5|round(0, 'floor') }} {{ 1e21 is even }} {{ 3.0 is odd }}",
     "{}",
     "2 2.2 2.0 True True", NULL},
    {"{{ [1] < (x|select('odd')) }}",
     "{\"x\": [1]}",
     NULL, "TypeError"},
    {"{{ '%s|%(k)s' % d }}",
     "{\"d\": {\"k\": 1}}",
     "{'k': 1}|1", NULL},
    {"{{ 'plain' % [1] }}|{{ '%s' % u }}|{{ x[] is defined }}",
     "{\"x\": {}}",
     "plain||False", NULL},
    {"{{ 'x'|trim('a', 'b') }}",
     "{}",
     NULL, "TypeError"},
    {"{{ 'x'|tojson(foo=1) }}",
     "{}",
     NULL, "TypeError"},
    {"{{ 'x'|default('a', default_value='b') }}",
     "{}",
     NULL, "TypeError"},
    {"{{ ' x'|trim(chars=' ') }}{{ [3,1]|sort(reverse=true) }}{{ {'b':1,'a':2}|dictsort(false, 'value') }}",
     "{}",
     "x[3, 1][('b', 1), ('a', 2)]", NULL},
    {"[{{ none[1:] }}][{{ 1[:2] }}][{{ {'a': 1}[::-1] }}][{{ (0 is true)[1:] }}]",
     "{}",
     "[][][][]", NULL},
    {"{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
     "{}",
     "12121", NULL},
    {"{% for i in [1,2] %}{% if i == 2 %}{{ y }}{% endif %}{% set y = i %}{% endfor %}|{{ y }}",
     "{}",
     "|", NULL},
    {"{% macro m() %}{{ i }}{{ x }}{% endmacro %}{% set x = 'X' %}{% for i in [1] %}{{ m() }}{% endfor %}",
     "{}",
     "X", NULL},
    {"{% set x = 'a' %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 'b' %}{{ m() }}",
     "{}",
     "b", NULL},
    {"{% macro m() %}{% set x = 'in' %}{{ x }}{% endmacro %}{% set x = 'out' %}{{ m() }}{{ x }}",
     "{}",
     "inout", NULL},
    {"{% for a in [1] %}{% for b in [2] %}{% set a = 9 %}{{ a }}{% endfor %}{{ a }}{% endfor %}",
     "{}",
     "91", NULL},
    {"{% if true %}{% set z = 5 %}{% endif %}{{ z }}{% with %}{% set w = 1 %}{% endwith %}{{ w is defined }}",
     "{}",
     "5False", NULL},
    {"{% for x in [1,2] %}{% set ns = namespace(c=x) %}{% endfor %}{{ ns is defined }}",
     "{}",
     "False", NULL},
    {"{% set ns = namespace(items=[]) %}{% for x in [1,2] %}{% set ns.items = ns.items + [x] %}{% endfor %}{{ ns.items }}",
     "{}",
     "[1, 2]", NULL},
    {"{% for x in [1,2,3] %}{{ loop.changed(x > 1) }}{% endfor %}",
     "{}",
     "TrueTrueFalse", NULL},
    {"{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}",
     "{}",
     "1(2,){'k': 3}", NULL},
    {"{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}",
     "{}",
     NULL, "TypeError"},
    {"{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=2) }}",
     "{}",
     NULL, "TypeError"},
    {"{% set x = 1 %}{% macro m() %}{% set x = x + 1 %}{{ x }}{% endmacro %}{{ m() }}{{ x }}",
     "{}",
     "21", NULL},
    {"{{ m() }}{% macro m() %}M{% endmacro %}",
     "{}",
     NULL, "UndefinedError"},
    {"{% for i in [1] %}{% macro m() %}{{ i }}{% endmacro %}{% endfor %}{{ m is defined }}",
     "{}",
     "False", NULL},
    {"{{ 'a\\\303\251\\\360\237\230\200\\x41' }}",
     "{}",
     "a\\xe9\\U0001f600A", NULL},
};

static char *render_src(const char *src, const char *vars_json, char *err, size_t errlen)
{
    jinja_template *t = jinja_parse(src, strlen(src), err, errlen);
    if (!t)
        return NULL;
    json_t *vars = json_loads(vars_json, 0, NULL);
    char *out = vars ? jinja_render(t, vars, NULL, err, errlen) : NULL;
    json_decref(vars);
    jinja_free(t);
    return out;
}

static void test_expressions(void)
{
    for (size_t i = 0; i < sizeof EXPR_CASES / sizeof EXPR_CASES[0]; i++) {
        char err[512] = "";
        char *out = render_src(EXPR_CASES[i].src, EXPR_CASES[i].vars, err, sizeof err);
        if (EXPR_CASES[i].want) {
            CHECK(out && !strcmp(out, EXPR_CASES[i].want), "case %zu: %s\n  got  [%s]\n  want [%s]", i,
                  EXPR_CASES[i].src, out ? out : err, EXPR_CASES[i].want);
        } else {
            CHECK(!out && strstr(err, EXPR_CASES[i].error), "case %zu: %s: want %s, got [%s]", i,
                  EXPR_CASES[i].src, EXPR_CASES[i].error, out ? out : err);
        }
        free(out);
    }
}

/* ------------------------------------------------- malformed templates --- */
static void expect_parse_error(const char *src, size_t len, const char *fragment)
{
    char err[512] = "";
    jinja_template *t = jinja_parse(src, len, err, sizeof err);
    CHECK(!t && strstr(err, fragment), "template [%.60s]: want error with '%s', got '%s'", src,
          fragment, t ? "(parsed)" : err);
    jinja_free(t);
}

static void test_malformed(void)
{
    static const struct { const char *src, *fragment; } BAD[] = {
        {"{% if x %}unclosed", "line 1 col 4: 'if' block is never closed (expected 'endif')"},
        {"{% for x in y %}{% if x %}{% endfor %}", "unexpected 'endfor', expected elif"},
        {"a\n{% for x in y %}\n", "line 2 col 4: 'for' block is never closed (expected 'endfor')"},
        {"{% macro m() %}", "never closed (expected 'endmacro')"},
        {"{% foo %}", "line 1 col 4: unknown tag 'foo'"},
        {"a\nb\n  {{ x|nofilter }}", "chat template line 3 col 8: unknown filter 'nofilter'"},
        {"{{ x is notatest }}", "unknown test 'notatest'"},
        {"{% for x in y %}{% if x %}{% for z in x %}{{ z|nosuch }}{% endfor %}{% endif %}{% endfor %}",
         "line 1 col 48: unknown filter 'nosuch'"},
        {"{% if x %}{{ x|groupby('a') }}{% endif %}", "filter 'groupby' is not supported"},
        {"{% endif %}", "unexpected 'endif'"},
        {"{% else %}", "unexpected 'else'"},
        {"{{ 'unterminated }}", "unterminated string literal"},
        {"{{ (1 }}", "expected ')'"},
        {"{{ [1, 2) }}", "unexpected ')', expected ']'"},
        {"{{ x ", "unexpected end of template"},
        {"{{ }}", "expected an expression, got 'end of print statement'"},
        {"{# never closed", "missing end of comment tag"},
        {"{% raw %}never closed", "missing end of raw directive"},
        {"{% break %}", "'break' outside of a loop"},
        {"{% include 'x.j2' %}", "unsupported tag 'include'"},
        {"{% for x in y recursive %}{% endfor %}", "recursive loops are not supported"},
        {"{% set 1 = 2 %}", "can't assign"},
        {"{{ f(*args) }}", "not supported"},
        {"{{ 1 is defined is defined }}", "cannot chain"},
        {"{{ 99999999999999999999 }}", "integer literal too large"},
        {"{{ x $ y }}", "unexpected char '$'"},
        {"{% %}", "tag name expected"},
        {"{% set ns = namespace(a=1, b=2, a=3) %}", "line 1 col 33: keyword argument repeated: a"},
        {"{{ x \342\202\254 }}", "unexpected char '\342\202\254'"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        expect_parse_error(BAD[i].src, strlen(BAD[i].src), BAD[i].fragment);
    expect_parse_error("\xff\xfe{{ x }}", 8, "not valid UTF-8");

    /* Nesting deep enough to exhaust a naive recursive parser fails cleanly. */
    size_t n = 20000;
    char *deep = malloc(2 * n + 16);
    REQUIRE_VOID(deep);
    memcpy(deep, "{{ ", 3);
    memset(deep + 3, '(', n);
    memset(deep + 3 + n, ')', n);
    memcpy(deep + 3 + 2 * n, " }}", 4);
    expect_parse_error(deep, strlen(deep), "nested too deeply");
    memset(deep + 3, '[', n);
    memset(deep + 3 + n, ']', n);
    expect_parse_error(deep, strlen(deep), "nested too deeply");
    size_t k = 0;
    for (size_t i = 0; i < 500; i++)
        k += (size_t)sprintf(deep + k, "{%% if x %%}");
    expect_parse_error(deep, k, "nested too deeply");
    free(deep);

    char err[256] = "";
    CHECK(jinja_parse(NULL, 0, err, sizeof err) == NULL && err[0], "NULL source must fail");
}

/* ------------------------------------------------------- runtime bounds --- */
static void expect_render_error(const char *src, const char *vars, const char *fragment)
{
    char err[512] = "";
    char *out = render_src(src, vars, err, sizeof err);
    CHECK(!out && strstr(err, fragment), "[%.60s]: want '%s', got '%s'", src, fragment,
          out ? "(rendered)" : err);
    free(out);
}

static void test_runtime_bounds(void)
{
    expect_render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "{}", "RecursionError");
    expect_render_error("{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "{}", "MemoryError");
    expect_render_error("{{ 'x' * 100000000000 }}", "{}", "MemoryError");
    {
        char err[256] = "";
        char *out = render_src("[{{ '' * 1000000000000000 }}{{ [] * 1000000000000000 }}]", "{}", err,
                               sizeof err);
        CHECK(out && !strcmp(out, "[[]]"), "empty repeated: %s", out ? out : err);
        free(out);
    }
    expect_render_error("{% for i in range(100001) %}{% endfor %}", "{}", "OverflowError");
    {
        const char *src = "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}"
                          "{% endfor %}";
        char err[256] = "";
        jinja_template *t = jinja_parse(src, strlen(src), err, sizeof err);
        REQUIRE_VOID(t);
        jinja_set_step_limit(t, 1000000);
        json_t *vars = json_object();
        char *out = jinja_render(t, vars, NULL, err, sizeof err);
        CHECK(!out && strstr(err, "RuntimeError: template took more than 1000000 steps"), "%s", err);
        free(out);
        json_decref(vars);
        jinja_free(t);
    }
    {
        /* string work counts too: 1000 scans of 1 MiB is far more than 1000 steps */
        const char *src = "{% for i in range(1000) %}{% if 'zzz' in s %}{% endif %}{% endfor %}";
        char err[256] = "";
        jinja_template *t = jinja_parse(src, strlen(src), err, sizeof err);
        REQUIRE_VOID(t);
        jinja_set_step_limit(t, 1000000);
        char *big = malloc(1 << 20);
        REQUIRE_VOID(big);
        memset(big, 'a', 1 << 20);
        json_t *vars = json_pack("{s:s%}", "s", big, (size_t)1 << 20);
        char *out = jinja_render(t, vars, NULL, err, sizeof err);
        CHECK(!out && strstr(err, "RuntimeError"), "string work not charged: %s", out ? "rendered" : err);
        free(out);
        free(big);
        json_decref(vars);
        jinja_free(t);
    }
    expect_render_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "{}", "RecursionError");
    expect_render_error("{{ 9223372036854775807 + 1 }}", "{}", "OverflowError");
    /* values nested far deeper than any printer or comparison may recurse */
    static const char *const deep_ops[] = {"ns.x == ns.x", "ns.x < ns.x", "ns.x in [ns.x]",
                                           "ns.x|string", "ns.x|tojson", "[ns.x]|unique|list"};
    for (size_t i = 0; i < sizeof deep_ops / sizeof deep_ops[0]; i++) {
        char src[256];
        snprintf(src, sizeof src, "{%% set ns = namespace(x=[]) %%}{%% for i in range(20000) %%}"
                 "{%% set ns.x = [ns.x] %%}{%% endfor %%}{{ %s }}", deep_ops[i]);
        expect_render_error(src, "{}", "RecursionError");
    }
    expect_render_error("{{ x }}", "[1, 2]", "must be a JSON object");

    /* A message cut to fit the caller's buffer still ends on a whole UTF-8 character. */
    for (size_t errlen = 40; errlen < 48; errlen++) {
        char err[64];
        memset(err, 'x', sizeof err);
        char *out = render_src("{{ raise_exception('\303\251' * 100) }}", "{}", err, errlen);
        size_t n = strlen(err);
        bool whole = n < errlen && ((unsigned char)err[n - 1] < 0x80 || (unsigned char)err[n - 2] == 0xC3);
        CHECK(!out && whole, "errlen %zu: message ends mid-character", errlen);
        free(out);
    }

    /* error messages carry the line of the failing expression */
    expect_render_error("a\n\n{{ messages[0].role }}", "{\"messages\": []}",
                        "line 3: UndefinedError: list object has no element 0");
    expect_render_error("{%- if true %}\n  {{- raise_exception('Bad role: ' ~ r) }}\n{% endif %}",
                        "{\"r\": \"dev\"}", "line 2: TemplateError: Bad role: dev");
}

/* --------------------------------------------- parse once, render many --- */
static void test_reuse(void)
{
    const char *src = "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}\n{% endfor %}"
                      "{% if add_generation_prompt %}<assistant>{% endif %}";
    char err[256];
    jinja_template *t = jinja_parse(src, strlen(src), err, sizeof err);
    REQUIRE_VOID(t);
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\" hi \\u0000 there \"}]",
                              JSON_ALLOW_NUL, NULL);
    json_t *vars = jinja_chat_vars(msgs, NULL, true, NULL);
    for (int round = 0; round < 3; round++) {
        size_t len = 0;
        char *out = jinja_render(t, vars, &len, err, sizeof err);
        static const char want[] = "<user>hi \0 there\n<assistant>";
        CHECK(out && len == sizeof want - 1 && !memcmp(out, want, len), "round %d: [%s]", round,
              out ? out : err);
        free(out);
    }
    json_t *tools = json_object_get(vars, "tools");
    CHECK(json_is_null(tools) && json_is_null(json_object_get(vars, "documents")),
          "tools and documents default to None");
    json_decref(vars);
    json_decref(msgs);
    jinja_free(t);
}

int main(void)
{
    test_reference_cases();
    test_expressions();
    test_malformed();
    test_runtime_bounds();
    test_reuse();
    return test_finish();
}
