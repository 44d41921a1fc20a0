// Live capture vs record-then-upload: time from "stop" to the result (figures, not a test; the
// machine is shared and noisy — compare the ratios). The knobs (environment) are listed in `run`.
//
// A narrated sample (BENCH_SECONDS, default 120 s, BENCH_SIZE 1920x1080; the narration repeats
// every 20 s) encoded as a recorder would: fragmented MP4 (moov first, a fragment per keyframe, a
// keyframe every 2 s) at the page's capped bitrate (2.5 Mbit/s at 1080p), and the same at a
// phone camera's bitrate (12 Mbit/s). Every upload goes through a throttled uplink (each of
// BENCH_UPLINKS_MBIT, default 10 and 5 Mbit/s: a TCP proxy in front of the edge that paces the
// client's bytes), with tus-js-client, to the full local stack (wrangler dev, the origin with
// ffmpeg, the OpenAI simulator at the latencies: vision 4 s, transcription 1 s per 30 s of
// audio, directives 1 s).
//   live:   the capped recording fed to a deferred-length upload one timeslice (a second of
//           video) per second, as MediaRecorder hands it over; "stop" when the last second is
//           handed over.
//   record-then-upload: the whole file uploaded after "stop", at the capped and at the camera
//           bitrate.
// Printed per mode: bytes uploaded, stop → upload complete, stop → result, the model time (the
// simulator's latencies served after "stop", overlapping calls counted once: the model's share of
// the critical path), the rest (stop → result minus model time: upload, extraction, DodoLens'
// own work), the origin's processing time, the frames selected and their spread over the
// timeline (first and last frame time, largest gap; from the result's media.frame_times_s).
// Goal (issue 13): at 10 Mbit/s, live stop → result ≤ model time + 2 s, and at least 5× faster
// than record-then-upload of the camera-bitrate video.
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
const env = (name, fallback) => process.env[name] ?? fallback;
const SECONDS = Number(env('BENCH_SECONDS', 120));
const SIZE = env('BENCH_SIZE', '1920x1080');
const UPLINKS_MBIT = env('BENCH_UPLINKS_MBIT', '10,5').split(',').map(Number);
const CAPPED_KBIT = Number(env('BENCH_CAPPED_KBIT', 2500));
const CAMERA_KBIT = Number(env('BENCH_CAMERA_KBIT', 12000));
const MODES = env('BENCH_MODES', 'live,capped,camera').split(',');
const LATENCIES = {
  vision_latency_ms: Number(env('BENCH_VISION_MS', 4000)),
  transcription_ms_per_30s: Number(env('BENCH_TRANSCRIPTION_MS_PER_30S', 1000)),
  directives_latency_ms: Number(env('BENCH_DIRECTIVES_MS', 1000)),
};
const say = (...a) => console.log(...a);

/** The narration, then silence, 20 s long: looped, it speaks every 20 s. */
async function narration(dir) {
  const speech = path.join(dir, 'narration.wav');
  await run('espeak-ng', ['-v', 'fr', '-s', '150', '-w', speech, NARRATION]);
  const padded = path.join(dir, 'narration-20s.wav');
  await run('ffmpeg', ['-v', 'error', '-y', '-i', speech, '-af', 'apad=whole_dur=20', padded]);
  return padded;
}

