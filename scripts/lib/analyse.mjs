// `scripts/analyse [video] [--redis] [--locale fr]`: the main job end to end on this machine.
// Starts the stack, uploads through the edge with tus-js-client, follows the session on its
// WebSocket, prints the inventory by room, stops everything. Exit code 0 only on a result.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import * as tus from 'tus-js-client';
import { makeSample, removeSample } from './sample.mjs';
import { build, startStack } from './stack.mjs';

const args = process.argv.slice(2);
let file;
let redis = false;
let locale = 'fr';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--redis') redis = true;
  else if (args[i] === '--locale') locale = args[++i];
  else if (!args[i].startsWith('--') && !file) file = args[i];
  else {
    console.error('usage: scripts/analyse [path/to/video] [--redis] [--locale fr]');
    process.exit(2);
  }
}

const say = (line) => console.log(line);
const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
const TYPES = { '.mp4': 'video/mp4', '.m4v': 'video/mp4', '.mov': 'video/quicktime', '.webm': 'video/webm', '.mkv': 'video/x-matroska', '.3gp': 'video/3gpp' };

const generated = !file;
if (generated) {
  say('No video given: generating a 20 s sample with a French narration (ffmpeg + pico2wave)…');
  file = await makeSample({ seconds: 20, width: 1280, height: 720 });
}
/** A generated sample is ours to delete; a video the user gave is not. */
const forgetSample = () => (generated ? removeSample(file) : undefined);
const { size } = await stat(file);
say(`Video: ${file} (${mib(size)})`);

let stack;
try {
  await build(say);
  stack = await startStack({ redis, log: (l) => say(`stack: ${l}`) });
} catch (error) {
  say(`FAILED to start the stack: ${error.message}`);
  await forgetSample();
  process.exit(1);
}
let exitCode = 1;
const interrupted = async () => {
  await stack.stop();
  await forgetSample();
  process.exit(130);
};
process.on('SIGINT', interrupted);
process.on('SIGTERM', interrupted);

try {
  if (stack.analyser === 'local') say('Local analysis: OPENAI_API_KEY is not set, so the origin analyses the video itself; no frame or sound leaves this machine.');
  const result = await analyse(stack, file);
  printInventory(result);
  exitCode = 0;
} catch (error) {
  say(`FAILED: ${error.message}`);
} finally {
  await stack.stop();
  await forgetSample();
}
process.exit(exitCode);

async function analyse(stack, file) {
  const started = Date.now();
  let socket;
  let lastTenth = -1;
  const outcome = new Promise((resolve, reject) => {
    const upload = new tus.Upload(createReadStream(file), {
      endpoint: `${stack.api}/uploads`,
      chunkSize: 5 << 20,
      retryDelays: [500, 1000, 3000],
      metadata: { filename: path.basename(file), filetype: TYPES[path.extname(file).toLowerCase()] ?? 'video/mp4', locale },
      onUploadUrlAvailable: () => {
        socket = follow(stack, upload.url.split('/').pop(), resolve, reject);
      },
      onProgress: (sent, total) => {
        const tenth = Math.floor((sent / total) * 10);
        if (tenth > lastTenth) {
          lastTenth = tenth;
          say(`upload   ${String(tenth * 10).padStart(3)} %  ${mib(sent)} / ${mib(total)}`);
        }
      },
      onSuccess: () => say(`upload   done in ${((Date.now() - started) / 1000).toFixed(1)} s`),
      onError: reject,
    });
    upload.start();
  });
  const timeout = setTimeout(() => socket?.close(), 15 * 60_000);
  try {
    return await outcome;
  } finally {
    clearTimeout(timeout);
    socket?.close();
  }
}

/** The wait of a queued session in words, in the narration's language (French unless `en`). */
function queuedWords(locale, { since, position }, now) {
  const s = Math.max(1, Math.ceil((now - since) / 1000));
  const time = s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  if (locale.startsWith('en')) return `Queued for ${time}${position == null ? '' : ` (position ${position})`}…`;
  return `En file d'attente depuis ${time}${position == null ? '' : ` (position ${position})`}…`;
}

