// The edge's gate against the full local stack (wrangler dev, origin, simulator) and a local
// Turnstile siteverify stand-in: who may create a session (the per-client rate limit binding,
// the challenge), the capability token every browser route needs, every input refused early
// with its status and message, a newer PATCH taking over a stale one. Short limits come from the
// stack's vars (long-poll 1 s, 3 sockets per session). Every scenario ends with a residue check:
// no chunk row, and no Durable Object created by a refused request.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { startStack, TEST_VARS, waitFor } from '../../scripts/lib/stack.mjs';
import { startSiteverify } from '../support/siteverify.mjs';
import {
  durableObjectFiles, idOf, metadata, openSocket, patch, sessionId, signedHeaders, TUS, uploadMetadataHeader,
} from './support.mjs';

/** `simple.limit` of the CREATE_LIMITER binding in wrangler.toml. */
const CREATE_LIMIT = 10;
const MAX_SOCKETS = 3;
let stack;
let siteverify;
/** A client address per test, so each test has its own rate-limit budget. */
let nextAddress = 10;
const address = () => `198.51.100.${nextAddress++}`;

before(async () => {
  siteverify = await startSiteverify();
  stack = await startStack({
    vars: {
      ...TEST_VARS,
      TURNSTILE_SECRET: siteverify.secret,
      TURNSTILE_VERIFY_URL: siteverify.url,
      LONG_POLL_MS: '1000',
      MAX_SOCKETS_PER_SESSION: String(MAX_SOCKETS),
    },
    simulator: true,
  });
});

after(async () => {
  await stack?.stop();
  await siteverify?.stop();
});

/** A raw tus creation from `client`, with a valid challenge token unless `token` says otherwise. */
function post({ client = address(), token = siteverify.token(), length = 1000, meta = uploadMetadataHeader(metadata()), headers = {} } = {}) {
  return fetch(`${stack.api}/uploads`, {
    method: 'POST',
    headers: {
      ...TUS,
      'CF-Connecting-IP': client,
      'Upload-Length': String(length),
      'Upload-Metadata': meta,
      ...(token ? { 'X-Turnstile-Token': token } : {}),
      ...headers,
    },
  });
}

async function created(res) {
  assert.equal(res.status, 201, await res.clone().text());
  return new URL(res.headers.get('location'), stack.api).href;
}

async function refused(res, status, message) {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.match(text, message);
  return res;
}

const terminate = (url) => fetch(url, { method: 'DELETE', headers: TUS });

/** Objects that exist now; a request refused before any object leaves this unchanged. */
const objects = () => durableObjectFiles(stack.dir);

test('creation is rate limited per client address: 429 with Retry-After, other clients unaffected', async () => {
  const urls = [];
  let limited;
  // The binding counts in fixed windows; if one ends mid-burst, the next burst fits in one.
  for (let round = 0; round < 2 && !limited; round++) {
    const client = address();
    for (let i = 0; i <= CREATE_LIMIT; i++) {
      const res = await post({ client });
      if (res.status === 429) {
        limited = { res, i, text: await res.text() };
        break;
      }
      urls.push(await created(res));
    }
  }
  assert.ok(limited, 'a burst over the limit met 429');
  assert.equal(limited.i, CREATE_LIMIT, `the first ${CREATE_LIMIT} creations of the burst were allowed`);
  const wait = Number(limited.res.headers.get('retry-after'));
  assert.ok(wait >= 1 && wait <= 60, `Retry-After ${limited.res.headers.get('retry-after')}`);
  assert.match(limited.text, new RegExp(`too many uploads created from this address; retry in ${wait} s`));
  assert.equal(limited.res.headers.get('access-control-allow-origin'), '*', 'a browser can read the refusal');
  assert.equal(limited.res.headers.get('tus-resumable'), '1.0.0');
  urls.push(await created(await post({ client: address() })));
  for (const url of urls) assert.equal((await terminate(url)).status, 204);
  for (const url of urls) assert.equal((await stack.introspect(sessionId(url))).chunk_rows, 0);
});

test('Turnstile on creation: checked against siteverify with the secret and the client address', async () => {
  const before = await objects();
  const client = address();
  await refused(await post({ client, token: null }), 403, /a Turnstile token is required/);
  await refused(await post({ client, token: 'forged' }), 403, /the Turnstile challenge failed \(invalid-input-response\)/);
  const token = siteverify.token();
  const url = await created(await post({ client, token }));
  await refused(await post({ client, token }), 403, /timeout-or-duplicate/);
  const asked = siteverify.seen.find((r) => r.response === token);
  assert.deepEqual(
    [asked.secret, asked.remoteip, asked.contentType, asked.path],
    [siteverify.secret, client, 'application/json', '/turnstile/v0/siteverify'],
  );
  assert.ok(!siteverify.seen.some((r) => r.response === undefined), 'no siteverify call without a token');

  siteverify.setMode('error');
  const unavailable = await refused(await post({ client }), 503, /anti-abuse check is unavailable/);
  assert.equal(unavailable.headers.get('retry-after'), '5');
  siteverify.setMode('down');
  await refused(await post({ client }), 503, /anti-abuse check is unavailable/);
  siteverify.setMode('ok');
  assert.equal((await objects()).length, before.length + 1, 'only the accepted creation made an object');
  assert.equal((await terminate(url)).status, 204);
});