/** A narrated fragmented MP4 at `kbit` kbit/s video, a keyframe every 2 s. */
async function sample(dir, speech, kbit) {
  const file = path.join(dir, `sample-${kbit}.mp4`);
  await run('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${SIZE}:rate=30`,
    '-stream_loop', '-1', '-i', speech,
    '-map', '0:v', '-map', '1:a', '-t', String(SECONDS),
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

/**
 * The simulator's latencies served between `from` and `to` (Unix ms), overlapping calls counted
 * once, in seconds.
 */
async function modelSeconds(stack, from, to) {
  const { delays } = await stack.simStats();
  const spans = delays
    .map((d) => [Math.max(d.start_unix_ms, from), Math.min(d.start_unix_ms + d.ms, to)])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (b > end) total += b - Math.max(a, end);
    end = Math.max(end, b);
  }
  return total / 1000;
}

/** What one upload gave: times after `stop` (performance.now() and Unix ms) and the result. */
async function measured(stack, url, bytes, stop, stopUnix, uploaded) {
  const snapshot = await result(stack, url);
  const resultS = (performance.now() - stop) / 1000;
  const modelS = await modelSeconds(stack, stopUnix, Date.now());
  return { bytes, uploadS: (uploaded - stop) / 1000, resultS, modelS, snapshot };
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
  const [stop, stopUnix] = [performance.now(), Date.now()];
  stream.end();
  const url = await done;
  return measured(stack, url, bytes.length, stop, stopUnix, performance.now());
}

async function recordThenUpload(stack, endpoint, bytes, name) {
  const [stop, stopUnix] = [performance.now(), Date.now()];
  const url = await tusUpload(endpoint, bytes, { deferred: false, name });
  return measured(stack, url, bytes.length, stop, stopUnix, performance.now());
}

/** "first–last s, largest gap g s" of the analysed frames' times. */
function spread(media) {
  const times = media.frame_times_s ?? [];
  if (times.length === 0) return 'n/a (no frame_times_s)';
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  const largest = Math.max(times[0], ...gaps, media.duration_s - times.at(-1));
  return `${times[0].toFixed(1)}–${times.at(-1).toFixed(1)} s of ${media.duration_s.toFixed(0)} s, largest gap ${largest.toFixed(1)} s`;
}

const mbitOf = (kbit) => (kbit / 1000).toFixed(1);

const dir = await mkdtemp(path.join(os.tmpdir(), 'dodolens-live-bench-'));
let stack;
let uplink;
try {
  say(`# Live capture vs record-then-upload: ${SECONDS} s of ${SIZE}, uplinks ${UPLINKS_MBIT.join(' and ')} Mbit/s, simulator ${JSON.stringify(LATENCIES)}`);
  const speech = await narration(dir);
  const [capped, camera] = await Promise.all([sample(dir, speech, CAPPED_KBIT), sample(dir, speech, CAMERA_KBIT)]);
  stack = await startStack({ simulator: true, vars: { FORWARD_BACKOFF_MS: '200' } });
  await stack.simControl(LATENCIES);
  const cappedBytes = await readFile(capped);
  const cameraBytes = await readFile(camera);
  say(`capped sample ${(await stat(capped)).size} B, camera sample ${(await stat(camera)).size} B\n`);
  say('| uplink | mode | bytes uploaded | stop → upload complete | stop → result | model time after stop | rest | origin processing | frames | spread |');
  say('|---|---|---|---|---|---|---|---|---|---|');
  const goals = [];
  for (const mbit of UPLINKS_MBIT) {
    uplink = await throttledUplink(Number(new URL(stack.edgeUrl).port), mbit);
    const endpoint = `http://127.0.0.1:${uplink.port}/api/dodo-lens/uploads`;
    const modes = {
      live: [`live capture (${mbitOf(CAPPED_KBIT)} Mbit/s, deferred length)`, () => live(stack, endpoint, cappedBytes)],
      capped: [`record, then upload (${mbitOf(CAPPED_KBIT)} Mbit/s)`, () => recordThenUpload(stack, endpoint, cappedBytes, 'capped.mp4')],
      camera: [`record, then upload (${mbitOf(CAMERA_KBIT)} Mbit/s camera)`, () => recordThenUpload(stack, endpoint, cameraBytes, 'camera.mp4')],
    };
    const rows = {};
    for (const mode of MODES) {
      const [label, measure] = modes[mode];
      const r = await measure();
      rows[mode] = r;
      const { media, processing_ms: processingMs } = r.snapshot.result;
      say(`| ${mbit} Mbit/s | ${label} | ${r.bytes} | ${r.uploadS.toFixed(1)} s | ${r.resultS.toFixed(1)} s | ${r.modelS.toFixed(1)} s | ${(r.resultS - r.modelS).toFixed(1)} s | ${(processingMs / 1000).toFixed(1)} s | ${media.frames_analysed} | ${spread(media)} |`);
    }
    uplink.close();
    uplink = undefined;
    if (rows.live) {
      const { resultS, modelS } = rows.live;
      let line = `${mbit} Mbit/s: live stop → result ${resultS.toFixed(1)} s vs model time + 2 s = ${(modelS + 2).toFixed(1)} s: ${resultS <= modelS + 2 ? 'met' : 'not met'}`;
      if (rows.camera) {
        const ratio = rows.camera.resultS / resultS;
        line += `; record-then-upload (camera) / live: ${ratio.toFixed(1)}× (goal ≥ 5×: ${ratio >= 5 ? 'met' : 'not met'})`;
      }
      goals.push(line);
    }
  }
  say(`\n${goals.join('\n')}`);
} finally {
  uplink?.close();
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
}
