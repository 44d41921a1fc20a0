// tus creation-defer-length against the full local stack (wrangler dev, the real origin with
// ffmpeg, the OpenAI simulator): an upload whose length is only known at its end, as a
// recording uploaded while it is filmed. Real tus-js-client reading a Node stream; raw tus
// requests for the refusals and for a final PATCH that breaks. Every scenario ends with a
// residue check. A small Tus-Max-Size (8 MiB) so the overshoot is cheap; TEST_VARS's idle expiry.
// FORWARD_WHILE_RECEIVING is off here: the deferred length is tus alone, and a recording is then
// forwarded whole once complete, as any upload (streaming has its own file, stream.test.mjs).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import * as tus from 'tus-js-client';
import { sampleBytes } from '../../scripts/lib/sample.mjs';
import { startStack, TEST_VARS, waitFor } from '../../scripts/lib/stack.mjs';
import { isEvent, isStatus, metadata, openSocket, patch, sessionId, testClient, TUS, uploadMetadataHeader } from './support.mjs';

const MAX_UPLOAD = 8 << 20;
const MAX_REQUEST = 3 << 20;
const CHUNK = 256 << 10;
let stack;
let video;

before(async () => {
  const [s, bytes] = await Promise.all([
    startStack({
      vars: {
        ...TEST_VARS,
        MAX_UPLOAD_BYTES: String(MAX_UPLOAD),
        MAX_REQUEST_BYTES: String(MAX_REQUEST),
        FORWARD_WHILE_RECEIVING: '0',
      },
      simulator: true,
    }),
    // 720p, so the video spans several 1 MiB rows (about 6 MiB).
    sampleBytes({ seconds: 8, width: 1280, height: 720 }),
  ]);
  stack = s;
  video = bytes;
  assert.ok(video.length < MAX_UPLOAD && video.length > 3 << 20, `sample of ${video.length} bytes`);
});

after(async () => {
  await stack?.stop();
});

const head = (url) => fetch(url, { method: 'HEAD', headers: TUS });

/** Creates a deferred-length upload with a raw POST and returns its absolute URL. */
async function createDeferred(headers = {}) {
  const res = await fetch(`${stack.api}/uploads`, {
    method: 'POST',
    headers: {
      ...TUS,
      'CF-Connecting-IP': testClient(),
      'Upload-Defer-Length': '1',
      'Upload-Metadata': uploadMetadataHeader(metadata()),
      ...headers,
    },
  });
  assert.equal(res.status, 201, await res.text());
  return new URL(res.headers.get('location'), stack.api).href;
}

test('tus-js-client uploads a Node stream with a deferred length: bytes reach the edge while it is open, the last PATCH declares the length, the job completes', async () => {
  // tus-js-client's Node stream source stalls when the stream ends exactly on a chunk boundary
  // (tus-js-client#779): a recording never does on purpose, and neither does this one.
  assert.notEqual(video.length % CHUNK, 0);
  const stream = new PassThrough();
  const lengths = [];
  let committed = 0;
  let urlKnown;
  const url = new Promise((resolve) => (urlKnown = resolve));
  const done = new Promise((resolve, reject) => {
    const upload = new tus.Upload(stream, {
      endpoint: `${stack.api}/uploads`,
      uploadLengthDeferred: true,
      chunkSize: CHUNK,
      metadata: metadata({ filename: 'salon.mp4' }),
      retryDelays: [100, 300, 1000],
      headers: { 'CF-Connecting-IP': testClient() },
      onUploadUrlAvailable: () => urlKnown(upload.url),
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') lengths.push(req.getHeader('Upload-Length') ?? null);
      },
      onChunkComplete: (_size, offset) => (committed = offset),
      onSuccess: () => resolve(upload.url),
      onError: reject,
    });
    upload.start();
  });
  done.catch(() => {});

  // The first half, as a recorder would hand it over; the stream stays open.
  const half = Math.floor(video.length / 2);
  stream.write(video.subarray(0, half));
  const id = sessionId(await url);
  const socket = await openSocket(stack.api, id);
  await waitFor(() => committed >= CHUNK, 30_000, 'a first chunk committed');
  const open = await head(await url);
  assert.equal(open.status, 200);
  assert.equal(open.headers.get('upload-defer-length'), '1', 'HEAD says the length is deferred');
  assert.equal(open.headers.get('upload-length'), null);
  const offset = Number(open.headers.get('upload-offset'));
  assert.ok(offset >= CHUNK && offset <= half, `the edge holds ${offset} bytes of ${half} written`);
  const snapshot = await stack.snapshot(id);
  assert.equal(snapshot.status, 'uploading');
  assert.equal(snapshot.upload.length, null);
  assert.ok(snapshot.upload.offset >= offset && snapshot.upload.offset <= half, `snapshot offset ${snapshot.upload.offset}`);
  assert.equal((await stack.introspect(id)).stream, null, 'with FORWARD_WHILE_RECEIVING=0 nothing streams');

  stream.end(video.subarray(half));
  assert.equal(await done, await url);
  // Every PATCH but the last went without a length; the last one declared it.
  assert.equal(lengths.at(-1), String(video.length));
  assert.ok(lengths.slice(0, -1).every((l) => l === null), `Upload-Length per PATCH: ${lengths}`);
  const final = await socket.until(isEvent('upload', (e) => e.length !== null), 10_000, 'the upload with its length');
  assert.deepEqual(final.event, { type: 'upload', offset: video.length, length: video.length });
  const completed = await socket.until(isEvent('completed'), 60_000, 'completed');
  assert.ok(completed.event.result.inventory.rooms.length > 0);
  socket.close();
  await stack.assertNoChunks(id);
});

