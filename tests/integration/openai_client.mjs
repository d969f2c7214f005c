// openai_client.mjs: the official `openai` npm client against a running moeserve: chat (plain and
// streamed), completions, models, errors as APIError, and an aborted stream.
// Usage: node openai_client.mjs BASE_URL   (prints "N passed, N failed")
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.argv[2], apiKey: 'test-key' });
let passed = 0, failed = 0;
const check = (what, cond) => { if (cond) passed++; else { failed++; console.error(`FAIL: ${what}`); } };

try {
  const r = await client.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 6, temperature: 0,
  });
  check('chat object', r.object === 'chat.completion');
  check('chat content string', typeof r.choices[0].message.content === 'string');
  check('chat usage', r.usage.completion_tokens === 6 && r.usage.prompt_tokens > 0);

  const stream = await client.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 6, temperature: 0,
    stream: true, stream_options: { include_usage: true },
  });
  let text = '', chunks = 0, usage = null, finish = null;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) { text += ch.delta.content ?? ''; finish = ch.finish_reason ?? finish; }
  }
  check('stream chunks', chunks >= 3);
  check('stream text equals non-stream text', text === r.choices[0].message.content);
  check('stream usage', usage && usage.completion_tokens === 6);
  check('stream finish', finish === 'length');

  const comp = await client.completions.create({ model: 'tiny', prompt: 'def f(', max_tokens: 4, temperature: 0 });
  check('completion text', typeof comp.choices[0].text === 'string' && comp.object === 'text_completion');

  const models = await client.models.list();
  check('models list', models.data.length === 1 && typeof models.data[0].id === 'string');

  try {
    await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' });
    check('bad request throws', false);
  } catch (e) {
    check('bad request is APIError 400', e instanceof OpenAI.APIError && e.status === 400);
    check('error param named', e.error?.param === 'temperature' || /temperature/.test(e.message));
  }

  const ac = new AbortController();
  const s2 = await client.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Count' }], max_tokens: 500, stream: true,
  }, { signal: ac.signal });
  let got = 0;
  try {
    for await (const c of s2) { got++; if (got === 2) ac.abort(); }
  } catch (e) { /* an aborted stream may end quietly or throw an abort error */ }
  check('abort mid-stream', got >= 2 && got < 500);
} catch (e) {
  failed++;
  console.error('FAIL: unexpected error', e);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
