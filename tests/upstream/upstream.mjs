// The test upstream: a fake LLM provider (OpenAI, Azure OpenAI, Anthropic)
// that the transport and gateway tests call over loopback. Node.js 20, no
// npm packages.
//
// Start:  node tests/upstream/upstream.mjs --port 0 [--tls-cert F --tls-key F]
//   Binds 127.0.0.1 only and prints one line `LISTENING <port>` on stdout
//   when ready. Exits on SIGTERM/SIGINT or when stdin closes, so a crashed
//   test never leaves it running. With --tls-cert/--tls-key it serves TLS
//   through Node's http2 server with allowHTTP1: HTTP/2 for clients that
//   offer h2 in ALPN, HTTP/1.1 otherwise.
//   File descriptors: one per open connection; 5,000 concurrent connections
//   need `ulimit -n` above ~5,100 for this process (the usual hard limit of
//   the test machines is 20,000; nothing here needs root).
//
// Dialects, chosen by the path (after the optional scenario prefix, under
// any other prefix):
//   .../openai/deployments/{deployment}/chat/completions?api-version=V  Azure
//   .../v1/messages                                                     Anthropic
//   .../chat/completions                                                OpenAI
// Each answers in that provider's shape, non-streamed or streamed
// (`"stream": true`; OpenAI/Azure SSE `data: {...}` + `data: [DONE]`, with a
// usage chunk when stream_options.include_usage; Anthropic's event stream).
// A request with `tools` whose last user message says "tool" or names one of
// the tools answers with a call of that tool (the first one otherwise).
//
// Scenarios: a path segment pair `/scenario/<params>` anywhere before the
// dialect path, so that a deployment's api_base selects it:
//   api_base: http://127.0.0.1:PORT/scenario/status=429,retry_after=5/v1
// <params> is a comma-separated list of `key=value` or bare flags:
//   status=N            answer N with the dialect's real error body for N
//   error=KIND          a named error (default status in brackets):
//                       context_length [400] (OpenAI/Azure code
//                       context_length_exceeded, Anthropic "prompt is too
//                       long"), content_policy [400] (OpenAI
//                       content_policy_violation, Azure innererror
//                       ResponsibleAIPolicyViolation, Anthropic "content
//                       filtering policy"), rate_limit [429], overloaded
//                       [Anthropic 529, others 503], auth [401],
//                       permission [403], not_found [404], timeout [408],
//                       unprocessable [422], server [500], bad_gateway
//                       [502], unavailable [503], gateway_timeout [504];
//                       status=N overrides the status
//   retry_after=S       header `retry-after: S` (seconds)
//   retry_after_date=S  header `retry-after: <HTTP date S seconds ahead>`
//   retry_after_ms=MS   header `retry-after-ms: MS`
//   x_ms_retry_after_ms=MS  header `x-ms-retry-after-ms: MS`
//   delay_ms=MS         wait MS before answering anything (a slow answer)
//   first_chunk_delay_ms=MS  send the head at once, the first body byte
//                       after MS (a slow first chunk)
//   chunk_delay_ms=MS   a fixed gap between body chunks
//   chunks=N            content pieces in the answer (default 3; the
//                       text's words, repeated when N is larger)
//   cut_after=N         close the connection (FIN) after N body chunks, the
//                       body unfinished (a stream cut mid-way; non-streamed
//                       answers are sent in 2 chunks)
//   stream_error_after=N  streams: an in-band error event after N content
//                       chunks, then the stream ends (no [DONE] /
//                       message_stop)
//   empty               a 200 stream (or body) that ends with no event
//   reset               reset the connection (RST) before any answer
//   close               close the connection (FIN) before any answer
//   hang                never answer (until the client goes away)
//   finish=R            finish_reason R: stop, length, content_filter,
//                       tool_calls (Anthropic: end_turn, max_tokens,
//                       refusal, tool_use)
//   tool_call           answer with a tool call
//   content=TEXT        the answer's text (URL-decoded; default
//                       "Hello from the test upstream")
//   prompt_tokens=N completion_tokens=N cache_read_tokens=N  usage figures
//   fail_first=N        a scripted sequence: only the first N calls with
//                       this key get the failure the other params describe;
//                       later ones are answered normally (200)
//   key=K               the sequence's key (default: the whole <params>)
// Without a scenario prefix the call is answered 200.
//
// Control endpoints (any prefix is ignored for these):
//   GET  /_calls   every call received, oldest first: [{seq, method, path
//                  (path and query), headers (lower-case names), body
//                  (parsed JSON, else the raw text), scenario (the params
//                  object), dialect, connection (id), http_version}]
//   POST /_reset   clears the calls, the stats and the sequence counters
//   GET  /_stats   {connections_accepted, connections_open, max_open (the most
//                  open at once that carried an API call),
//                  connections_closed_by_client, connections_closed_by_server,
//                  requests, requests_per_connection: {id: n},
//                  answers_aborted_by_client (the client went away before
//                  the answer ended), proxied_requests, connect_tunnels,
//                  http2_sessions}. Connections that carried only control
//                  calls are left out of every connection figure.
//
// Forward proxy: the same server also acts as a tiny HTTP proxy for proxy
// tests: a request in absolute form (`GET http://127.0.0.1:P/...`) is
// forwarded to that loopback address, and CONNECT 127.0.0.1:P opens a
// tunnel (plain-HTTP mode only). Only loopback targets are allowed.