/** Follows the session's WebSocket until the result (or a final failure). */
function follow(stack, id, resolve, reject) {
  const ws = new WebSocket(`${stack.api.replace(/^http/, 'ws')}/sessions/${id}/ws`);
  let lastStatus;
  let lastStage;
  let queue = null;
  // While the origin is busy, the wait so far every 10 s.
  const ticker = setInterval(() => {
    if (lastStatus === 'queued' && queue) say(`queue    ${queuedWords(locale, queue, Date.now())}`);
  }, 10_000);
  ws.addEventListener('close', () => clearInterval(ticker));
  ws.addEventListener('message', (e) => {
    if (e.data === 'pong') return;
    const frame = JSON.parse(e.data);
    if (frame.type === 'snapshot') return;
    const event = frame.event;
    if (event.type === 'queued') {
      queue = event;
    } else if (event.type === 'status' && event.status !== lastStatus) {
      lastStatus = event.status;
      say(`session  ${event.status}${event.status === 'queued' && queue ? ` — ${queuedWords(locale, queue, Date.now())}` : ''}`);
    } else if (event.type === 'stage' && event.stage !== lastStage) {
      lastStage = event.stage;
      say(`origin   ${event.stage}`);
    } else if (event.type === 'completed') {
      resolve(event.result);
    } else if (event.type === 'failed') {
      reject(new Error(`${event.error.code}: ${event.error.message}${event.error.retryable ? ' (retryable)' : ''}`));
    }
  });
  ws.addEventListener('close', () => reject(new Error('the live channel closed before a result')));
  ws.addEventListener('error', () => reject(new Error('the live channel failed')));
  return ws;
}

function printInventory(result) {
  const inv = result.inventory;
  const m3 = (v) => v.toFixed(2).padStart(7);
  const line = '-'.repeat(72);
  say('');
  say(`Inventory${result.simulated ? ' (SIMULATED — no real model was called)' : ''}`);
  say(result.analyser === 'local'
    ? 'Analysed locally on the origin by its embedded object detector (nothing was sent to a third party).'
    : `Analysed by OpenAI-compatible models${result.simulated ? ' (the simulator)' : ''}.`);
  say(`video ${result.media.duration_s.toFixed(1)} s, ${result.media.frames_analysed} frames analysed, ` +
    `models ${result.vision_model} / ${result.transcription_model || 'no transcription'}, ${result.processing_ms} ms, ≈ ${result.cost.eur.toFixed(4)} €`);
  for (const room of inv.rooms) {
    say(line);
    say(`${room.room}`);
    say(`  ${'item'.padEnd(34)} ${'qty'.padStart(4)} ${'unit m³'.padStart(8)} ${'m³'.padStart(7)}  source`);
    for (const l of room.lines) {
      say(`  ${l.label.slice(0, 34).padEnd(34)} ${String(l.quantity).padStart(4)} ${l.unit_volume_m3.toFixed(2).padStart(8)} ${m3(l.volume_m3)}  ${l.source}`);
    }
    for (const note of room.notes) say(`  note: ${note}`);
    say(`  ${'subtotal'.padEnd(48)} ${m3(room.subtotal_m3)}`);
  }
  say(line);
  say(`${'Items'.padEnd(50)} ${String(inv.item_count).padStart(7)}`);
  say(`${'Subtotal'.padEnd(50)} ${m3(inv.subtotal_m3)} m³`);
  say(`${`Loading margin (${Math.round(inv.margin_ratio * 100)} %)`.padEnd(50)} ${m3(inv.margin_m3)} m³`);
  say(`${'TOTAL'.padEnd(50)} ${m3(inv.total_m3)} m³`);
  for (const w of inv.warnings) say(`warning: ${w.code}: ${w.message}`);
}
