// What the edge tests share: a real tus client (tus-js-client), a real WebSocket client (Node's
// global WebSocket) that records every frame, raw tus requests for the refusal cases, and signed
// origin events (the HMAC canonical string of docs/PROTOCOL.md, computed independently here).
import { createHash, createHmac } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import * as tus from 'tus-js-client';

export const TUS = { 'Tus-Resumable': '1.0.0' };

let clients = 0;
/**
 * A fresh client address (RFC 2544's 198.18.0.0/15, reserved for benchmarks) for the
 * `CF-Connecting-IP` header. The edge rate limits creations per client address; `wrangler dev`,
 * unlike Cloudflare, keeps a client-sent value, so each upload a scenario makes comes from its
 * own simulated client and only gate.test.mjs, which tests the limit, meets it.
 */
export function testClient() {
  clients += 1;
  return `198.18.${(clients >> 8) & 255}.${clients & 255}`;
}
const b64 = (s) => Buffer.from(s).toString('base64');

export function metadata({ filename = 'move.mp4', filetype = 'video/mp4', locale = 'fr' } = {}) {
  return { filename, filetype, locale };
}

export function uploadMetadataHeader(meta = metadata()) {
  return Object.entries(meta)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',');
}

/** The session handle `{id}.{token}`: the last segment of an upload URL (a capability). */
export const sessionId = (url) => url.split('/').pop();
/** The bare Durable Object id inside a handle (what the origin's callback path carries). */
export const idOf = (handle) => handle.split('.')[0];

/**
 * Starts a tus-js-client upload of `data` (a Buffer) and returns { upload, url, done }:
 * `url` resolves when the upload URL is known, `done` when the upload succeeds.
 */
export function startUpload(api, data, { chunkSize = 1 << 20, uploadUrl, onProgress, meta = metadata(), retryDelays = [100, 300, 1000], headers = {} } = {}) {
  let urlKnown;
  const url = new Promise((resolve) => (urlKnown = resolve));
  let upload;
  const done = new Promise((resolve, reject) => {
    upload = new tus.Upload(data, {
      endpoint: `${api}/uploads`,
      uploadUrl,
      chunkSize,
      metadata: meta,
      retryDelays,
      headers: { 'CF-Connecting-IP': testClient(), ...headers },
      removeFingerprintOnSuccess: true,
      onUploadUrlAvailable: () => urlKnown(upload.url),
      onProgress,
      onSuccess: () => resolve(upload.url),
      onError: reject,
    });
    upload.start();
  });
  done.catch(() => {});
  return { upload, url, done };
}

/** Uploads `data` to the end and resolves to the session id. */
export async function upload(api, data, options) {
  const { done } = startUpload(api, data, options);
  return sessionId(await done);
}

/** A WebSocket on a session that keeps every frame; `until` waits for a frame matching. */
export async function openSocket(api, id) {
  const ws = new WebSocket(`${api.replace(/^http/, 'ws')}/sessions/${id}/ws`);
  const frames = [];
  const waiters = [];
  let closed = null;
  ws.addEventListener('message', (e) => {
    const frame = e.data === 'pong' ? 'pong' : JSON.parse(e.data);
    frames.push(frame);
    for (const w of [...waiters]) w.check();
  });
  ws.addEventListener('close', (e) => {
    closed = { code: e.code, reason: e.reason };
    for (const w of [...waiters]) w.check();
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve, { once: true });
    ws.addEventListener('error', () => reject(new Error(`WebSocket to ${id} failed`)), { once: true });
  });
  const socket = {
    ws,
    frames,
    get closed() {
      return closed;
    },
    /** Resolves with the first frame matching `predicate` (already received or future). */
    until(predicate, timeoutMs = 30_000, what = 'a matching frame') {
      return new Promise((resolve, reject) => {
        const waiter = {
          check() {
            const hit = frames.find((f) => f !== 'pong' && predicate(f));
            if (hit) finish(() => resolve(hit));
            else if (closed) finish(() => reject(new Error(`socket closed (${closed.code}) before ${what}`)));
          },
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(frames.map(brief))}`))),
          timeoutMs,
        );
        const finish = (fn) => {
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(waiter), 1);
          fn();
        };
        waiters.push(waiter);
        waiter.check();
      });
    },
    send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)),
    close() {
      if (!closed) ws.close();
    },
  };
  return socket;
}

/** A short description of a frame, for failure messages. */
export function brief(frame) {
  if (frame === 'pong') return 'pong';
  if (frame.type === 'snapshot') return `snapshot(${frame.snapshot.status},seq=${frame.snapshot.seq})`;
  const e = frame.event;
  return `${frame.seq}:${e.type}${e.status ? `=${e.status}` : ''}${e.stage ? `=${e.stage}` : ''}`;
}

export const isEvent = (type, extra = () => true) => (f) => f.type === 'event' && f.event.type === type && extra(f.event);
export const isStatus = (status) => isEvent('status', (e) => e.status === status);

/** The canonical string of docs/PROTOCOL.md § Signatures. */
export function canonical({ purpose, method, path, timestamp, length, metadata, extra = [] }) {
  return ['DODOLENS-HMAC-SHA256-V2', purpose, method, path, timestamp, length, metadata, ...extra.map(([n, v]) => `${n}:${v}`)].join('\n');
}

/**
 * Headers of a signed origin → edge event, as the origin sends them. `purpose` other than
 * `origin-event` makes a signature the edge must refuse (e.g. `webhook`, what the mover's
 * receiver sees).
 */
export function signedHeaders(secret, path, body, { timestamp = Math.floor(Date.now() / 1000), purpose = 'origin-event' } = {}) {
  const digest = createHash('sha256').update(body).digest('hex');
  const text = canonical({ purpose, method: 'POST', path, timestamp, length: Buffer.byteLength(body), metadata: digest });
  return {
    'content-type': 'application/json',
    'x-dodolens-timestamp': String(timestamp),
    'x-dodolens-metadata': digest,
    'x-dodolens-signature': createHmac('sha256', secret).update(text).digest('hex'),
  };
}

/** Creates an upload with raw tus requests (for the refusal cases) and returns its absolute URL
 * (the edge's Location is relative). */
export async function create(api, length, { meta = metadata(), headers = {} } = {}) {
  const res = await fetch(`${api}/uploads`, {
    method: 'POST',
    headers: {
      ...TUS,
      'CF-Connecting-IP': testClient(),
      'Upload-Length': String(length),
      'Upload-Metadata': uploadMetadataHeader(meta),
      ...headers,
    },
  });
  if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
  return new URL(res.headers.get('location'), api).href;
}

export function patch(url, body, offset, headers = {}, method = 'PATCH') {
  return fetch(url, {
    method,
    headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', ...headers },
    body,
  });
}

/** The SQLite files of every Durable Object in wrangler's local state under a stack's `dir`: one
 * per object that ever received a request. */
export async function durableObjectFiles(dir) {
  const root = path.join(dir, 'wrangler-state/v3/do');
  const files = [];
  for (const ns of await readdir(root).catch(() => [])) {
    for (const file of await readdir(path.join(root, ns))) {
      if (file.endsWith('.sqlite')) files.push(path.join(ns, file));
    }
  }
  return files.sort();
}