test('a final PATCH that declares the length and breaks mid-body still leaves the length known: a PATCH without the header finishes the upload', async () => {
  const url = await createDeferred();
  const id = sessionId(url);
  const first = video.subarray(0, 1 << 20);
  assert.equal((await patch(url, first, 0)).status, 204);

  // A PATCH declaring the length (with as much of the rest as one request may carry), its body
  // cut after one and a half more MiB.
  const controller = new AbortController();
  let feed;
  const body = new ReadableStream({ start: (c) => (feed = c) });
  const request = fetch(url, {
    method: 'PATCH',
    headers: {
      ...TUS,
      'Upload-Offset': String(first.length),
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(MAX_REQUEST),
      'Upload-Length': String(video.length),
    },
    body,
    duplex: 'half',
    signal: controller.signal,
  }).catch((e) => e);
  feed.enqueue(video.subarray(first.length, first.length + (3 << 19)));
  // The edge writes rows as they arrive; once the second MiB is a row, the client goes away.
  await waitFor(async () => (await stack.introspect(id)).chunk_bytes >= 2 << 20, 30_000, 'the second MiB stored');
  controller.abort();
  await request;
  await waitFor(async () => Number((await head(url)).headers.get('upload-offset')) === 2 << 20, 30_000, 'the interrupted PATCH committed its whole rows');
  const after = await head(url);
  assert.equal(after.headers.get('upload-length'), String(video.length), 'the broken final PATCH declared the length');
  assert.equal(after.headers.get('upload-defer-length'), null);

  // What a client that lost its deferred flag sends on retry (tus-js-client#794): the rest, no header.
  const socket = await openSocket(stack.api, id);
  let rest;
  for (let at = 2 << 20; at < video.length; at += MAX_REQUEST) {
    rest = await patch(url, video.subarray(at, at + MAX_REQUEST), at);
    assert.equal(rest.status, 204);
  }
  assert.equal(rest.headers.get('upload-offset'), String(video.length));
  await socket.until(isEvent('completed'), 60_000, 'completed');
  socket.close();
  await stack.assertNoChunks(id);
});