test('bounded creation headers: filename, metadata and an empty upload are refused (400) before any object', async () => {
  const before = await objects();
  const video = Buffer.from('video/mp4').toString('base64');
  const name = (bytes) => `filetype ${video},filename ${Buffer.from('é'.repeat(bytes / 2)).toString('base64')}`;
  await refused(await post({ meta: name(256) }), 400, /Upload-Metadata `filename` is longer than 255 bytes/);
  await refused(
    await post({ meta: `filetype ${video},note ${'A'.repeat(5000)}` }),
    400,
    /Upload-Metadata is longer than 4096 bytes/,
  );
  await refused(await post({ length: 0 }), 400, /Upload-Length must be at least 1 byte: an empty file is not a video/);
  assert.deepEqual(await objects(), before, 'refused creations created no Durable Object');
  const url = await created(await post({ meta: name(254) }));
  const head = await fetch(url, { method: 'HEAD', headers: TUS });
  assert.equal(head.status, 200);
  assert.equal((await terminate(url)).status, 204);
});

test('the capability: every browser route needs the token; a wrong or missing one is 404 like an unknown session', async () => {
  const url = await created(await post());
  const handle = sessionId(url);
  const id = idOf(handle);
  assert.match(handle, /^[0-9a-f]{64}\.[\w-]{43}$/);
  const wrong = `${id}.${randomBytes(32).toString('base64url')}`;
  const unknown = `${'a'.repeat(64)}.${randomBytes(32).toString('base64url')}`;
  const routes = (h) => [
    ['HEAD', `${stack.api}/uploads/${h}`, { headers: TUS }],
    ['PATCH', `${stack.api}/uploads/${h}`, { headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.alloc(10) }],
    ['DELETE', `${stack.api}/uploads/${h}`, { headers: TUS }],
    ['GET', `${stack.api}/sessions/${h}`, {}],
    ['GET', `${stack.api}/sessions/${h}?after=0`, {}],
    ['POST', `${stack.api}/sessions/${h}/retry`, {}],
    ['GET', `${stack.api}/dev/sessions/${h}`, {}],
  ];
  const answers = async (h) => {
    const out = [];
    for (const [method, target, init] of routes(h)) {
      const res = await fetch(target, { method, ...init });
      out.push(`${method} ${res.status} ${await res.text()}`);
    }
    return out;
  };
  const forUnknown = await answers(unknown);
  assert.ok(forUnknown.every((l) => / 404 (not found)?$/.test(l)), forUnknown.join('\n'));
  assert.deepEqual(await answers(wrong), forUnknown, 'a wrong token reads exactly like an unknown session');
  assert.deepEqual(await answers(id), forUnknown, 'the bare id opens nothing');
  for (const h of [wrong, id]) {
    const ws = new WebSocket(`${stack.api.replace(/^http/, 'ws')}/sessions/${h}/ws`);
    const outcome = await new Promise((resolve) => {
      ws.addEventListener('open', () => resolve('open'), { once: true });
      ws.addEventListener('error', () => resolve('refused'), { once: true });
    });
    assert.equal(outcome, 'refused', `WebSocket with ${h === id ? 'no' : 'a wrong'} token`);
  }

  // Nothing above touched the session: the owner still sees it whole.
  const head = await fetch(url, { method: 'HEAD', headers: TUS });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('upload-offset'), '0');
  assert.equal((await stack.snapshot(handle)).session_id, id);
  assert.equal((await terminate(url)).status, 204);
  // A purged session's owner learns 410; a stranger still 404.
  assert.equal((await fetch(url, { method: 'HEAD', headers: TUS })).status, 410);
  assert.equal((await fetch(`${stack.api}/uploads/${wrong}`, { method: 'HEAD', headers: TUS })).status, 404);
  assert.equal((await stack.introspect(handle)).chunk_rows, 0);
});

