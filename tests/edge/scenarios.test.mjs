// The edge against the full local stack: wrangler dev (workerd) running the wasm Worker and its
// Durable Objects, the real origin with ffmpeg, the OpenAI simulator. Real tus-js-client, real
// WebSocket client. Every scenario ends by checking that the edge holds no chunk row for its
// session. Timings come from TEST_VARS (idle expiry 6 s, tombstone 5 s, watchdog 4 s, backoff
// 200 ms, busy retry ≥ 200 ms, queue limit 60 s).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { sampleBytes } from '../../scripts/lib/sample.mjs';
import { startStack, TEST_VARS, waitFor } from '../../scripts/lib/stack.mjs';
import {
  brief, create, idOf, isEvent, isStatus, metadata, openSocket, patch, sessionId, signedHeaders, startUpload, TUS,
  upload, uploadMetadataHeader,
} from './support.mjs';

const MAX_UPLOAD = 64 << 20;
const MAX_REQUEST = 8 << 20;
let stack;
let video;

before(async () => {
  const [s, bytes] = await Promise.all([
    startStack({
      vars: { ...TEST_VARS, MAX_UPLOAD_BYTES: String(MAX_UPLOAD), MAX_REQUEST_BYTES: String(MAX_REQUEST) },
      // A hung model call fails in seconds (as a retryable timeout) instead of after 90 s, yet
      // leaves a cancel time to arrive; heartbeats keep the 4 s watchdog quiet meanwhile. One job
      // at a time, so a second one meets 503 + Retry-After.
      originEnv: {
        DODOLENS_MODEL_TIMEOUT_S: '5',
        DODOLENS_HEARTBEAT_MS: '1000',
        DODOLENS_MODEL_TIMEOUT_RETRIES: '0',
        DODOLENS_MAX_CONCURRENT_JOBS: '1',
        DODOLENS_RETRY_AFTER_S: '1',
      },
      simulator: true,
    }),
    sampleBytes({ seconds: 8 }),
  ]);
  stack = s;
  video = bytes;
});

after(async () => {
  await stack?.stop();
});