test('deferred-length refusals: creation headers, a length that changes or undercuts, bytes past Tus-Max-Size (nothing kept), then the last bytes with the same length again', async () => {
  const post = (headers) =>
    fetch(`${stack.api}/uploads`, {
      method: 'POST',
      headers: { ...TUS, 'CF-Connecting-IP': testClient(), 'Upload-Metadata': uploadMetadataHeader(metadata()), ...headers },
    });
  for (const [headers, what] of [
    [{}, 'neither Upload-Length nor Upload-Defer-Length'],
    [{ 'Upload-Defer-Length': '0' }, 'Upload-Defer-Length: 0'],
    [{ 'Upload-Defer-Length': '1', 'Upload-Length': '10' }, 'both'],
  ]) {
    const res = await post(headers);
    assert.equal(res.status, 400, what);
    assert.match(await res.text(), /Upload-(Defer-)?Length/, what);
  }
  const options = await fetch(`${stack.api}/uploads`, { method: 'OPTIONS' });
  assert.ok(options.headers.get('tus-extension').split(',').includes('creation-defer-length'));
  assert.match(options.headers.get('access-control-expose-headers'), /Upload-Defer-Length/);

  const url = await createDeferred();
  const id = sessionId(url);
  const bytes = randomBytes(6 << 20);
  assert.equal((await patch(url, bytes.subarray(0, 3 << 20), 0)).status, 204);
  assert.equal((await patch(url, bytes.subarray(3 << 20), 3 << 20)).status, 204);
  // Past Tus-Max-Size while the length is unknown: refused from Content-Length before the body…
  const declared = await patch(url, randomBytes(MAX_UPLOAD - bytes.length + 1), bytes.length);
  assert.equal(declared.status, 413);
  // …and, with no Content-Length (a streamed body), as soon as the bytes pass it.
  const streamed = await fetch(url, {
    method: 'PATCH',
    headers: { ...TUS, 'Upload-Offset': String(bytes.length), 'Content-Type': 'application/offset+octet-stream' },
    body: new Blob([randomBytes(MAX_UPLOAD - bytes.length + 1)]).stream(),
    duplex: 'half',
  });
  assert.equal(streamed.status, 413);
  assert.match(await streamed.text(), new RegExp(`maximum size of ${MAX_UPLOAD} bytes`));
  assert.equal((await stack.introspect(id)).chunk_bytes, bytes.length, 'the refused bytes were not kept');

  const length = bytes.length + 10;
  const declare = (value, body = Buffer.alloc(0), at = bytes.length) => patch(url, body, at, { 'Upload-Length': String(value) });
  assert.equal((await declare(MAX_UPLOAD + 1)).status, 413, 'a length over Tus-Max-Size');
  assert.equal((await declare(bytes.length - 1)).status, 400, 'a length below the bytes received');
  assert.equal((await declare(0)).status, 400, 'an empty length');
  assert.equal((await declare(length, randomBytes(11))).status, 413, 'a body past the length it declares');
  assert.equal((await head(url)).headers.get('upload-defer-length'), '1', 'still deferred after the refusals');
  assert.equal((await stack.introspect(id)).chunk_bytes, bytes.length, 'nothing kept from them');

  assert.equal((await declare(length, randomBytes(4))).status, 204);
  const known = await head(url);
  assert.equal(known.headers.get('upload-length'), String(length));
  assert.equal(known.headers.get('upload-defer-length'), null);
  const changed = await declare(length + 1, Buffer.alloc(0), bytes.length + 4);
  assert.equal(changed.status, 400);
  assert.match(await changed.text(), /cannot change/);

  const socket = await openSocket(stack.api, id);
  // The same length again (as a client retrying its final PATCH sends it) with the last bytes.
  assert.equal((await declare(length, randomBytes(6), bytes.length + 4)).status, 204);
  await socket.until(isStatus('uploaded'), 10_000, 'uploaded');
  socket.close();
  // Not a video: the origin refuses it and the chunks go.
  await stack.assertNoChunks(id, 30_000);
});

test('a zero-byte final PATCH with Upload-Length completes a deferred upload', async () => {
  const url = await createDeferred();
  const id = sessionId(url);
  for (let at = 0; at < video.length; at += MAX_REQUEST) {
    assert.equal((await patch(url, video.subarray(at, at + MAX_REQUEST), at)).status, 204);
  }
  assert.equal((await stack.snapshot(id)).status, 'uploading', 'no length, so not complete');
  const socket = await openSocket(stack.api, id);
  const last = await patch(url, Buffer.alloc(0), video.length, { 'Upload-Length': String(video.length) });
  assert.equal(last.status, 204);
  assert.equal(last.headers.get('upload-offset'), String(video.length));
  await socket.until(isEvent('completed'), 60_000, 'completed');
  socket.close();
  await stack.assertNoChunks(id);
});

test('an idle deferred upload expires as any other: chunks purged, 410', async () => {
  const url = await createDeferred();
  const id = sessionId(url);
  assert.equal((await patch(url, randomBytes(100_000), 0)).status, 204);
  const socket = await openSocket(stack.api, id);
  await socket.until(isStatus('purged'), Number(TEST_VARS.IDLE_EXPIRY_MS) * 5, 'purged by the idle expiry');
  assert.equal((await head(url)).status, 410);
  const counts = await stack.introspect(id);
  assert.deepEqual([counts.chunk_rows, counts.event_rows], [0, 0]);
  socket.close();
});
