// Forwarding while receiving (issue 13 §3) against the full local stack (wrangler dev, the real
// origin, the OpenAI simulator): a recording uploaded by tus-js-client from a Node stream with a
// deferred length, which the edge streams to the origin in ranges while the stream is still open.
// Streaming is an optimisation, so every scenario must end with the result whatever the origin
// did with the ranges:
// - the origin holds bytes before the final PATCH (its answers, as the edge recorded them), and
//   the forward then finishes the stream: only the rest is sent (the origin's log);
// - an origin killed (SIGKILL) and restarted mid-recording has lost the live job; the session
//   still completes (resent from what the restarted origin holds), and runs once;
// - an origin that dropped the live job for idleness (DODOLENS_STREAM_IDLE_MS, short here)
//   answers the finish 409: the whole file goes at once as a new attempt.
// Every scenario ends with the residue check: no chunk row, the origin idle with no memfd open.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import * as tus from 'tus-js-client';
import { NARRATION } from '../../scripts/lib/sample.mjs';
import { startStack, TEST_VARS, waitFor } from '../../scripts/lib/stack.mjs';
import { memfds } from '../load/support.mjs';
import { isEvent, isStatus, metadata, openSocket, sessionId, testClient } from './support.mjs';

const run = promisify(execFile);
const CHUNK = 256 << 10;
let stack;
let video;

/** A narrated 720p fragmented MP4 (what a recorder produces), a keyframe every 2 s, ~5 MB. */
async function recording(seconds = 16) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dodolens-stream-'));
  try {
    const speech = path.join(dir, 'narration.wav');
    await run('espeak-ng', ['-v', 'fr', '-s', '150', '-w', speech, NARRATION]);
    const file = path.join(dir, 'recording.mp4');
    await run('ffmpeg', [
      '-v', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25',
      '-i', speech,
      '-filter_complex', `[1:a]apad,atrim=0:${seconds}[a]`,
      '-map', '0:v', '-map', '[a]', '-t', String(seconds),
      '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '2500k', '-maxrate', '2500k', '-bufsize', '5000k',
      '-g', '50', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k',
      '-movflags', 'frag_keyframe+empty_moov+default_base_moof',
      file,
    ], { maxBuffer: 16 << 20 });
    return await readFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** An origin live job with no range for this long is dropped (the last scenario waits for it). */
const STREAM_IDLE_MS = 1500;

before(async () => {
  const [s, bytes] = await Promise.all([
    startStack({
      vars: TEST_VARS,
      simulator: true,
      originEnv: { DODOLENS_LOG_FORMAT: 'json', DODOLENS_STREAM_IDLE_MS: String(STREAM_IDLE_MS) },
    }),
    recording(),
  ]);
  stack = s;
  video = bytes;
  // tus-js-client's Node stream source stalls on a stream ending on a chunk boundary (#779).
  assert.notEqual(video.length % CHUNK, 0);
  assert.ok(video.length > 12 * CHUNK, `recording of ${video.length} bytes`);
});

after(async () => {
  await stack?.stop();
});

/** A tus-js-client upload of a Node stream with a deferred length, as the page records. */
function record() {
  const stream = new PassThrough();
  let urlKnown;
  const url = new Promise((resolve) => (urlKnown = resolve));
  const done = new Promise((resolve, reject) => {
    const upload = new tus.Upload(stream, {
      endpoint: `${stack.api}/uploads`,
      uploadLengthDeferred: true,
      chunkSize: CHUNK,
      metadata: metadata({ filename: 'visite.mp4' }),
      retryDelays: [100, 300, 1000],
      headers: { 'CF-Connecting-IP': testClient() },
      onUploadUrlAvailable: () => urlKnown(upload.url),
      onSuccess: () => resolve(upload.url),
      onError: reject,
    });
    upload.start();
  });
  done.catch(() => {});
  return { stream, done, id: url.then(sessionId) };
}

/** The session's stream once the range in flight (after at least `acked` held) has its answer. */
const answered = (id, what, acked = 0) =>
  waitFor(
    async () => {
      const { stream } = await stack.introspect(id);
      const settled = stream?.attempt && !stream.range && (stream.acked > acked || stream.abandoned);
      return settled && stream;
    },
    30_000,
    what,
  );

/** The fields of the origin's JSON log lines `message` about the session `id` (every run). */
function logged(message, id) {
  const job = id.slice(0, 12);
  return stack
    .originOutput()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line).fields;
      } catch {
        return undefined;
      }
    })
    .filter((f) => f?.message === message && f.job === job);
}

