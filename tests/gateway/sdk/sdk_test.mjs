// The official OpenAI Node SDK (openai@4) against `switchyard serve`:
// completions, streams, tool calls (through the test upstream), and the SDK's own error
// classes for 401, 400 and 429. Run by run_sdk_test.sh, which starts the
// server and passes SWITCHYARD_BASE_URL and SWITCHYARD_KEY.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.SWITCHYARD_BASE_URL;
const apiKey = process.env.SWITCHYARD_KEY;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const messages = [{ role: 'user', content: 'hi' }];

async function expectError(promise, cls, status) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e?.constructor?.name}: ${e}`);
    assert.equal(e.status, status);
    return e;
  }
  assert.fail(`expected ${cls.name}`);
}

const completion = await client.chat.completions.create({ model: 'solo', messages });
assert.equal(completion.object, 'chat.completion');
assert.equal(completion.choices[0].message.content, 'solo reply');
assert.equal(completion.choices[0].finish_reason, 'stop');
console.log('ok: chat completion');

const { data, response } = await client.chat.completions
  .create({ model: 'solo', messages })
  .withResponse();
assert.equal(data.choices[0].message.content, 'solo reply');
assert.equal(response.headers.get('x-litellm-model-id'), 'solo-1');
console.log('ok: response headers');

const stream = await client.chat.completions.create({ model: 'streamy', messages, stream: true });
let content = '';
let finish = null;
for await (const chunk of stream) {
  assert.equal(chunk.object, 'chat.completion.chunk');
  content += chunk.choices[0]?.delta?.content ?? '';
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
assert.equal(content, 'streamed reply');
assert.equal(finish, 'stop');
console.log('ok: streamed chat completion');

// A tool call: the test upstream answers a request with tools whose last
// message says "tool" with a call of the first tool.
const tools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
const toolMessages = [{ role: 'user', content: 'use the tool for Paris' }];
const called = await client.chat.completions.create({ model: 'tools', messages: toolMessages, tools });
assert.equal(called.choices[0].finish_reason, 'tool_calls');
assert.equal(called.choices[0].message.tool_calls[0].type, 'function');
assert.equal(called.choices[0].message.tool_calls[0].function.name, 'get_weather');
JSON.parse(called.choices[0].message.tool_calls[0].function.arguments);
console.log('ok: tool call');

const toolStream = await client.chat.completions.create({
  model: 'tools', messages: toolMessages, tools, stream: true,
});
let streamedName = '';
let streamedFinish = null;
for await (const chunk of toolStream) {
  for (const call of chunk.choices[0]?.delta?.tool_calls ?? [])
    streamedName += call.function?.name ?? '';
  streamedFinish = chunk.choices[0]?.finish_reason ?? streamedFinish;
}
assert.equal(streamedName, 'get_weather');
assert.equal(streamedFinish, 'tool_calls');
console.log('ok: streamed tool call');

const wrongKey = new OpenAI({ baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
await expectError(wrongKey.chat.completions.create({ model: 'solo', messages }),
                  OpenAI.AuthenticationError, 401);
console.log('ok: AuthenticationError');
const bad = await expectError(client.chat.completions.create({ model: 'no-such-group', messages }),
                              OpenAI.BadRequestError, 400);
assert.match(bad.message, /no-such-group/);
console.log('ok: BadRequestError');
const limited = await expectError(client.chat.completions.create({ model: 'limited', messages }),
                                  OpenAI.RateLimitError, 429);
assert.equal(limited.headers['retry-after'], '7');
console.log('ok: RateLimitError');
const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), ['solo', 'streamy', 'limited', 'tools']);
console.log('ok: models');
