// Load benchmark: N sessions at once (BENCH_SESSIONS, default 20,50,100) through the edge to 1
// and 2 origin replicas behind HAProxy sharing one redis-server (BENCH_REPLICAS, default 1,2),
// the simulator answering each model call after BENCH_LATENCY_MS (default 2000). Default edge
// and origin settings otherwise. Prints figures; asserts nothing about speed (the machine is
// shared and noisy).
//
// Per run: completed / failed, upload complete → result p50/p95, queue wait (time in `queued`
// when the edge reports it; otherwise upload complete → first origin stage), and per replica the
// peak RSS of the origin process and of its process group (origin + its ffmpeg children), sampled
// from /proc, beside the peak video bytes it held in memfds (the bytes in flight) and their ratio.
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import { sampleBytes } from '../../../scripts/lib/sample.mjs';
import { startStack } from '../../../scripts/lib/stack.mjs';
import { burst, count, memfds, memory, percentile } from '../support.mjs';

const list = (name, fallback) => (process.env[name] ?? fallback).split(',').map(Number);
const SESSIONS = list('BENCH_SESSIONS', '20,50,100');
const REPLICAS = list('BENCH_REPLICAS', '1,2');
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 2000);
const SECONDS = Number(process.env.BENCH_VIDEO_S ?? 12);
const say = (line) => console.log(line);
const MiB = 2 ** 20;
const s = (ms) => (ms === null || ms === undefined ? '–' : (ms / 1000).toFixed(1));

/** Resident bytes of every process in group `pgid` (the origin and the ffmpeg it runs). */
async function groupRss(pgid) {
  let total = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the command's closing parenthesis: state ppid pgrp …
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    total += (await memory(pid).catch(() => ({ rss: 0 }))).rss;
  }
  return total;
}

/** Samples each replica every 250 ms until stopped; resolves to peaks per replica. */
function sampler(replicas) {
  const peaks = replicas.map((r) => ({ name: r.name, rss: 0, group: 0, inFlight: 0, ratioAtPeak: null }));
  let on = true;
  const loop = (async () => {
    while (on) {
      await Promise.all(
        replicas.map(async (r, i) => {
          if (!r.pid) return;
          const [{ rss }, group, fds] = await Promise.all([memory(r.pid).catch(() => ({ rss: 0 })), groupRss(r.pid), memfds(r.pid)]);
          const p = peaks[i];
          const inFlight = fds.reduce((sum, f) => sum + f.bytes, 0);
          p.rss = Math.max(p.rss, rss);
          p.group = Math.max(p.group, group);
          p.inFlight = Math.max(p.inFlight, inFlight);
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return async () => {
    on = false;
    await loop;
    return peaks;
  };
}

async function runOne(stack, video, n) {
  await stack.simControl({ latency_ms: LATENCY_MS });
  const idle = await Promise.all(stack.origins.map((r) => memory(r.pid)));
  const stop = sampler(stack.origins);
  const started = performance.now();
  const records = await burst(stack.api, video, n, { chunkSize: 5 * MiB, timeoutMs: 20 * 60_000 });
  const wall = performance.now() - started;
  const peaks = await stop();
  const done = records.filter((r) => r.outcome === 'completed');
  const queued = records.some((r) => r.queued !== null);
  const waits = records.map((r) => (queued ? r.queued ?? 0 : r.firstStage));
  const servers = stack.haproxy ? (await stack.haproxy.stats()).filter((x) => x.pxname === 'origins_replicas') : [];
  return {
    n,
    replicas: stack.origins.length,
    completed: done.length,
    failed: count(records, 'failed'),
    other: n - done.length - count(records, 'failed'),
    failures: [...new Set(records.filter((r) => r.error).map((r) => r.error.code))].join(','),
    p50: percentile(done.map((r) => r.result), 50),
    p95: percentile(done.map((r) => r.result), 95),
    waitKind: queued ? 'queued' : 'to 1st stage',
    w50: percentile(waits, 50),
    w95: percentile(waits, 95),
    wall,
    peaks,
    idle,
    balance: servers.map((x) => `${x.svname}:${x.stot}`).join(' '),
  };
}

const video = await sampleBytes({ seconds: SECONDS });
say(`load benchmark — ${new Date().toISOString()}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
say(`video ${(video.length / MiB).toFixed(2)} MiB (${SECONDS} s, 640×360), simulator ${LATENCY_MS} ms per model call, default edge and origin settings`);
const rows = [];
for (const replicas of REPLICAS) {
  const stack = await startStack({ replicas, simulator: true });
  try {
    for (const n of SESSIONS) {
      const row = await runOne(stack, video, n);
      rows.push(row);
      say(`replicas ${replicas}, N ${n}: ${row.completed} completed, ${row.failed} failed${row.failures ? ` (${row.failures})` : ''}, ` +
        `${row.other} neither, wall ${s(row.wall)} s, forwards per replica ${row.balance}`);
    }
  } finally {
    await stack.stop();
  }
}

say('');
say('| replicas | N | completed | failed | upload→result p50 / p95 (s) | queue wait p50 / p95 (s) | wall (s) | per replica: peak RSS origin / +ffmpeg (MiB), peak bytes in flight (MiB), RSS ÷ in flight |');
say('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const per = r.peaks
    .map((p, i) => `${p.name}: ${(p.rss / MiB).toFixed(0)} / ${(p.group / MiB).toFixed(0)} (idle ${(r.idle[i].rss / MiB).toFixed(0)}), ` +
      `${(p.inFlight / MiB).toFixed(1)}, ${p.inFlight ? (p.rss / p.inFlight).toFixed(2) : '–'}`)
    .join('; ');
  say(`| ${r.replicas} | ${r.n} | ${r.completed} | ${r.failed + r.other} | ${s(r.p50)} / ${s(r.p95)} | ${s(r.w50)} / ${s(r.w95)} (${r.waitKind}) | ${s(r.wall)} | ${per} |`);
}
say(`load after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