/** How the origin ran the session's job: [how, attempt, bytes it received for it]. */
const runs = (id) => [
  ...logged('live recording finished', id).map((f) => ['live', f.attempt, f.rest]),
  ...logged('video received', id).map((f) => ['whole', f.attempt, f.bytes]),
];

/** No chunk row at the edge; the origin runs nothing and holds no video. */
async function assertNoResidue(id) {
  await stack.assertNoChunks(id);
  await stack.originIdle();
  assert.deepEqual(await memfds(stack.origins[0].pid), [], 'no memfd left in the origin');
}

test('a recording is streamed while it is received, and the result arrives', async () => {
  const rec = record();
  const half = Math.floor(video.length / 2);
  rec.stream.write(video.subarray(0, half));
  const id = await rec.id;
  const socket = await openSocket(stack.api, id);
  const stream = await answered(id, 'a first range answered');
  const snapshot = await stack.snapshot(id);
  assert.equal(snapshot.upload.length, null, 'still receiving');
  assert.equal(stream.attempt, 1, 'the stream reserved the first job number');
  // The origin holds bytes before the final PATCH, and says so.
  assert.equal(stream.abandoned, false);
  assert.ok(stream.acked >= CHUNK && stream.acked <= snapshot.upload.offset, `origin holds ${stream.acked} of ${snapshot.upload.offset}`);
  rec.stream.end(video.subarray(half));
  await rec.done;
  const completed = await socket.until(isEvent('completed'), 60_000, 'completed');
  assert.ok(completed.event.result.inventory.rooms.length > 0);
  assert.equal((await stack.introspect(id)).stream, null, 'the stream is over');
  const [[how, attempt, bytes]] = runs(id);
  // The finish carried only what the ranges had not.
  assert.deepEqual([how, attempt], ['live', 1]);
  assert.ok(bytes <= video.length - stream.acked, `the finish sent ${bytes} of ${video.length} bytes`);
  socket.close();
  await assertNoResidue(id);
});

test('an origin killed and restarted mid-recording loses the live job; the session still completes', async () => {
  const rec = record();
  const third = Math.floor(video.length / 3);
  rec.stream.write(video.subarray(0, third));
  const id = await rec.id;
  const socket = await openSocket(stack.api, id);
  const before = await answered(id, 'a first range answered');
  await stack.killOrigin();
  await stack.startOrigin();
  rec.stream.write(video.subarray(third, 2 * third));
  // The restarted origin holds nothing (409 with offset 0): the edge sends it again from there.
  await answered(id, 'ranges to the restarted origin', before.acked);
  rec.stream.end(video.subarray(2 * third));
  await rec.done;
  const completed = await socket.until(isEvent('completed'), 60_000, 'completed');
  assert.ok(completed.event.result.inventory.rooms.length > 0);
  assert.equal(runs(id).length, 1, `the job ran once: ${JSON.stringify(runs(id))}`);
  socket.close();
  await assertNoResidue(id);
});

test('a live job the origin dropped meanwhile: the finish is refused 409 and the whole file goes as a new attempt', async () => {
  // Every whole chunk now; the last partial one (too small for a range) only with the end.
  const rest = video.length % CHUNK;
  const rec = record();
  rec.stream.write(video.subarray(0, video.length - rest));
  const id = await rec.id;
  const socket = await openSocket(stack.api, id);
  await waitFor(
    async () => {
      const { stream } = await stack.introspect(id);
      return stream && !stream.range && stream.acked === video.length - rest;
    },
    30_000,
    'the origin holding every committed byte',
  );
  await waitFor(() => logged('live job idle; dropped', id).length, STREAM_IDLE_MS * 10, 'the idle live job dropped');
  rec.stream.end(video.subarray(video.length - rest));
  await rec.done;
  const completed = await socket.until(isEvent('completed'), 60_000, 'completed');
  assert.ok(completed.event.result.inventory.rooms.length > 0);
  assert.deepEqual(runs(id), [['whole', 2, video.length]], 'the whole file, as the next attempt');
  socket.close();
  await assertNoResidue(id);
});

test('discarding a recording that streams cancels it at the origin: nothing left on either side', async () => {
  const rec = record();
  rec.stream.write(video.subarray(0, 4 * CHUNK + 1));
  const id = await rec.id;
  const socket = await openSocket(stack.api, id);
  await answered(id, 'a first range answered');
  const url = `${stack.api}/uploads/${id}`;
  const deleted = await fetch(url, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(deleted.status, 204);
  await socket.until(isStatus('purged'), 10_000, 'purged');
  socket.close();
  rec.stream.destroy();
  await assertNoResidue(id);
});
