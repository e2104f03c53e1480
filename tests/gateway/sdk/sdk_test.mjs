// The official OpenAI Node SDK (openai@4) against `switchyard serve`:
// completions, streams, a request with tools, and the SDK's own error
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

// Tools pass through to the deployment; a mock answers with text (mocks
// cannot return tool calls: tool_calls need the test upstream).
const tools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
const withTools = await client.chat.completions.create({ model: 'solo', messages, tools, tool_choice: 'auto' });
assert.equal(withTools.choices[0].message.content, 'solo reply');
console.log('ok: request with tools');

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
assert.deepEqual(models.data.map((m) => m.id), ['solo', 'streamy', 'limited']);
console.log('ok: models');
