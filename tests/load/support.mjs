// What the load scenarios and the load benchmark share: many sessions at once through the edge
// (real tus-js-client uploads, one WebSocket each, timestamps on every frame), and the residue
// and accounting checks that read the real processes — the origins' logs, /proc, redis-cli.
import { execFile } from 'node:child_process';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { waitFor } from '../../scripts/lib/stack.mjs';
import { sessionId, startUpload } from '../edge/support.mjs';

const run = promisify(execFile);

/**
 * Follows one session's WebSocket, stamping every frame with its arrival time, until the
 * session ends: `completed`, `failed` (any failure counts: a session that must retry by hand has
 * failed its user) or purged. If the socket closes early, the snapshot route finishes the job.
 */
function follow(api, id, deadline) {
  const frames = [];
  const ws = new WebSocket(`${api.replace(/^http/, 'ws')}/sessions/${id}/ws`);
  let close;
  const ended = new Promise((resolve) => {
    const finish = (how) => {
      clearTimeout(timer);
      ws.close();
      resolve(how);
    };
    const timer = setTimeout(() => finish({ outcome: 'timeout' }), Math.max(0, deadline - Date.now()));
    close = () => finish({ outcome: 'closed' });
    ws.addEventListener('message', (e) => {
      if (e.data === 'pong') return;
      const frame = JSON.parse(e.data);
      frames.push({ at: performance.now(), frame });
      const event = frame.type === 'event' ? frame.event : null;
      const status = frame.type === 'snapshot' ? frame.snapshot.status : event?.type === 'status' ? event.status : null;
      if (event?.type === 'completed' || status === 'completed') finish({ outcome: 'completed' });
      else if (event?.type === 'failed') finish({ outcome: 'failed', error: event.error });
      else if (status === 'purged') finish({ outcome: 'purged' });
    });
    ws.addEventListener('close', () => finish({ outcome: 'closed' }));
  });
  return { frames, ended, close: () => close() };
}