import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';

// ---------------------------------------------------------------- options

const args = process.argv.slice(2);
function arg_value(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const port = Number(arg_value('--port', '0'));
const tls_cert = arg_value('--tls-cert', null);
const tls_key = arg_value('--tls-key', null);

// ---------------------------------------------------------------- state

let calls = [];
let sequence_counts = new Map();
let next_connection_id = 1;
let stats;
function fresh_stats() {
  return {
    connections_accepted: 0, connections_open: 0, max_open: 0,
    connections_closed_by_client: 0, connections_closed_by_server: 0,
    requests: 0, requests_per_connection: {},
    answers_aborted_by_client: 0, proxied_requests: 0, connect_tunnels: 0,
    http2_sessions: 0,
  };
}
stats = fresh_stats();
// Connections that carried only control calls (/_calls, /_stats, /_reset)
// are left out of the connection figures, so that a test's own polling
// never shows up in what it asserts.
let open_now = 0;     // every open connection (survives /_reset)
let api_open = 0;     // open connections that carried an API call
let control_open = 0; // open connections that carried only control calls

function track_socket(socket) {
  socket.sy_id = next_connection_id++;
  socket.sy_kind = null; // 'api' | 'control' once a request came
  socket.sy_server_closed = false;
  socket.sy_client_closed = false;
  open_now++;
  socket.on('end', () => { if (!socket.sy_server_closed) socket.sy_client_closed = true; });
  socket.on('error', (e) => {
    if (!socket.sy_server_closed && (e.code === 'ECONNRESET' || e.code === 'EPIPE'))
      socket.sy_client_closed = true;
  });
  socket.on('close', () => {
    open_now--;
    if (socket.sy_kind === 'control') { control_open--; return; }
    if (socket.sy_kind === 'api') api_open--;
    else stats.connections_accepted++; // closed before any request
    if (socket.sy_client_closed) stats.connections_closed_by_client++;
    else stats.connections_closed_by_server++;
  });
}

function classify(socket, kind) {
  if (!socket || socket.sy_kind === 'api' || socket.sy_kind === kind) return;
  if (socket.sy_kind === 'control') control_open--;
  socket.sy_kind = kind;
  if (kind === 'control') { control_open++; return; }
  api_open++;
  stats.connections_accepted++;
  stats.max_open = Math.max(stats.max_open, api_open);
}

function connections_open() { return open_now - control_open; }

// The socket that carries a request (the TLS socket of an HTTP/2 session).
function socket_of(req) {
  if (req.stream && req.stream.session) return req.stream.session.socket;
  return req.socket;
}

const raw_sockets = new Map(); // connection id -> socket, for the cuts

function connection_id_of(req) {
  const s = socket_of(req);
  return s ? s.sy_id : 0;
}

// Ends the request's connection from the server side: RST when `rst`, FIN
// otherwise.
function server_destroy(req, rst) {
  const target = raw_sockets.get(connection_id_of(req));
  if (!target) return;
  target.sy_server_closed = true;
  if (rst) target.resetAndDestroy();
  else target.end();
}

// ---------------------------------------------------------------- scenario

function parse_scenario(path) {
  // Returns {params, rest}: the params of a /scenario/<params> segment and
  // the path without it.
  const m = /\/scenario\/([^/]*)/.exec(path);
  if (!m) return { params: null, raw: '', rest: path };
  const raw = m[1];
  const params = {};
  for (const item of raw.split(',')) {
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq < 0) params[item] = true;
    else params[item.slice(0, eq)] = decodeURIComponent(item.slice(eq + 1));
  }
  return { params, raw, rest: path.slice(0, m.index) + path.slice(m.index + m[0].length) };
}

