// Live capture vs record-then-upload: time from "stop" to the result (figures, not a test; the
// machine is shared and noisy — compare the ratios).
//
// A narrated sample (BENCH_SECONDS, default 60 s, 720p) encoded as a recorder would: fragmented MP4
// (moov first, a fragment per keyframe, a keyframe every 2 s) at the page's capped bitrate
// (1.5 Mbit/s), and the same at a phone camera's bitrate (12 Mbit/s). Every upload goes through a
// throttled uplink (BENCH_UPLINK_MBIT, default 10 Mbit/s: a TCP proxy in front of the edge that
// paces the client's bytes), with tus-js-client, to the full local stack (wrangler dev, the
// origin with ffmpeg, the OpenAI simulator with BENCH_MODEL_LATENCY_MS per call, default 2000).
//   live:   the capped recording fed to a deferred-length upload one second of video per second,
//           as MediaRecorder hands it over; "stop" when the last second is handed over.
//   record-then-upload: the whole file uploaded after "stop", at the capped and at the camera
//           bitrate.
// Printed per mode: bytes uploaded, stop → upload complete, stop → result.
// The origin still processes the whole file once it has it (forwarding while receiving is not
// built yet), so what live capture removes is the upload after the stop.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import * as tus from 'tus-js-client';
import { NARRATION } from '../../../scripts/lib/sample.mjs';
import { startStack, waitFor } from '../../../scripts/lib/stack.mjs';
import { metadata, testClient } from '../../edge/support.mjs';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const UPLINK_MBIT = Number(process.env.BENCH_UPLINK_MBIT ?? 10);
const MODEL_LATENCY_MS = Number(process.env.BENCH_MODEL_LATENCY_MS ?? 2000);
const CAPPED_KBIT = 1500;
const CAMERA_KBIT = 12000;
const say = (...a) => console.log(...a);

/** A narrated 720p fragmented MP4 at `kbit` kbit/s video, a keyframe every 2 s. */
async function sample(dir, kbit) {
  const speech = path.join(dir, 'narration.wav');
  await run('espeak-ng', ['-v', 'fr', '-s', '150', '-w', speech, NARRATION]);
  const file = path.join(dir, `sample-${kbit}.mp4`);
  await run('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
    '-i', speech,
    '-filter_complex', `[1:a]apad,atrim=0:${SECONDS}[a]`,
    '-map', '0:v', '-map', '[a]', '-t', String(SECONDS),
    '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', `${kbit}k`, '-maxrate', `${kbit}k`, '-bufsize', `${2 * kbit}k`,
    '-g', '60', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k',
    '-movflags', 'frag_keyframe+empty_moov+default_base_moof',
    file,
  ], { maxBuffer: 16 << 20 });
  return file;
}

/** A TCP proxy to `port` that paces client → server bytes at `mbit` Mbit/s (the uplink). */
async function throttledUplink(port, mbit) {
  const bytesPerMs = (mbit * 1e6) / 8 / 1000;
  let next = 0; // shared by every connection: one uplink
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.pipe(client);
    client.on('data', (data) => {
      client.pause();
      const now = performance.now();
      next = Math.max(next, now) + data.length / bytesPerMs;
      setTimeout(() => {
        upstream.write(data);
        client.resume();
      }, next - now);
    });
    client.on('end', () => upstream.end());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, close: () => server.close() };
}

/** Uploads `input` with tus-js-client through the uplink; resolves with the upload URL. */
function tusUpload(endpoint, input, { deferred, name }) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(input, {
      endpoint,
      chunkSize: deferred ? 256 << 10 : 8 << 20,
      uploadLengthDeferred: deferred,
      metadata: metadata({ filename: name }),
      retryDelays: [200, 1000],
      headers: { 'CF-Connecting-IP': testClient() },
      onSuccess: () => resolve(upload.url),
      onError: reject,
    });
    upload.start();
  });
}

async function result(stack, url) {
  const handle = url.split('/').pop();
  let snapshot;
  await waitFor(async () => {
    snapshot = await stack.snapshot(handle);
    return snapshot.status === 'completed' || snapshot.status === 'failed';
  }, 600_000, 'the result');
  if (snapshot.status !== 'completed') throw new Error(`${url}: ${JSON.stringify(snapshot.error)}`);
  await stack.assertNoChunks(handle);
  return snapshot;
}

/** Live: one second of the recording per second into a deferred-length upload. */
async function live(stack, endpoint, bytes) {
  const stream = new PassThrough();
  const done = tusUpload(endpoint, stream, { deferred: true, name: 'live.mp4' });
  const perSecond = Math.ceil(bytes.length / SECONDS);
  const started = performance.now();
  for (let at = 0, second = 1; at < bytes.length; at += perSecond, second++) {
    stream.write(bytes.subarray(at, at + perSecond));
    const wait = started + second * 1000 - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const stop = performance.now();
  stream.end();
  const url = await done;
  const uploaded = performance.now();
  const snapshot = await result(stack, url);
  return { bytes: bytes.length, uploadS: (uploaded - stop) / 1000, resultS: (performance.now() - stop) / 1000, snapshot };
}

async function recordThenUpload(stack, endpoint, bytes, name) {
  const stop = performance.now();
  const url = await tusUpload(endpoint, bytes, { deferred: false, name });
  const uploaded = performance.now();
  const snapshot = await result(stack, url);
  return { bytes: bytes.length, uploadS: (uploaded - stop) / 1000, resultS: (performance.now() - stop) / 1000, snapshot };
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'dodolens-live-bench-'));
let stack;
let uplink;
try {
  say(`# Live capture vs record-then-upload: ${SECONDS} s of 720p, uplink ${UPLINK_MBIT} Mbit/s, model calls ${MODEL_LATENCY_MS} ms`);
  const [capped, camera] = await Promise.all([sample(dir, CAPPED_KBIT), sample(dir, CAMERA_KBIT)]);
  stack = await startStack({ simulator: true, vars: { FORWARD_BACKOFF_MS: '200' } });
  await stack.simControl({ latency_ms: MODEL_LATENCY_MS });
  uplink = await throttledUplink(Number(new URL(stack.edgeUrl).port), UPLINK_MBIT);
  const endpoint = `http://127.0.0.1:${uplink.port}/api/dodo-lens/uploads`;
  const cappedBytes = await readFile(capped);
  const cameraBytes = await readFile(camera);
  say(`capped sample ${(await stat(capped)).size} B, camera sample ${(await stat(camera)).size} B\n`);
  const rows = [
    ['live capture (1.5 Mbit/s, deferred length)', await live(stack, endpoint, cappedBytes)],
    ['record, then upload (1.5 Mbit/s)', await recordThenUpload(stack, endpoint, cappedBytes, 'capped.mp4')],
    ['record, then upload (12 Mbit/s camera)', await recordThenUpload(stack, endpoint, cameraBytes, 'camera.mp4')],
  ];
  say('| mode | bytes uploaded | stop → upload complete | stop → result | frames analysed |');
  say('|---|---|---|---|---|');
  for (const [mode, r] of rows) {
    say(`| ${mode} | ${r.bytes} | ${r.uploadS.toFixed(1)} s | ${r.resultS.toFixed(1)} s | ${r.snapshot.result.media.frames_analysed} |`);
  }
  const [liveRow, , cameraRow] = rows.map(([, r]) => r);
  say(`\nrecord-then-upload (camera) / live capture, stop → result: ${(cameraRow.resultS / liveRow.resultS).toFixed(1)}×`);
} finally {
  uplink?.close();
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
}
