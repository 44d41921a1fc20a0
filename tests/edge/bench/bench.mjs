// Edge benchmarks (BENCH_ONLY=upload,latency,pipeline selects parts), with the peers measured side by side in the same run. Prints figures; asserts
// nothing about speed (the machine is shared and noisy: compare ratios).
//   1. 80 MiB through tus-js-client (5 MiB and 1 MiB chunks): the edge (wrangler dev, DO SQLite
//      rows) vs @tus/server + FileStore.
//   2. Event → WebSocket client latency, 50 sessions connected: a signed origin event POSTed to
//      the edge vs an HTTP POST to a Socket.IO server that emits to a room.
//   Parts 1 and 2 measure the edge twice: through `wrangler dev`'s port, where wrangler's own
//   proxy (a second workerd process) relays every request and WebSocket frame, and directly at
//   the workerd that runs the Worker and its objects — what the peers are measured as (a client
//   talking straight to the server), and what production has (no dev proxy). The ratios are
//   computed for the direct path; the proxied figures are printed beside them.
//   3. Upload complete → first byte at the origin, → result on the WebSocket, for a 120 s
//      sample, with the simulator at zero latency (a byte-counting TCP tap sits in front of the
//      real origin).
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { io as ioClient } from 'socket.io-client';
import * as tus from 'tus-js-client';
import { makeSample } from '../../../scripts/lib/sample.mjs';
import { startStack, waitFor } from '../../../scripts/lib/stack.mjs';
import { freePort, startService } from '../../support/process.mjs';
import { idOf, metadata, openSocket, sessionId, signedHeaders, testClient, TUS, upload } from '../support.mjs';

const MiB = 1 << 20;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 500);
const SESSIONS = 50;
const ONLY = new Set((process.env.BENCH_ONLY ?? 'upload,latency,pipeline').split(','));
const here = import.meta.dirname;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x) => `${x.toFixed(2)} ms`;
const say = (line) => console.log(line);

function timedUpload(endpoint, data, chunkSize) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const up = new tus.Upload(data, {
      endpoint,
      chunkSize,
      retryDelays: [],
      headers: { 'CF-Connecting-IP': testClient() },
      metadata: metadata({ filename: 'bench.mp4' }),
      onSuccess: () => resolve({ ms: performance.now() - started, url: up.url }),
      onError: reject,
    });
    up.start();
  });
}

/** A TCP listener that accepts and never answers: forwards to it stay in flight. */
async function silentOrigin() {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(r);
    }),
  };
}