function detect_dialect(path) {
  const p = path.split('?')[0];
  let m = /\/openai\/deployments\/([^/]+)\/chat\/completions\/?$/.exec(p);
  if (m) return { dialect: 'azure', deployment: decodeURIComponent(m[1]) };
  if (/\/messages\/?$/.test(p)) return { dialect: 'anthropic' };
  if (/\/chat\/completions\/?$/.test(p)) return { dialect: 'openai' };
  return null;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- errors

const error_kinds = {
  context_length: 400, content_policy: 400, rate_limit: 429, overloaded: 503,
  auth: 401, permission: 403, not_found: 404, timeout: 408, unprocessable: 422,
  server: 500, bad_gateway: 502, unavailable: 503, gateway_timeout: 504,
  bad_request: 400,
};
const kind_of_status = {
  400: 'bad_request', 401: 'auth', 403: 'permission', 404: 'not_found',
  408: 'timeout', 422: 'unprocessable', 429: 'rate_limit', 500: 'server',
  502: 'bad_gateway', 503: 'unavailable', 504: 'gateway_timeout', 529: 'overloaded',
};

function openai_error(kind, status, model) {
  const e = (message, type, param, code) => ({ error: { message, type, param, code } });
  switch (kind) {
    case 'context_length':
      return e("This model's maximum context length is 8192 tokens. However, your messages resulted in 9013 tokens. Please reduce the length of the messages.",
               'invalid_request_error', 'messages', 'context_length_exceeded');
    case 'content_policy':
      return e('Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.',
               'invalid_request_error', null, 'content_policy_violation');
    case 'rate_limit':
      return e(`Rate limit reached for ${model} in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.`,
               'requests', null, 'rate_limit_exceeded');
    case 'auth':
      return e('Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
               'invalid_request_error', null, 'invalid_api_key');
    case 'permission':
      return e('You are not allowed to sample from this model', 'invalid_request_error', null, 'unsupported_country_region_territory');
    case 'not_found':
      return e(`The model \`${model}\` does not exist or you do not have access to it.`, 'invalid_request_error', null, 'model_not_found');
    case 'timeout':
      return e('Request timed out.', 'timeout', null, null);
    case 'unprocessable':
      return e('Unprocessable entity: the request could not be processed.', 'invalid_request_error', null, null);
    case 'bad_request':
      return e("Invalid value for 'messages': the request is malformed.", 'invalid_request_error', 'messages', null);
    case 'overloaded':
    case 'unavailable':
      return e('The engine is currently overloaded, please try again later.', 'server_error', null, null);
    case 'bad_gateway':
      return e('Bad gateway.', 'server_error', null, null);
    case 'gateway_timeout':
      return e('Gateway timeout.', 'server_error', null, null);
    default:
      return e(`The server had an error while processing your request (status ${status}). Sorry about that!`, 'server_error', null, null);
  }
}

function azure_error(kind, status, model) {
  switch (kind) {
    case 'content_policy':
      return { error: {
        message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
        type: null, param: 'prompt', code: 'content_filter', status: 400,
        innererror: { code: 'ResponsibleAIPolicyViolation', content_filter_result: {
          hate: { filtered: true, severity: 'high' }, self_harm: { filtered: false, severity: 'safe' },
          sexual: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' } } } } };
    case 'rate_limit':
      return { error: { code: '429', message: 'Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 20 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.' } };
    case 'auth':
      return { error: { code: '401', message: 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.' } };
    case 'not_found':
      return { error: { code: 'DeploymentNotFound', message: 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.' } };
    case 'context_length':
    case 'bad_request':
    case 'unprocessable':
      return openai_error(kind, status, model);
    default: {
      const o = openai_error(kind, status, model);
      o.error.code = String(status);
      return o;
    }
  }
}

function anthropic_error(kind, status) {
  const e = (type, message) => ({ type: 'error', error: { type, message } });
  switch (kind) {
    case 'context_length': return e('invalid_request_error', 'prompt is too long: 210345 tokens > 200000 maximum');
    case 'content_policy': return e('invalid_request_error', 'Output blocked by content filtering policy');
    case 'rate_limit': return e('rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later.');
    case 'overloaded': return e('overloaded_error', 'Overloaded');
    case 'auth': return e('authentication_error', 'invalid x-api-key');
    case 'permission': return e('permission_error', 'Your API key does not have permission to use the specified resource.');
    case 'not_found': return e('not_found_error', 'model: claude-unknown');
    case 'timeout': case 'gateway_timeout': return e('timeout_error', 'Request timed out.');
    case 'bad_request': case 'unprocessable': return e('invalid_request_error', 'messages: field required');
    default: return e('api_error', `Internal server error (status ${status})`);
  }
}

function error_answer(dialect, params, model) {
  let kind = params.error || null;
  let status = params.status !== undefined ? Number(params.status) : null;
  if (kind && status === null) status = kind === 'overloaded' && dialect === 'anthropic' ? 529 : (error_kinds[kind] || 500);
  if (!kind) kind = kind_of_status[status] || 'other';
  let body;
  if (dialect === 'anthropic') body = anthropic_error(kind, status);
  else if (dialect === 'azure') body = azure_error(kind, status, model);
  else body = openai_error(kind, status, model);
  return { status, body };
}

function retry_after_headers(params) {
  const h = {};
  if (params.retry_after !== undefined) h['retry-after'] = String(params.retry_after);
  if (params.retry_after_date !== undefined)
    h['retry-after'] = new Date(Date.now() + Number(params.retry_after_date) * 1000).toUTCString();
  if (params.retry_after_ms !== undefined) h['retry-after-ms'] = String(params.retry_after_ms);
  if (params.x_ms_retry_after_ms !== undefined) h['x-ms-retry-after-ms'] = String(params.x_ms_retry_after_ms);
  return h;
}

// ---------------------------------------------------------------- answers

function last_user_text(body) {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  for (let i = msgs.length - 1; i >= 0; --i) {
    if (msgs[i] && msgs[i].role === 'user') {
      const c = msgs[i].content;
      if (typeof c === 'string') return c;
      if (Array.isArray(c)) return c.map((p) => (p && typeof p.text === 'string' ? p.text : '')).join(' ');
      return '';
    }
  }
  return '';
}

function tool_name(t) {
  if (!t) return null;
  if (t.function && t.function.name) return t.function.name; // OpenAI
  if (t.name) return t.name;                                  // Anthropic
  return null;
}

// The tool to call, or null for a text answer.
function chosen_tool(body, params) {
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const names = tools.map(tool_name).filter(Boolean);
  const text = last_user_text(body);
  if (params.tool_call) return names[0] || 'get_weather';
  if (!names.length) return null;
  const named = names.find((n) => text.includes(n));
  if (named) return named;
  return /\btools?\b/i.test(text) ? names[0] : null;
}

function slices_of(text, n) {
  const out = [];
  const per = Math.max(1, Math.ceil(text.length / n));
  for (let i = 0; i < text.length; i += per) out.push(text.slice(i, i + per));
  return out;
}

// `text` in n pieces: its words shared out, or repeated when n is larger.
function pieces_of(text, n) {
  const words = text.split(/(?<= )/);
  if (n <= 1 || words.length <= 1) return n <= 1 ? [text] : Array.from({ length: n }, () => text);
  if (n > words.length) return Array.from({ length: n }, (_, i) => words[i % words.length]);
  const out = [];
  const per = Math.ceil(words.length / n);
  for (let i = 0; i < words.length; i += per) out.push(words.slice(i, i + per).join(''));
  return out;
}

const finish_to_anthropic = { stop: 'end_turn', length: 'max_tokens', content_filter: 'refusal', tool_calls: 'tool_use' };

function answer_plan(dialect, body, params, deployment) {
  const model = typeof body.model === 'string' ? body.model : (deployment || 'test-model');
  const tool = chosen_tool(body, params);
  const n = params.chunks !== undefined ? Math.max(1, Number(params.chunks)) : 3;
  const text = params.content !== undefined ? String(params.content) : 'Hello from the test upstream';
  const finish = params.finish || (tool ? 'tool_calls' : 'stop');
  const args_text = JSON.stringify({ location: 'Paris', unit: 'celsius' });
  const usage = {
    prompt: params.prompt_tokens !== undefined ? Number(params.prompt_tokens) : 10,
    completion: params.completion_tokens !== undefined ? Number(params.completion_tokens) : n,
    cache_read: params.cache_read_tokens !== undefined ? Number(params.cache_read_tokens) : 0,
  };
  return { model, tool, text, pieces: tool ? slices_of(args_text, n) : pieces_of(text, n),
           args_text, finish, usage, id: randomBytes(6).toString('hex') };
}

const created = () => Math.floor(Date.now() / 1000);
const azure_filter = { hate: { filtered: false, severity: 'safe' }, self_harm: { filtered: false, severity: 'safe' },
                       sexual: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' } };

function openai_full(plan, dialect) {
  const message = plan.tool
    ? { role: 'assistant', content: null, tool_calls: [{ id: 'call_' + plan.id, type: 'function',
        function: { name: plan.tool, arguments: plan.args_text } }], refusal: null }
    : { role: 'assistant', content: plan.finish === 'content_filter' ? null : plan.text, refusal: null };
  const choice = { index: 0, message, logprobs: null, finish_reason: plan.finish };
  const out = { id: 'chatcmpl-' + plan.id, object: 'chat.completion', created: created(), model: plan.model,
    choices: [choice],
    usage: { prompt_tokens: plan.usage.prompt, completion_tokens: plan.usage.completion,
             total_tokens: plan.usage.prompt + plan.usage.completion },
    system_fingerprint: 'fp_test' };
  if (dialect === 'azure') {
    out.prompt_filter_results = [{ prompt_index: 0, content_filter_results: azure_filter }];
    choice.content_filter_results = plan.finish === 'content_filter'
      ? { ...azure_filter, hate: { filtered: true, severity: 'high' } } : azure_filter;
  }
  return out;
}

function anthropic_full(plan) {
  const content = plan.tool
    ? [{ type: 'tool_use', id: 'toolu_' + plan.id, name: plan.tool, input: JSON.parse(plan.args_text) }]
    : [{ type: 'text', text: plan.text }];
  return { id: 'msg_' + plan.id, type: 'message', role: 'assistant', model: plan.model, content,
    stop_reason: finish_to_anthropic[plan.finish] || plan.finish, stop_sequence: null,
    usage: { input_tokens: plan.usage.prompt, output_tokens: plan.usage.completion,
             cache_creation_input_tokens: 0, cache_read_input_tokens: plan.usage.cache_read } };
}

// The SSE events of a stream: [{text, content: bool}], content marks the
// events that count for cut_after / stream_error_after.
function openai_stream_events(plan, dialect, body) {
  const include_usage = !!(body.stream_options && body.stream_options.include_usage);
  const base = () => {
    const c = { id: 'chatcmpl-' + plan.id, object: 'chat.completion.chunk', created: created(),
                model: plan.model, system_fingerprint: 'fp_test', choices: [] };
    if (include_usage) c.usage = null;
    return c;
  };
  const chunk = (delta, finish) => {
    const c = base();
    const choice = { index: 0, delta, logprobs: null, finish_reason: finish };
    if (dialect === 'azure') choice.content_filter_results = finish === 'content_filter'
      ? { ...azure_filter, hate: { filtered: true, severity: 'high' } } : (delta.content ? azure_filter : {});
    c.choices.push(choice);
    return c;
  };
  const ev = [];
  const data = (obj, content) => ev.push({ text: `data: ${JSON.stringify(obj)}\n\n`, content });
  if (dialect === 'azure')
    data({ choices: [], created: 0, id: '', model: '', object: '',
           prompt_filter_results: [{ prompt_index: 0, content_filter_results: azure_filter }] }, false);
  if (plan.tool) {
    data(chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_' + plan.id, type: 'function',
      function: { name: plan.tool, arguments: '' } }], refusal: null }, null), false);
    for (const p of plan.pieces) data(chunk({ tool_calls: [{ index: 0, function: { arguments: p } }] }, null), true);
  } else {
    data(chunk({ role: 'assistant', content: '', refusal: null }, null), false);
    if (plan.finish !== 'content_filter')
      for (const p of plan.pieces) data(chunk({ content: p }, null), true);
  }
  data(chunk({}, plan.finish), false);
  if (include_usage) {
    const u = base();
    u.usage = { prompt_tokens: plan.usage.prompt, completion_tokens: plan.usage.completion,
                total_tokens: plan.usage.prompt + plan.usage.completion };
    data(u, false);
  }
  ev.push({ text: 'data: [DONE]\n\n', content: false, terminal: true });
  return ev;
}

function anthropic_stream_events(plan) {
  const ev = [];
  const event = (type, obj, content, terminal) =>
    ev.push({ text: `event: ${type}\ndata: ${JSON.stringify(obj)}\n\n`, content, terminal });
  event('message_start', { type: 'message_start', message: { id: 'msg_' + plan.id, type: 'message', role: 'assistant',
    model: plan.model, content: [], stop_reason: null, stop_sequence: null,
    usage: { input_tokens: plan.usage.prompt, output_tokens: 1, cache_creation_input_tokens: 0,
             cache_read_input_tokens: plan.usage.cache_read } } }, false);
  if (plan.tool) {
    event('content_block_start', { type: 'content_block_start', index: 0,
      content_block: { type: 'tool_use', id: 'toolu_' + plan.id, name: plan.tool, input: {} } }, false);
    event('ping', { type: 'ping' }, false);
    for (const p of plan.pieces)
      event('content_block_delta', { type: 'content_block_delta', index: 0,
        delta: { type: 'input_json_delta', partial_json: p } }, true);
  } else {
    event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, false);
    event('ping', { type: 'ping' }, false);
    if (plan.finish !== 'content_filter')
      for (const p of plan.pieces)
        event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } }, true);
  }
  event('content_block_stop', { type: 'content_block_stop', index: 0 }, false);
  event('message_delta', { type: 'message_delta',
    delta: { stop_reason: finish_to_anthropic[plan.finish] || plan.finish, stop_sequence: null },
    usage: { output_tokens: plan.usage.completion } }, false);
  event('message_stop', { type: 'message_stop' }, false, true);
  return ev;
}

function in_band_error(dialect) {
  if (dialect === 'anthropic')
    return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })}\n\n`;
  return `data: ${JSON.stringify({ error: { message: 'The server had an error while processing your request. Sorry about that!',
                                           type: 'server_error', param: null, code: null } })}\n\n`;
}

// ---------------------------------------------------------------- handler

function send_json(res, status, obj, headers = {}) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function read_body(req) {
  const parts = [];
  for await (const c of req) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

function record_headers(req) {
  const h = {};
  for (const [k, v] of Object.entries(req.headers)) if (!k.startsWith(':')) h[k.toLowerCase()] = v;
  return h;
}

async function handle(req, res) {
  if (/^https?:\/\//.test(req.url)) return forward(req, res);
  const conn = connection_id_of(req);
  const path = req.url;
  const bare = path.split('?')[0];
  const control = /\/_(calls|stats|reset)$/.test(bare);
  classify(raw_sockets.get(conn), control ? 'control' : 'api');
  if (bare.endsWith('/_calls') && req.method === 'GET') return send_json(res, 200, calls);
  if (bare.endsWith('/_stats') && req.method === 'GET') {
    stats.connections_open = connections_open();
    return send_json(res, 200, stats);
  }
  if (bare.endsWith('/_reset') && req.method === 'POST') {
    await read_body(req);
    calls = [];
    sequence_counts = new Map();
    stats = fresh_stats();
    stats.max_open = api_open;
    return send_json(res, 200, { ok: true });
  }

  stats.requests++;
  stats.requests_per_connection[conn] = (stats.requests_per_connection[conn] || 0) + 1;
  const raw_body = await read_body(req);
  let body;
  try { body = raw_body ? JSON.parse(raw_body) : {}; } catch { body = raw_body; }
  const { params: scenario_params, raw: scenario_raw, rest } = parse_scenario(path);
  const found = detect_dialect(rest);
  calls.push({ seq: calls.length + 1, method: req.method, path, headers: record_headers(req),
               body, scenario: scenario_params, dialect: found ? found.dialect : null,
               connection: conn, http_version: req.httpVersion });

  let answered = false;
  res.on('close', () => { if (!answered) stats.answers_aborted_by_client++; });
  const done = () => { answered = true; };

  if (!found || req.method !== 'POST' || typeof body !== 'object' || body === null) {
    done();
    return send_json(res, 404, { error: { message: `no such endpoint: ${req.method} ${bare}`,
                                          type: 'invalid_request_error', param: null, code: 'unknown_url' } });
  }
  const { dialect, deployment } = found;

  let p = scenario_params || {};
  if (p.fail_first !== undefined) {
    const key = p.key !== undefined ? p.key : scenario_raw;
    const count = (sequence_counts.get(key) || 0) + 1;
    sequence_counts.set(key, count);
    if (count > Number(p.fail_first)) p = {}; // the script has run out: answer normally
  }

  if (p.delay_ms) await sleep(Number(p.delay_ms));
  if (p.hang) { answered = false; return; }
  if (p.reset) { done(); return server_destroy(req, true); }
  if (p.close) { done(); return server_destroy(req, false); }
  const extra = retry_after_headers(p);
  const plan = answer_plan(dialect, body, p, deployment);
  const id_header = dialect === 'anthropic' ? { 'request-id': 'req_' + plan.id } : { 'x-request-id': 'req_' + plan.id };

  if (p.status !== undefined || p.error !== undefined) {
    const { status, body: err } = error_answer(dialect, p, plan.model);
    if (status !== 200) {
      if (p.first_chunk_delay_ms) await sleep(Number(p.first_chunk_delay_ms));
      done();
      return send_json(res, status, err, { ...extra, ...id_header });
    }
  }

  const stream = body.stream === true;
  let events;
  if (p.empty) events = [];
  else if (stream) events = dialect === 'anthropic' ? anthropic_stream_events(plan) : openai_stream_events(plan, dialect, body);
  else {
    const text = JSON.stringify(dialect === 'anthropic' ? anthropic_full(plan) : openai_full(plan, dialect));
    const half = Math.floor(text.length / 2);
    events = [{ text: text.slice(0, half), content: true }, { text: text.slice(half), content: true }];
  }
  const headers = stream
    ? { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...extra, ...id_header }
    : { 'content-type': 'application/json', ...extra, ...id_header };
  if (!stream && !p.cut_after && !p.chunk_delay_ms && !p.first_chunk_delay_ms) {
    const text = events.map((e) => e.text).join('');
    headers['content-length'] = Buffer.byteLength(text);
    res.writeHead(200, headers);
    done();
    return res.end(text);
  }
  res.writeHead(200, headers);
  if (typeof res.flushHeaders === 'function') res.flushHeaders();

  const cut_after = p.cut_after !== undefined ? Number(p.cut_after) : -1;
  const error_after = p.stream_error_after !== undefined ? Number(p.stream_error_after) : -1;
  const gap = Number(p.chunk_delay_ms || 0);
  if (p.first_chunk_delay_ms) await sleep(Number(p.first_chunk_delay_ms));
  let content_sent = 0;
  let sent = 0;
  for (const e of events) {
    if (res.destroyed || res.writableEnded) return;
    if (error_after >= 0 && ((e.content && content_sent >= error_after) || e.terminal)) {
      res.write(in_band_error(dialect));
      done();
      return res.end();
    }
    if (sent > 0 && gap) await sleep(gap);
    if (res.destroyed) return;
    res.write(e.text);
    sent++;
    if (e.content) content_sent++;
    if (cut_after >= 0 && sent >= cut_after) {
      done();
      // A FIN, not a reset: the chunked body never ends, and every byte
      // sent before the cut still reaches the client (a reset lets the
      // client's kernel drop what the client has not read yet, so on a
      // busy machine the chunks could vanish with it).
      return server_destroy(req, false);
    }
  }
  done();
  res.end();
}

// Forward proxy: absolute-form requests to loopback targets.
function forward(req, res) {
  let target;
  try { target = new URL(req.url); } catch { return send_json(res, 400, { error: 'bad proxy url' }); }
  if (!['127.0.0.1', 'localhost'].includes(target.hostname))
    return send_json(res, 403, { error: 'only loopback targets' });
  stats.proxied_requests++;
  const headers = { ...req.headers };
  delete headers['proxy-connection'];
  const up = http.request({ host: '127.0.0.1', port: target.port || 80, method: req.method,
                            path: target.pathname + target.search, headers }, (ures) => {
    res.writeHead(ures.statusCode, ures.headers);
    ures.pipe(res);
  });
  up.on('error', () => { if (!res.headersSent) send_json(res, 502, { error: 'proxy upstream failed' }); else res.destroy(); });
  req.pipe(up);
}

function tunnel(req, client_socket, head) {
  const [host, port_text] = req.url.split(':');
  if (!['127.0.0.1', 'localhost'].includes(host)) {
    client_socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    return;
  }
  stats.connect_tunnels++;
  const up = net.connect(Number(port_text), '127.0.0.1', () => {
    client_socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
    if (head && head.length) up.write(head);
    up.pipe(client_socket);
    client_socket.pipe(up);
  });
  up.on('error', () => client_socket.destroy());
  client_socket.on('error', () => up.destroy());
}

// ---------------------------------------------------------------- server

function on_handler_error(res, e) {
  try {
    if (!res.headersSent) send_json(res, 500, { error: { message: 'upstream bug: ' + e.message, type: 'server_error' } });
    else res.destroy();
  } catch { /* nothing more to do */ }
}
const handler = (req, res) => { handle(req, res).catch((e) => on_handler_error(res, e)); };

let server;
if (tls_cert && tls_key) {
  server = http2.createSecureServer({ cert: fs.readFileSync(tls_cert), key: fs.readFileSync(tls_key),
                                      allowHTTP1: true, settings: { maxConcurrentStreams: 1000 } }, handler);
  server.on('secureConnection', (s) => { track_socket(s); raw_sockets.set(s.sy_id, s); s.on('close', () => raw_sockets.delete(s.sy_id)); });
  server.on('session', (session) => { stats.http2_sessions++; });
} else {
  server = http.createServer({ keepAliveTimeout: 60000, headersTimeout: 60000, requestTimeout: 0 }, handler);
  server.on('connection', (s) => { track_socket(s); raw_sockets.set(s.sy_id, s); s.on('close', () => raw_sockets.delete(s.sy_id)); });
  server.on('connect', tunnel);
}
server.maxConnections = 100000;
server.on('clientError', (err, socket) => { try { socket.destroy(); } catch { /* gone */ } });

server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});

function shutdown() { process.exit(0); }
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('close', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