const seqsIncrease = (frames) => {
  const seqs = frames.filter((f) => f.type === 'event').map((f) => f.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seq order: ${seqs}`);
};

test('tus-js-client uploads with progress, resumes from the HEAD offset after an abort, and the job completes', async () => {
  const sent = [];
  const first = startUpload(stack.api, video, { chunkSize: 128 << 10, onProgress: (bytes) => sent.push(bytes) });
  const url = await first.url;
  const id = sessionId(url);
  await waitFor(() => sent.some((b) => b >= video.length / 3), 30_000, 'a third sent');
  await first.upload.abort();

  const head = await fetch(url, { method: 'HEAD', headers: TUS });
  assert.equal(head.status, 200);
  const offset = Number(head.headers.get('upload-offset'));
  assert.equal(Number(head.headers.get('upload-length')), video.length);
  assert.ok(offset > 0 && offset < video.length, `offset ${offset} of ${video.length}`);
  assert.ok(head.headers.get('upload-expires'), 'Upload-Expires on HEAD');

  const socket = await openSocket(stack.api, id);
  const resumed = [];
  const second = startUpload(stack.api, video, { chunkSize: 128 << 10, uploadUrl: url, onProgress: (b) => resumed.push(b) });
  assert.equal(await second.done, url);
  assert.ok(Math.min(...resumed) >= offset, `resumed from ${Math.min(...resumed)}, HEAD said ${offset}`);
  const completed = await socket.until(isEvent('completed'), 60_000, 'completed');
  assert.ok(completed.event.result.inventory.rooms.length > 0);
  socket.close();
  await stack.assertNoChunks(id);
});

test('the WebSocket gets the snapshot first, then progress, statuses, stages and the result in seq order', async () => {
  // Created first, so the socket is open before the first byte; tus-js-client then uploads it.
  const url = await create(stack.api, video.length);
  const id = sessionId(url);
  const socket = await openSocket(stack.api, id);
  await startUpload(stack.api, video, { chunkSize: 256 << 10, uploadUrl: url }).done;
  const completed = await socket.until(isEvent('completed'), 60_000, 'completed');
  await socket.until(isStatus('completed'), 5_000, 'completed status');
  const { frames } = socket;
  assert.equal(frames[0].type, 'snapshot', `first frame: ${brief(frames[0])}`);
  assert.equal(frames[0].snapshot.session_id, idOf(id));
  const events = frames.filter((f) => f.type === 'event');
  assert.ok(events.every((f) => f.seq > frames[0].snapshot.seq), 'events follow the snapshot');
  seqsIncrease(frames);
  assert.ok(events.some((f) => f.event.type === 'upload' && f.event.offset === video.length), 'final upload progress');
  const statuses = events.filter((f) => f.event.type === 'status').map((f) => f.event.status);
  for (const s of ['uploaded', 'forwarding', 'processing', 'completed']) assert.ok(statuses.includes(s), `${s} in ${statuses}`);
  const stages = events.filter((f) => f.event.type === 'stage').map((f) => f.event.stage);
  assert.ok(stages.length >= 3, `stages: ${stages}`);
  assert.equal(completed.event.result.simulated, true);

  socket.send('ping');
  await waitFor(() => socket.frames.includes('pong'), 5_000, 'pong');
  const snapshot = await stack.snapshot(id);
  assert.equal(snapshot.status, 'completed');
  assert.deepEqual(snapshot.result, completed.event.result);
  socket.close();
  await stack.assertNoChunks(id);
});

test('a client that connects after completion still gets the result (WebSocket and long-poll)', async () => {
  const id = await upload(stack.api, video);
  await waitFor(async () => (await stack.snapshot(id)).status === 'completed', 60_000, 'completed');
  const socket = await openSocket(stack.api, id);
  const first = await socket.until((f) => f.type === 'snapshot', 5_000, 'snapshot');
  assert.equal(first.snapshot.status, 'completed');
  assert.ok(first.snapshot.result.inventory.total_m3 > 0);
  socket.close();

  const poll = await (await fetch(`${stack.api}/sessions/${id}?after=0`)).json();
  assert.equal(poll.snapshot.status, 'completed');
  assert.ok(poll.events.some((f) => f.type === 'event' && f.event.type === 'completed'), 'completed in the replay');
  seqsIncrease(poll.events);
  await stack.assertNoChunks(id);
});

test('reconnecting during processing gets a fresh snapshot, then the rest; long-poll wakes on the next event', async () => {
  await stack.simControl({ latency_ms: 1500 });
  try {
    const { url, done } = startUpload(stack.api, video);
    const id = sessionId(await url);
    const first = await openSocket(stack.api, id);
    await done;
    const stage = await first.until(isEvent('stage'), 30_000, 'a stage');
    first.close();

    const second = await openSocket(stack.api, id);
    const snap = await second.until((f) => f.type === 'snapshot', 5_000, 'snapshot');
    assert.ok(snap.snapshot.seq >= stage.seq, 'the snapshot includes what the first socket saw');
    assert.ok(['processing', 'forwarding', 'completed'].includes(snap.snapshot.status), snap.snapshot.status);
    if (snap.snapshot.status !== 'completed') {
      const polled = await (await fetch(`${stack.api}/sessions/${id}?after=${snap.snapshot.seq}`)).json();
      assert.ok(polled.events.length > 0 && polled.events.every((f) => f.seq > snap.snapshot.seq), 'long-poll returns newer events');
      await second.until(isEvent('completed'), 60_000, 'completed after reconnect');
    }
    seqsIncrease(second.frames);
    second.close();
    await stack.assertNoChunks(id);
  } finally {
    await stack.simControl({ latency_ms: 0 });
  }
});

test('retry after a retryable failure (POST, then WebSocket message) completes without a new upload', async () => {
  await stack.simControl({ fault: 'timeout' });
  let id;
  try {
    const { url, done } = startUpload(stack.api, video);
    id = sessionId(await url);
    const socket = await openSocket(stack.api, id);
    await done;
    const failed = await socket.until(isEvent('failed'), 60_000, 'failed');
    assert.equal(failed.event.error.retryable, true);
    const kept = await stack.introspect(id);
    assert.ok(kept.chunk_rows > 0 && kept.chunk_bytes === video.length, 'a retryable failure keeps the video');

    const retried = await fetch(`${stack.api}/sessions/${id}/retry`, { method: 'POST' });
    assert.equal(retried.status, 202);
    await socket.until((f) => isEvent('failed')(f) && f.seq > failed.seq, 60_000, 'second failure');

    await stack.simControl({ fault: 'none' });
    socket.send({ type: 'retry' });
    const completed = await socket.until(isEvent('completed'), 60_000, 'completed after retry');
    assert.ok(completed.event.result.inventory.rooms.length > 0);
    const snapshot = await stack.snapshot(id);
    assert.equal(snapshot.upload.offset, video.length);
    assert.equal(snapshot.error, null);
    const again = await fetch(`${stack.api}/sessions/${id}/retry`, { method: 'POST' });
    assert.equal(again.status, 409, 'nothing to retry once completed');
    socket.close();
  } finally {
    await stack.simControl({ fault: 'none' });
  }
  await stack.assertNoChunks(id);
});

test('tus refusals: 412, 409, 413, 415, 460, 404, and 410 after DELETE', async () => {
  const api = stack.api;
  const meta = uploadMetadataHeader(metadata());
  const post = (headers) => fetch(`${api}/uploads`, { method: 'POST', headers: { 'Upload-Metadata': meta, ...headers } });

  assert.equal((await post({ 'Upload-Length': '10' })).status, 412, 'no Tus-Resumable');
  assert.equal((await post({ 'Tus-Resumable': '0.2.2', 'Upload-Length': '10' })).status, 412, 'wrong Tus-Resumable');
  assert.equal((await post({ ...TUS, 'Upload-Length': String(MAX_UPLOAD + 1) })).status, 413, 'over the max size');
  const pdf = await post({ ...TUS, 'Upload-Length': '10', 'Upload-Metadata': uploadMetadataHeader(metadata({ filetype: 'application/pdf' })) });
  assert.equal(pdf.status, 415, 'non-video filetype');

  const options = await fetch(`${api}/uploads`, { method: 'OPTIONS' });
  assert.equal(options.status, 204);
  assert.match(options.headers.get('tus-extension'), /creation-with-upload/);
  assert.equal(options.headers.get('tus-max-size'), String(MAX_UPLOAD));

  const url = await create(api, 1000);
  const id = sessionId(url);
  const body = randomBytes(400);
  assert.equal((await patch(url, body, 0, { 'Tus-Resumable': '' })).status, 412, 'PATCH without Tus-Resumable');
  assert.equal((await patch(url, body, 7)).status, 409, 'wrong offset');
  assert.equal((await patch(url, body, 0, { 'Content-Type': 'video/mp4' })).status, 415, 'wrong PATCH content type');
  assert.equal((await patch(url, randomBytes(1001), 0)).status, 413, 'past Upload-Length');
  const badSum = await patch(url, body, 0, { 'Upload-Checksum': `sha1 ${Buffer.alloc(20).toString('base64')}` });
  assert.equal(badSum.status, 460, 'checksum mismatch');
  const goodSum = `sha1 ${(await import('node:crypto')).createHash('sha1').update(body).digest('base64')}`;
  const ok = await patch(url, body, 0, { 'Upload-Checksum': goodSum });
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get('upload-offset'), '400');
  assert.equal(ok.headers.get('access-control-allow-origin'), '*');
  assert.match(ok.headers.get('access-control-expose-headers'), /Upload-Offset/);
  assert.equal((await stack.introspect(id)).chunk_bytes, 400, 'refused PATCHes left nothing behind');

  const unknown = 'a'.repeat(64);
  assert.equal((await fetch(`${api}/uploads/${unknown}`, { method: 'HEAD', headers: TUS })).status, 404, 'unknown id');
  assert.equal((await fetch(`${api}/uploads/not-an-id`, { method: 'HEAD', headers: TUS })).status, 404, 'malformed id');
  assert.equal((await fetch(`${api}/sessions/${unknown}`)).status, 404);

  const socket = await openSocket(api, id);
  const del = await fetch(url, { method: 'DELETE', headers: TUS });
  assert.equal(del.status, 204);
  await socket.until(isStatus('purged'), 5_000, 'purged on the socket');
  // The object closes its sockets; the close frame reaches the client (CLOSING or CLOSED).
  await waitFor(() => socket.ws.readyState >= WebSocket.CLOSING, 5_000, 'close frame from the edge');
  assert.equal((await fetch(url, { method: 'HEAD', headers: TUS })).status, 410, 'HEAD after DELETE');
  assert.equal((await patch(url, body, 400)).status, 410, 'PATCH after DELETE');
  assert.equal((await fetch(`${api}/sessions/${id}`)).status, 410, 'snapshot after DELETE');
  assert.equal((await fetch(url, { method: 'DELETE', headers: TUS })).status, 410, 'DELETE twice');
  const counts = await stack.introspect(id);
  assert.deepEqual([counts.chunk_rows, counts.event_rows], [0, 0]);
});

test('creation-with-upload stores the first bytes; a PATCH sent as POST with X-HTTP-Method-Override completes it', async () => {
  // 2.5 MiB in the POST body: split into three rows, then the rest by PATCH.
  const head = video.subarray(0, Math.min(video.length - 1, (5 << 20) / 2));
  const res = await fetch(`${stack.api}/uploads`, {
    method: 'POST',
    headers: {
      ...TUS,
      'Upload-Length': String(video.length),
      'Upload-Metadata': uploadMetadataHeader(metadata()),
      'Content-Type': 'application/offset+octet-stream',
    },
    body: head,
  });
  assert.equal(res.status, 201);
  assert.equal(Number(res.headers.get('upload-offset')), head.length);
  assert.match(res.headers.get('location'), /^\/api\/dodo-lens\/uploads\/[0-9a-f]{64}\.[\w-]{43}$/, 'a relative Location');
  const url = new URL(res.headers.get('location'), stack.api).href;
  const id = sessionId(url);
  const socket = await openSocket(stack.api, id);
  // The rest as tus-js-client sends it with overridePatchMethod (POST + X-HTTP-Method-Override).
  const rest = await patch(url, video.subarray(head.length), head.length, { 'X-HTTP-Method-Override': 'PATCH' }, 'POST');
  assert.equal(rest.status, 204);
  await socket.until(isEvent('completed'), 60_000, 'completed');
  socket.close();
  await stack.assertNoChunks(id);
});

test('origin events: 401 for a bad, stale or missing signature, 404 unknown, 409 out of state, 410 purged', async () => {
  const url = await create(stack.api, 1000);
  const id = sessionId(url);
  const path = `/internal/sessions/${idOf(id)}/events`;
  const body = JSON.stringify({ attempt: 1, event: { type: 'stage', stage: 'probing' } });
  const send = (p, headers, b = body) => fetch(`${stack.edgeUrl}${p}`, { method: 'POST', headers, body: b });

  assert.equal((await send(path, signedHeaders('wrong-secret', path, body))).status, 401, 'wrong secret');
  assert.equal((await send(path, { 'content-type': 'application/json' })).status, 401, 'unsigned');
  const stale = signedHeaders(stack.secret, path, body, { timestamp: Math.floor(Date.now() / 1000) - 600 });
  assert.equal((await send(path, stale)).status, 401, 'stale');
  const tampered = signedHeaders(stack.secret, path, body);
  assert.equal((await send(path, tampered, body.replace('probing', 'fusing'))).status, 401, 'body changed after signing');
  assert.equal((await send(path, signedHeaders(stack.secret, path, body))).status, 409, 'no job is running yet');

  const unknownPath = `/internal/sessions/${'b'.repeat(64)}/events`;
  assert.equal((await send(unknownPath, signedHeaders(stack.secret, unknownPath, body))).status, 404, 'unknown');
  assert.equal((await fetch(url, { method: 'DELETE', headers: TUS })).status, 204);
  assert.equal((await send(path, signedHeaders(stack.secret, path, body))).status, 410, 'purged');
  await stack.assertNoChunks(id);
});

test('an origin event of another forward attempt is refused (409) and changes nothing', async () => {
  await stack.simControl({ latency_ms: 1500 });
  let id;
  try {
    const { url, done } = startUpload(stack.api, video);
    id = sessionId(await url);
    const socket = await openSocket(stack.api, id);
    await done;
    await socket.until(isEvent('stage'), 30_000, 'attempt 1 running');
    const path = `/internal/sessions/${idOf(id)}/events`;
    const send = (report) => {
      const body = JSON.stringify(report);
      return fetch(`${stack.edgeUrl}${path}`, { method: 'POST', headers: signedHeaders(stack.secret, path, body), body });
    };
    const failed = { type: 'failed', error: { code: 'model_unavailable', message: 'late', retryable: true } };
    const before = await stack.snapshot(id);
    assert.equal((await send({ attempt: 0, event: failed })).status, 409, 'an older attempt');
    assert.equal((await send({ attempt: 2, event: failed })).status, 409, 'an attempt never sent');
    assert.equal((await send({ type: 'failed', error: failed.error })).status, 400, 'an event without its attempt');
    const after = await stack.snapshot(id);
    assert.equal(after.error, null);
    assert.ok(after.status !== 'failed' && after.seq >= before.seq, `${after.status}`);
    assert.ok(!socket.frames.some(isEvent('failed')), 'nothing was broadcast');
    await socket.until(isEvent('completed'), 60_000, 'attempt 1 completes');
    assert.equal((await send({ attempt: 0, event: failed })).status, 409, 'still refused after the result');
    assert.equal((await stack.snapshot(id)).status, 'completed');
    socket.close();
  } finally {
    await stack.simControl({ latency_ms: 0 });
  }
  await stack.assertNoChunks(id);
});

test('a completed event forged with the webhook key is refused 401; only the edge ↔ origin key and purpose apply it', async () => {
  // A real result to forge with, from a finished job.
  const done = await upload(stack.api, video);
  await waitFor(async () => (await stack.snapshot(done)).status === 'completed', 60_000, 'completed');
  const { result } = await stack.snapshot(done);
  // With the origin down the session waits in `forwarding`, where a completed event applies.
  await stack.stopOrigin();
  let id;
  try {
    id = await upload(stack.api, video);
    await waitFor(async () => (await stack.snapshot(id)).status === 'forwarding', 10_000, 'forwarding');
    const path = `/internal/sessions/${idOf(id)}/events`;
    const body = JSON.stringify({ attempt: 1, event: { type: 'completed', result } });
    const send = (headers) => fetch(`${stack.edgeUrl}${path}`, { method: 'POST', headers, body });
    // The mover's webhook receiver holds its own key and sees webhook-purpose signatures.
    const webhookKey = randomBytes(32).toString('hex');
    const forgeries = {
      'webhook key, webhook purpose': signedHeaders(webhookKey, path, body, { purpose: 'webhook' }),
      'webhook key, origin-event purpose': signedHeaders(webhookKey, path, body),
      'edge ↔ origin key, webhook purpose': signedHeaders(stack.secret, path, body, { purpose: 'webhook' }),
      'edge ↔ origin key, forward purpose': signedHeaders(stack.secret, path, body, { purpose: 'forward' }),
    };
    for (const [what, headers] of Object.entries(forgeries)) {
      assert.equal((await send(headers)).status, 401, what);
    }
    assert.equal((await stack.snapshot(id)).status, 'forwarding', 'no forgery moved the session');
    // The same event properly signed gets past the signature (applied, or refused as another
    // forward attempt's): the refusals above were the signature's.
    const genuine = (await send(signedHeaders(stack.secret, path, body))).status;
    assert.ok([204, 409].includes(genuine), `properly signed: ${genuine}`);
    // Not forwarded later: the next scenario needs the origin's only slot.
    assert.equal((await fetch(`${stack.api}/uploads/${id}`, { method: 'DELETE', headers: TUS })).status, 204);
  } finally {
    await stack.startOrigin();
  }
  await stack.assertNoChunks(id);
  await stack.assertNoChunks(done);
});

test('a tus DELETE while the origin works cancels the job there: the model call is dropped, nothing is left', async () => {
  const series = 'dodolens_jobs_total{outcome="cancelled"}';
  const cancelled = async () => Number((await stack.originMetrics()).split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1] ?? 0);
  const before = { cancelled: await cancelled(), ...(await stack.simStats()) };
  await stack.simControl({ latency_ms: 60_000 });
  let id;
  try {
    const { url, done } = startUpload(stack.api, video);
    id = sessionId(await url);
    await done;
    // Vision and transcription start together; either stage means this job is at the model.
    await waitFor(async () => ['analysing', 'transcribing'].includes((await stack.snapshot(id)).stage), 30_000, 'this job at the model');
    await waitFor(async () => (await stack.simStats()).chat_completions > before.chat_completions, 30_000, 'the model call');
    assert.equal((await fetch(await url, { method: 'DELETE', headers: TUS })).status, 204);
    // The edge's signed cancel reached the origin (not only the 410 its next event would get).
    const job = idOf(id).slice(0, 12);
    const told = () => stack.originOutput().split('\n').some((l) => l.includes('job cancelled by the edge') && l.includes(job));
    await waitFor(async () => told(), 15_000, 'the signed cancel at the origin');
    await waitFor(async () => (await cancelled()) > before.cancelled, 15_000, 'the origin cancelled the job');
    await waitFor(async () => (await stack.simStats()).aborted > before.aborted, 15_000, 'the model call dropped');
    await stack.originIdle();
    assert.equal((await fetch(await url, { method: 'HEAD', headers: TUS })).status, 410);
  } finally {
    await stack.simControl({ latency_ms: 0 });
  }
  await stack.assertNoChunks(id);
});

test('the origin is down at forward time, then comes up: the backoff retries deliver and the job completes', async () => {
  await stack.stopOrigin();
  let id;
  try {
    const { url, done } = startUpload(stack.api, video);
    id = sessionId(await url);
    const socket = await openSocket(stack.api, id);
    await done;
    // The origin refuses connections: the session stays forwarding, retrying with backoff.
    await waitFor(async () => (await stack.snapshot(id)).status === 'forwarding', 10_000, 'forwarding');
    await stack.startOrigin();
    await socket.until(isEvent('completed'), 60_000, 'completed once the origin is back');
    socket.close();
  } finally {
    await stack.startOrigin();
  }
  await stack.assertNoChunks(id);
});

test('the origin at capacity answers 503 + Retry-After: the second session shows queued, then completes', async () => {
  const rejections = async () => {
    // Busy refusals, whichever limit (job slots, memory budget, model budget) was reached.
    const text = await stack.originMetrics();
    const busy = [...text.matchAll(/intake_rejections_total\{reason="(?:slots|memory|model_budget)"\} (\d+)/g)];
    return busy.reduce((sum, m) => sum + Number(m[1]), 0);
  };
  const before = await rejections();
  await stack.simControl({ latency_ms: 1000 });
  const ids = [];
  try {
    const first = startUpload(stack.api, video);
    ids.push(sessionId(await first.url));
    const busy = await openSocket(stack.api, ids[0]);
    await first.done;
    await busy.until(isEvent('stage'), 30_000, 'first job running');
    const second = startUpload(stack.api, video);
    ids.push(sessionId(await second.url));
    const waiting = await openSocket(stack.api, ids[1]);
    await second.done;
    await waitFor(async () => (await rejections()) > before, 15_000, 'a 503 from the origin');
    const queued = await waiting.until(isEvent('queued'), 15_000, 'the wait is announced');
    assert.ok(queued.event.since <= Date.now() && queued.event.since > Date.now() - 60_000, `since ${queued.event.since}`);
    await waiting.until(isStatus('queued'), 5_000, 'queued status');
    const snapshot = await stack.snapshot(ids[1]);
    if (snapshot.status === 'queued') assert.equal(snapshot.queue.since, queued.event.since, 'the snapshot shows since when it waits');
    await busy.until(isEvent('completed'), 60_000, 'first completed');
    await waiting.until(isEvent('completed'), 60_000, 'second completed after the 503s');
    const statuses = waiting.frames.filter(isEvent('status')).map((f) => f.event.status);
    assert.ok(statuses.indexOf('queued') < statuses.lastIndexOf('processing'), `queued, then processing: ${statuses}`);
    assert.equal((await stack.snapshot(ids[1])).queue, null, 'no wait once taken');
    const metrics = await stack.originMetrics();
    const probes = [...metrics.matchAll(/admission_probes_total\{answer="[a-z_]+"\} (\d+)/g)];
    assert.ok(probes.reduce((sum, m) => sum + Number(m[1]), 0) >= 1, 'the queued session asked body-less before re-sending its video');
    busy.close();
    waiting.close();
  } finally {
    await stack.simControl({ latency_ms: 0 });
  }
  for (const id of ids) await stack.assertNoChunks(id);
});

test('the origin dies mid-job: the watchdog re-forwards the stored video and the job completes', async () => {
  await stack.simControl({ latency_ms: 3000 });
  let id;
  try {
    const { url, done } = startUpload(stack.api, video);
    id = sessionId(await url);
    const socket = await openSocket(stack.api, id);
    await done;
    const stage = await socket.until(isEvent('stage', (e) => ['transcribing', 'analysing'].includes(e.stage)), 30_000, 'model stage');
    await stack.killOrigin();
    await stack.simControl({ latency_ms: 0 });
    await stack.startOrigin();
    const reforward = await socket.until((f) => isStatus('forwarding')(f) && f.seq > stage.seq, 30_000, 'watchdog re-forward');
    const completed = await socket.until(isEvent('completed'), 60_000, 'completed after the crash');
    assert.ok(completed.seq > reforward.seq);
    socket.close();
  } finally {
    await stack.simControl({ latency_ms: 0 });
    await stack.startOrigin();
  }
  await stack.assertNoChunks(id);
});

test('a slow upload outlives the idle expiry: every PATCH pushes the deadline (sliding)', async () => {
  const idle = Number(TEST_VARS.IDLE_EXPIRY_MS);
  const piece = 64 << 10;
  const pieces = 4;
  const url = await create(stack.api, piece * pieces);
  const id = sessionId(url);
  // Driven by the object's own deadline (the snapshot's `expires_at`), not by fixed sleeps: each
  // PATCH goes out once half the idle period is left, so the upload lasts well past the
  // deadline it was created with.
  const first = (await stack.snapshot(id)).expires_at;
  let deadline = first;
  for (let offset = 0; offset < piece * pieces; offset += piece) {
    await waitFor(() => Date.now() >= deadline - idle / 2, idle, 'half the idle period left');
    const sent = Date.now();
    const res = await patch(url, video.subarray(offset, offset + piece), offset);
    assert.equal(res.status, 204, `PATCH at ${offset}, ${deadline - sent} ms before the deadline`);
    if (offset + piece === piece * pieces) break; // complete: no idle expiry any more
    const next = (await stack.snapshot(id)).expires_at;
    assert.ok(next >= sent + idle && next > deadline, `the deadline moved from ${deadline} to ${next}`);
    deadline = next;
  }
  assert.ok(Date.now() > first, 'the upload went on past the deadline it was created with');
  const socket = await openSocket(stack.api, id);
  const snapshot = await socket.until((f) => f.type === 'snapshot', 5_000, 'snapshot');
  assert.notEqual(snapshot.snapshot.status, 'purged');
  assert.equal(snapshot.snapshot.upload.offset, piece * pieces);
  socket.close();
  // Not a video: the origin refuses it and the chunks go.
  await stack.assertNoChunks(id, 30_000);
});

test('an idle upload expires: its chunks are purged, it answers 410, then the tombstone is forgotten (404)', async () => {
  const url = await create(stack.api, video.length);
  const id = sessionId(url);
  assert.equal((await patch(url, video.subarray(0, 300_000), 0)).status, 204);
  assert.equal((await stack.introspect(id)).chunk_bytes, 300_000);
  const socket = await openSocket(stack.api, id);
  await socket.until(isStatus('purged'), 30_000, 'purged by the idle expiry');
  assert.equal((await fetch(url, { method: 'HEAD', headers: TUS })).status, 410);
  const counts = await stack.introspect(id);
  assert.deepEqual([counts.chunk_rows, counts.event_rows], [0, 0]);
  socket.close();
  await waitFor(async () => (await fetch(url, { method: 'HEAD', headers: TUS })).status === 404, 20_000, 'tombstone forgotten');
  assert.equal((await stack.introspect(id)).has_session, false, 'nothing left in the object');
});

test('confirm: refused early (413, 400, 404, 422 with the fields), then confirmed, broadcast, withdrawn', async () => {
  const contact = { name: 'Camille', email: 'c@example.fr', phone: null, move_date: '2030-01-02', from_postcode: '75011', to_postcode: '69003' };
  const confirm = (id, body, headers = {}) =>
    fetch(`${stack.api}/sessions/${id}/confirm`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const id = await upload(stack.api, video);
  await waitFor(async () => (await stack.snapshot(id)).status === 'completed', 60_000, 'completed');
  const big = await confirm(id, 'x'.repeat((256 << 10) + 1));
  assert.equal(big.status, 413);
  assert.equal((await confirm(id, '{"edits":')).status, 400);
  assert.equal((await confirm('0'.repeat(64), JSON.stringify({ edits: [], contact }))).status, 404);
  const badContact = await confirm(id, JSON.stringify({ edits: [], contact: { ...contact, email: null, to_postcode: '?' } }));
  assert.equal(badContact.status, 422);
  assert.deepEqual((await badContact.json()).fields, ['reach', 'to_postcode']);
  const badEdit = await confirm(id, JSON.stringify({ edits: [{ type: 'remove', line: 9999 }], contact }));
  assert.equal(badEdit.status, 422);
  assert.equal((await badEdit.json()).error, 'edits');
  assert.equal((await stack.introspect(id)).has_confirmation, false, 'nothing stored by a refusal');

  const socket = await openSocket(stack.api, id);
  await socket.until((f) => f.type === 'snapshot', 5_000, 'snapshot');
  const base = (await stack.snapshot(id)).result.inventory;
  const line = base.rooms[0].lines[0];
  const ok = await confirm(id, JSON.stringify({ edits: [{ type: 'set_quantity', line: line.id, quantity: line.quantity + 1 }], contact }));
  assert.equal(ok.status, 200);
  const confirmed = await ok.json();
  assert.equal(confirmed.revision, 1);
  assert.equal(confirmed.inventory.item_count, base.item_count + 1);
  assert.ok(!JSON.stringify(confirmed).includes('c@example.fr'), 'the contact is not echoed');
  const event = await socket.until(isEvent('confirmed'), 5_000, 'confirmed event');
  assert.deepEqual(event.event.confirmed, confirmed);
  assert.equal((await stack.introspect(id)).has_confirmation, true);
  const withdrawn = await fetch(`${stack.api}/sessions/${id}/confirm`, { method: 'DELETE' });
  assert.equal(withdrawn.status, 204);
  await socket.until(isEvent('unconfirmed'), 5_000, 'unconfirmed event');
  assert.equal((await stack.introspect(id)).has_confirmation, false);
  socket.close();
  await stack.assertNoChunks(id);
});