/** A TCP pass-through to `target` that timestamps the first and last request bytes of each connection. */
async function tap(target) {
  const [host, port] = target.replace('http://', '').split(':');
  const connections = [];
  const server = net.createServer((client) => {
    const conn = { first: null, last: null, bytes: 0 };
    connections.push(conn);
    const upstream = net.connect(Number(port), host);
    client.on('data', (d) => {
      const now = performance.now();
      conn.first ??= now;
      conn.last = now;
      conn.bytes += d.length;
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, connections, close: () => new Promise((r) => server.close(r)) };
}

/**
 * The URL of the workerd that runs the Worker itself, behind wrangler dev's proxy: the other
 * workerd listener, besides the proxy's public port, that answers the edge's health route.
 * `null` when it cannot be found (then only the proxied figures are printed).
 */
async function directUrl(stack) {
  const listing = await new Promise((resolve) =>
    execFile('ss', ['-ltnpH'], (error, stdout) => resolve(error ? '' : stdout)),
  );
  const proxyPort = new URL(stack.edgeUrl).port;
  for (const [, port] of listing.matchAll(/127\.0\.0\.1:(\d+)\s.*"workerd"/g)) {
    if (port === proxyPort) continue;
    const url = `http://127.0.0.1:${port}`;
    try {
      const res = await fetch(`${url}/api/dodo-lens/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok && (await res.json()).service === 'dodolens-edge') return url;
    } catch {
      // Another of workerd's listeners (inspector, loopback): not the Worker.
    }
  }
  return null;
}

/** The edge's targets: through wrangler dev's proxy, and direct when found. */
function edgeTargets(stack) {
  const targets = [{ name: 'via wrangler proxy', edgeUrl: stack.edgeUrl }];
  if (stack.directUrl) targets.push({ name: 'direct to workerd', edgeUrl: stack.directUrl });
  return targets.map((t) => ({ ...t, api: `${t.edgeUrl}/api/dodo-lens` }));
}

async function uploadThroughput(stack) {
  say('\n## 1. 80 MiB with tus-js-client: edge (wrangler dev + DO SQLite) vs @tus/server + FileStore');
  const data = randomBytes(80 * MiB);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dodolens-tus-peer-'));
  const peer = await startService('tus peer', process.execPath, [path.join(here, 'peers.mjs'), 'tus', dir], { ready: /listening on (\d+)/ });
  try {
    const peerEndpoint = `http://127.0.0.1:${peer.match[1]}/files`;
    const targets = edgeTargets(stack);
    for (const chunk of [5 * MiB, 1 * MiB]) {
      const edge = targets.map(() => []);
      const other = [];
      for (let i = 0; i < RUNS; i++) {
        for (const [t, target] of targets.entries()) {
          const e = await timedUpload(`${target.api}/uploads`, data, chunk);
          edge[t].push(e.ms);
          // Terminate at once: the benchmark measures intake, not the (silent) origin.
          await fetch(e.url, { method: 'DELETE', headers: TUS });
          await stack.assertNoChunks(sessionId(e.url));
        }
        other.push((await timedUpload(peerEndpoint, data, chunk)).ms);
        await rm(dir, { recursive: true, force: true });
      }
      const rate = (t) => (80 / (t / 1000)).toFixed(0);
      const p = median(other);
      say(`chunks ${chunk / MiB} MiB: @tus/server ${rate(p)} MiB/s (median ${(p / 1000).toFixed(2)} s of ${RUNS})`);
      for (const [t, target] of targets.entries()) {
        const e = median(edge[t]);
        say(`  edge ${target.name.padEnd(18)} ${rate(e)} MiB/s (${(e / 1000).toFixed(2)} s); edge/peer = ${(p / e).toFixed(2)}×`);
      }
    }
  } finally {
    await peer.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function eventLatency(stack) {
  say(`\n## 2. Event → WebSocket client, ${SESSIONS} sessions connected, ${EVENTS} events one at a time`);
  // Sessions whose forward is in flight accept origin events, exactly as during processing.
  const ids = [];
  for (let i = 0; i < SESSIONS; i++) ids.push(await upload(stack.api, randomBytes(1024)));
  await waitFor(async () => (await Promise.all(ids.map((id) => stack.snapshot(id)))).every((s) => s.status === 'forwarding'), 30_000, 'forwarding');
  let sockets = [];

  /** One event to session i's socket through `target`: POST sent → frame received. */
  const edgeSend = (target) => async (i) => {
    const id = ids[i % SESSIONS];
    const fraction = (i % 1000) / 1000 + 0.0001;
    const body = JSON.stringify({ attempt: 1, event: { type: 'progress', stage: 'analysing', fraction } });
    const p = `/internal/sessions/${idOf(id)}/events`;
    const headers = signedHeaders(stack.secret, p, body);
    const socket = sockets[i % SESSIONS];
    const t0 = performance.now();
    const seen = socket.until((f) => f.type === 'event' && f.event.type === 'progress' && Math.abs(f.event.fraction - fraction) < 1e-6 && !f.counted, 10_000);
    const res = await fetch(`${target.edgeUrl}${p}`, { method: 'POST', headers, body });
    if (res.status !== 204) throw new Error(`event: ${res.status}`);
    const frame = await seen;
    frame.counted = true;
    return performance.now() - t0;
  };

  const peer = await startService('socket.io peer', process.execPath, [path.join(here, 'peers.mjs'), 'socketio'], { ready: /listening on (\d+)/ });
  const peerUrl = `http://127.0.0.1:${peer.match[1]}`;
  const clients = await Promise.all(
    ids.map((_, i) => new Promise((resolve, reject) => {
      const c = ioClient(peerUrl, { transports: ['websocket'], query: { room: `r${i}` }, forceNew: true });
      c.on('connect', () => resolve(c));
      c.on('connect_error', reject);
    })),
  );
  const peerSend = async (i) => {
    const c = clients[i % SESSIONS];
    const fraction = (i % 1000) / 1000 + 0.0001;
    const t0 = performance.now();
    const seen = new Promise((resolve) => {
      const on = (e) => {
        if (Math.abs(e.fraction - fraction) < 1e-6) {
          c.off('event', on);
          resolve();
        }
      };
      c.on('event', on);
    });
    const res = await fetch(`${peerUrl}/emit/r${i % SESSIONS}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'progress', stage: 'analysing', fraction }),
    });
    if (res.status !== 204) throw new Error(`peer emit: ${res.status}`);
    await seen;
    return performance.now() - t0;
  };

  try {
    const measure = async (send) => {
      for (let i = 0; i < SESSIONS; i++) await send(i);
      const out = [];
      for (let i = 0; i < EVENTS; i++) out.push(await send(i));
      return out;
    };
    const line = (name, xs) => `${name.padEnd(48)}: p50 ${ms(pct(xs, 50))}, p99 ${ms(pct(xs, 99))}, mean ${ms(xs.reduce((a, b) => a + b, 0) / xs.length)}`;
    const other = await measure(peerSend);
    say(line('Socket.IO (POST → emit to room)', other));
    for (const target of edgeTargets(stack)) {
      // Each target gets its own sockets, and only those: a broadcast reaches one socket.
      sockets = await Promise.all(ids.map((id) => openSocket(target.api, id)));
      const edge = await measure(edgeSend(target));
      for (const s of sockets) s.close();
      sockets = [];
      say(line(`edge ${target.name} (POST → Worker → DO → WS)`, edge));
      say(`  p99 edge/Socket.IO = ${(pct(edge, 99) / pct(other, 99)).toFixed(2)}× (goal ≤ 2×), p50 ${(pct(edge, 50) / pct(other, 50)).toFixed(2)}×`);
    }
  } finally {
    for (const c of clients) c.close();
    await peer.stop();
    for (const s of sockets) s.close();
    for (const id of ids) await fetch(`${stack.api}/uploads/${id}`, { method: 'DELETE', headers: TUS });
    for (const id of ids) await stack.assertNoChunks(id);
  }
}

async function pipelineLatency() {
  say('\n## 3. 120 s sample (1280×720), simulator at zero latency: upload complete → origin → result');
  const video = await readFile(await makeSample({ seconds: 120, width: 1280, height: 720 }));
  // The edge forwards to a byte-counting tap in front of the real origin.
  const originAddr = `127.0.0.1:${await freePort()}`;
  const tapped = await tap(`http://${originAddr}`);
  const viaTap = await startStack({ simulator: true, originAddr, vars: { ORIGIN_URL: tapped.url } });
  try {
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      tapped.connections.length = 0;
      let id;
      const done = new Promise((resolve, reject) => {
        const up = new tus.Upload(video, {
          endpoint: `${viaTap.api}/uploads`,
          chunkSize: 5 * MiB,
          retryDelays: [],
          headers: { 'CF-Connecting-IP': testClient() },
          metadata: metadata({ filename: 'sample-120s.mp4' }),
          onUploadUrlAvailable: () => (id = sessionId(up.url)),
          onSuccess: () => resolve(performance.now()),
          onError: reject,
        });
        up.start();
      });
      const uploaded = await done;
      const socket = await openSocket(viaTap.api, id);
      const completed = await socket.until((f) => f.type === 'event' && f.event.type === 'completed', 120_000, 'completed');
      const resultAt = performance.now();
      socket.close();
      const conn = tapped.connections.find((c) => c.bytes >= video.length);
      runs.push({
        firstByte: conn.first - uploaded,
        streamed: conn.last - conn.first,
        result: resultAt - uploaded,
        processing: completed.event.result.processing_ms,
      });
      await viaTap.assertNoChunks(id);
    }
    const mb = (video.length / MiB).toFixed(1);
    for (const r of runs) {
      say(`${mb} MiB: first byte at origin ${ms(r.firstByte)} after upload complete; forward streamed in ${ms(r.streamed)} ` +
        `(${(video.length / MiB / (r.streamed / 1000)).toFixed(0)} MiB/s); result on the WebSocket ${ms(r.result)} after upload complete ` +
        `(origin processing ${r.processing} ms; goal ≤ 3000 ms)`);
    }
  } finally {
    await viaTap.stop();
    await tapped.close();
  }
}

const silent = await silentOrigin();
const stack = await startStack({ simulator: true, vars: { ORIGIN_URL: silent.url, WATCHDOG_MS: '600000' } });
try {
  say(`edge benchmark — ${new Date().toISOString()}, ${os.cpus().length} CPUs, Node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  stack.directUrl = await directUrl(stack);
  say(stack.directUrl ? `edge: wrangler dev at ${stack.edgeUrl}, its Worker's workerd at ${stack.directUrl}` : 'edge: the Worker\'s own workerd port was not found; proxied figures only');
  if (ONLY.has('upload')) await uploadThroughput(stack);
  if (ONLY.has('latency')) await eventLatency(stack);
} finally {
  await stack.stop();
  await silent.close();
}
if (ONLY.has('pipeline')) await pipelineLatency();