/** After an early close: polls the snapshot until the session is final or the deadline passes. */
async function settleBySnapshot(api, id, deadline) {
  for (;;) {
    const res = await fetch(`${api}/sessions/${id}`).catch(() => null);
    if (res?.status === 410) return { outcome: 'purged' };
    const snap = res?.ok ? await res.json() : null;
    if (snap?.status === 'completed') return { outcome: 'completed' };
    if (snap?.status === 'failed') return { outcome: 'failed', error: snap.error };
    if (Date.now() > deadline) return { outcome: 'timeout', status: snap?.status };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Milliseconds spent in `queued` (from each `queued` status to the next other status). */
function queuedMs(frames) {
  let total = 0;
  let since = null;
  for (const { at, frame } of frames) {
    const status = frame.type === 'event' && frame.event.type === 'status' ? frame.event.status : null;
    if (!status) continue;
    if (status === 'queued') since ??= at;
    else if (since !== null) {
      total += at - since;
      since = null;
    }
  }
  return { total, seen: frames.some(({ frame }) => frame.type === 'event' && frame.event.status === 'queued') };
}

/**
 * Starts `n` sessions at once, each uploading `video` (a Buffer) through the edge, and resolves
 * once every one has ended or `timeoutMs` passed. Each record: id, outcome, error, and times in
 * ms from its upload's completion: firstStage (the first origin stage), result; queued (time in
 * the `queued` status, when the edge has one); the frames. `live` receives { id, frames } of each
 * session as soon as its upload URL is known, for scenarios that act at a given stage.
 */
export async function burst(api, video, n, { timeoutMs = 10 * 60_000, chunkSize = 1 << 20, onEnd = () => {}, live = [] } = {}) {
  const deadline = Date.now() + timeoutMs;
  const one = async () => {
    const up = startUpload(api, video, { chunkSize, retryDelays: [200, 500, 1000, 2000, 4000] });
    const id = sessionId(await up.url);
    const followed = follow(api, id, deadline);
    live.push({ id, frames: followed.frames });
    try {
      await up.done;
    } catch (error) {
      followed.close();
      const record = { id, outcome: 'upload failed', error: { code: error.message }, result: null, firstStage: null, queued: null, frames: followed.frames };
      onEnd(record);
      return record;
    }
    const uploadedAt = performance.now();
    let end = await followed.ended;
    if (end.outcome === 'closed' || end.outcome === 'timeout') end = await settleBySnapshot(api, id, deadline);
    const endedAt = performance.now();
    const stage = followed.frames.find(({ frame }) => frame.type === 'event' && frame.event.type === 'stage');
    const queued = queuedMs(followed.frames);
    const record = {
      id,
      ...end,
      result: endedAt - uploadedAt,
      firstStage: stage ? stage.at - uploadedAt : null,
      queued: queued.seen ? queued.total : null,
      frames: followed.frames,
    };
    onEnd(record);
    return record;
  };
  return Promise.all(Array.from({ length: n }, one));
}

/** True once session `s` (from `live`) has seen an origin stage in `stages`. */
export const reached = (s, stages) => s.frames.some(({ frame }) => frame.type === 'event' && frame.event.type === 'stage' && stages.includes(frame.event.stage));

/** The stages during which a job waits on the models. */
export const MODEL_STAGES = ['transcribing', 'analysing'];

export const count = (records, outcome) => records.filter((r) => r.outcome === outcome).length;

export function percentile(xs, p) {
  const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : null;
}

/** One line per outcome that is not `completed`: the id prefix and what happened. */
export const describeFailures = (records) =>
  records
    .filter((r) => r.outcome !== 'completed')
    .map((r) => `${r.id.slice(0, 12)} ${r.outcome}${r.error ? ` ${r.error.code}${r.error.retryable ? ' (retryable)' : ''}` : ''}${r.status ? ` in ${r.status}` : ''}`)
    .join('\n');

/**
 * How many times each (job, attempt) pair started running, across all replicas and restarts,
 * from the origins' JSON logs (DODOLENS_LOG_FORMAT=json): the `video received` line is written
 * once per job run, right before the pipeline starts. Keys are `job:attempt` (job = id prefix).
 */
export function jobRuns(outputs) {
  const runs = new Map();
  for (const line of outputs.join('\n').split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (entry.fields?.message !== 'video received') continue;
    const key = `${entry.fields.job}:${entry.fields.attempt}`;
    runs.set(key, (runs.get(key) ?? 0) + 1);
  }
  return runs;
}

/** A replica's Prometheus text, from its operator listener (the public port has no /metrics). */
export async function metrics(replica) {
  return (await fetch(`${replica.opsUrl}/metrics`)).text();
}

/** A replica's jobs_in_flight gauge. */
export const inFlight = async (replica) => Number((await metrics(replica)).match(/^dodolens_jobs_in_flight (\d+)/m)?.[1] ?? 0);

/** Open memfds of process `pid` ({ fd, name, bytes }): the origin keeps each video in one. */
export async function memfds(pid) {
  const dir = `/proc/${pid}/fd`;
  const out = [];
  for (const fd of await readdir(dir).catch(() => [])) {
    const target = await readlink(`${dir}/${fd}`).catch(() => '');
    if (!target.startsWith('/memfd:')) continue;
    const bytes = await stat(`${dir}/${fd}`).then((s) => s.size, () => 0);
    out.push({ fd, name: target, bytes });
  }
  return out;
}

/** VmRSS and VmHWM (peak) of `pid` in bytes, from /proc/PID/status. */
export async function memory(pid) {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (name) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

const redisArgs = (url) => {
  const { hostname, port, pathname } = new URL(url);
  return ['-h', hostname, '-p', port, '-n', pathname.slice(1) || '0'];
};

// For each key: its type, its TTL in ms (-1 = none, -2 = gone) and a size-or-value (a string's
// value, a sorted set's or hash's cardinality).
/** The model budget's window (origin/src/model_budget.rs: requests and tokens per minute). */
const MODEL_BUDGET_WINDOW_MS = 60_000;

const DESCRIBE = `local out = {}
for _, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k).ok
  local v = ''
  if t == 'string' then v = redis.call('GET', k)
  elseif t == 'zset' then v = tostring(redis.call('ZCARD', k))
  elseif t == 'hash' then v = tostring(redis.call('HLEN', k)) end
  table.insert(out, t) table.insert(out, tostring(redis.call('PTTL', k))) table.insert(out, v)
end
return out`;

/**
 * Every key in Redis with its type, TTL (ms; -1 = none) and value or size — the residue a
 * scenario leaves behind. Keys come from SCAN (redis-cli --scan), never KEYS.
 */
export async function redisKeys(url) {
  const { stdout } = await run('redis-cli', [...redisArgs(url), '--scan']);
  const keys = stdout.split('\n').filter(Boolean);
  if (!keys.length) return [];
  const described = (await run('redis-cli', [...redisArgs(url), 'EVAL', DESCRIBE, String(keys.length), ...keys])).stdout.split('\n');
  return keys
    .map((key, i) => {
      const [type, ttl, value] = described.slice(i * 3, i * 3 + 3);
      return { key, type, ttl: Number(ttl), value, size: type === 'string' ? null : Number(value) };
    })
    .filter((k) => k.ttl !== -2);
}

/**
 * The end-of-scenario residue check, waiting (up to `timeoutMs`) for the state to settle:
 * no chunk row at the edge for any session; when `redisUrl`: no key without a TTL, no job still
 * marked running, no pending outbox or slot entry; the model budget's sliding window may still
 * hold the last minute's reservations (no video, no result; each expires with the window, so its
 * key's TTL must be at most a minute); for each live origin pid: no open memfd.
 * Resolves to a description of what remains ('' when clean).
 */
export async function residue({ stack, ids, pids = [], timeoutMs = 30_000 }) {
  const problems = async () => {
    const found = [];
    for (const id of ids) {
      const rows = (await stack.introspect(id)).chunk_rows;
      if (rows > 0) found.push(`edge: ${rows} chunk rows for ${id.slice(0, 12)}`);
    }
    if (stack.redisUrl) {
      for (const k of await redisKeys(stack.redisUrl)) {
        if (k.ttl === -1) found.push(`redis: ${k.key} has no TTL`);
        if (k.type === 'string' && k.value.startsWith('running:')) found.push(`redis: ${k.key} = ${k.value}`);
        const lastMinute = k.key.endsWith(':model-budget') && k.ttl > 0 && k.ttl <= MODEL_BUDGET_WINDOW_MS;
        if (k.type !== 'string' && k.size > 0 && !lastMinute) found.push(`redis: ${k.key} holds ${k.size} entries`);
      }
    }
    for (const pid of pids.filter(Boolean)) {
      const open = await memfds(pid);
      if (open.length) found.push(`origin pid ${pid}: ${open.length} open memfds`);
    }
    return found;
  };
  let last = [];
  try {
    await waitFor(async () => (last = await problems()).length === 0, timeoutMs, 'no residue');
    return '';
  } catch {
    return last.join('\n');
  }
}