test('origin events are refused from their headers: stale (401), no length (411), over 1 MiB declared (413)', async () => {
  // Refused before a byte of body is read (the checks only look at headers). wrangler dev's
  // workerd drains an unread request body before it answers, so the test sends whole bodies.
  const url = await created(await post());
  const handle = sessionId(url);
  const path = `/internal/sessions/${idOf(handle)}/events`;
  const body = JSON.stringify({ attempt: 1, event: { type: 'stage', stage: 'probing' } });
  const send = async (headers, init = {}) => {
    const res = await fetch(`${stack.edgeUrl}${path}`, { method: 'POST', headers, body, ...init });
    return { status: res.status, text: await res.text() };
  };
  const stale = signedHeaders(stack.secret, path, body, { timestamp: Math.floor(Date.now() / 1000) - 600 });
  assert.deepEqual(await send(stale), { status: 401, text: 'signature rejected: request timestamp outside the allowed window' });
  const chunked = new ReadableStream({
    start(controller) {
      controller.enqueue(Buffer.from(body));
      controller.close();
    },
  });
  assert.deepEqual(await send(signedHeaders(stack.secret, path, body), { body: chunked, duplex: 'half' }), {
    status: 411,
    text: 'Content-Length is required',
  });
  const huge = Buffer.alloc((1 << 20) + 1, 0x20);
  assert.deepEqual(await send(signedHeaders(stack.secret, path, huge), { body: huge }), {
    status: 413,
    text: 'request body too large: over the event size limit',
  });
  assert.equal((await send(signedHeaders(stack.secret, path, body))).status, 409, 'a good event still reaches the session');
  assert.equal((await terminate(url)).status, 204);
});

test('WebSockets per session are capped: the next one is closed with 1008 and the reason', async () => {
  const url = await created(await post());
  const handle = sessionId(url);
  const sockets = [];
  for (let i = 0; i < MAX_SOCKETS; i++) {
    const socket = await openSocket(stack.api, handle);
    await socket.until((f) => f.type === 'snapshot', 5_000, 'snapshot');
    sockets.push(socket);
  }
  const extra = new WebSocket(`${stack.api.replace(/^http/, 'ws')}/sessions/${handle}/ws`);
  const closed = await new Promise((resolve) => extra.addEventListener('close', (e) => resolve(e), { once: true }));
  assert.equal(closed.code, 1008);
  assert.equal(closed.reason, `too many live connections to this session (max ${MAX_SOCKETS})`);
  assert.equal((await stack.introspect(handle)).sockets, MAX_SOCKETS);
  sockets.pop().close();
  await waitFor(async () => (await stack.introspect(handle)).sockets < MAX_SOCKETS, 10_000, 'a socket slot freed');
  const again = await openSocket(stack.api, handle);
  await again.until((f) => f.type === 'snapshot', 5_000, 'snapshot once a slot is free');
  for (const s of [...sockets, again]) s.close();
  assert.equal((await terminate(url)).status, 204);
});

test('a long-poll that times out takes its waiter with it', async () => {
  const url = await created(await post());
  const handle = sessionId(url);
  const { seq } = await stack.snapshot(handle);
  const poll = fetch(`${stack.api}/sessions/${handle}?after=${seq}`).then((r) => r.json());
  await waitFor(async () => (await stack.introspect(handle)).long_polls === 1, 5_000, 'the poll waiting');
  const answer = await poll;
  assert.deepEqual(answer.events, [], 'nothing new happened');
  assert.equal((await stack.introspect(handle)).long_polls, 0, 'the timed-out waiter is gone');
  assert.equal((await terminate(url)).status, 204);
});

/**
 * A PATCH from a client whose connection went half-open: `head` is sent, then nothing, the body
 * never ends. Resolves with the answer (`{status, text}`) or `{error}`; `close()` drops it.
 */
function stalledPatch(url, offset, declared, head) {
  const target = new URL(url);
  const req = http.request({
    host: target.hostname,
    port: target.port,
    path: target.pathname,
    method: 'PATCH',
    headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(declared) },
  });
  const answer = new Promise((resolve) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', (error) => resolve({ error: error.message }));
  });
  req.flushHeaders();
  req.write(head);
  return { answer, close: () => req.destroy() };
}

test('a newer PATCH takes over a stalled one instead of 409: the stale request stops and its bytes are dropped', async () => {
  // 3 MiB of a 4 MiB upload: the session stays uploading, so its rows can be counted.
  const length = 3 << 20;
  const data = randomBytes(length);
  const url = await created(await post({ length: length + (1 << 20) }));
  const handle = sessionId(url);
  // 1.5 MiB sent (one row stored, half a row read), then silence.
  const stale = stalledPatch(url, 0, length, data.subarray(0, length / 2));
  try {
    await waitFor(async () => (await stack.introspect(handle)).chunk_rows >= 1, 10_000, 'the stale PATCH writing');
    assert.equal((await fetch(url, { method: 'HEAD', headers: TUS })).headers.get('upload-offset'), '0', 'nothing committed yet');

    // The client reconnects and resumes from the offset HEAD gave it.
    const fresh = await patch(url, data, 0);
    assert.equal(fresh.status, 204, await fresh.text());
    assert.equal(fresh.headers.get('upload-offset'), String(length));
    assert.deepEqual(await stale.answer, { status: 409, text: 'a newer request took over this upload' });
  } finally {
    stale.close();
  }
  const counts = await stack.introspect(handle);
  assert.equal(counts.chunk_bytes, length, 'exactly the new request\'s bytes are stored');
  assert.equal(counts.chunk_rows, 3);
  assert.equal((await terminate(url)).status, 204);
  await stack.assertNoChunks(handle);
});
