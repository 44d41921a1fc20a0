// The edge with its production settings (wrangler.toml vars, DEV_INTROSPECTION off) and the
// origin on Redis: what a browser needs (CORS preflight, health), no dev-only route, and a full
// job whose chunks are gone from wrangler's local Durable Object state afterwards (read
// directly from the SQLite files, since introspection is off).
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, test } from 'node:test';
import { sampleBytes } from '../../scripts/lib/sample.mjs';
import { startStack, waitFor } from '../../scripts/lib/stack.mjs';
import { isEvent, openSocket, startUpload, sessionId } from './support.mjs';

let stack;
let video;

before(async () => {
  const [s, bytes] = await Promise.all([
    startStack({ redis: true, simulator: true, vars: { DEV_INTROSPECTION: '0', DEV_DRAIN_REFUSED_BODIES: '0' } }),
    sampleBytes({ seconds: 6 }),
  ]);
  stack = s;
  video = bytes;
});

after(async () => {
  await stack?.stop();
});

/** Chunk rows across every session object in wrangler's local state. */
async function chunkRowsOnDisk() {
  const root = path.join(stack.dir, 'wrangler-state/v3/do');
  let rows = 0;
  for (const ns of await readdir(root)) {
    for (const file of (await readdir(path.join(root, ns))).filter((f) => f.endsWith('.sqlite'))) {
      const db = new DatabaseSync(path.join(root, ns, file), { readOnly: true });
      try {
        const table = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'chunks'").get();
        if (table.n > 0) rows += db.prepare('SELECT count(*) AS n FROM chunks').get().n;
      } finally {
        db.close();
      }
    }
  }
  return rows;
}

test('production settings: health, CORS preflight for tus, no introspection route', async () => {
  const health = await fetch(`${stack.api}/health`);
  assert.equal(health.status, 200);
  const preflight = await fetch(`${stack.api}/uploads`, {
    method: 'OPTIONS',
    headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'PATCH', 'Access-Control-Request-Headers': 'upload-offset,tus-resumable,content-type' },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
  assert.match(preflight.headers.get('access-control-allow-methods'), /PATCH/);
  assert.match(preflight.headers.get('access-control-allow-headers').toLowerCase(), /upload-offset/);
  assert.equal(preflight.headers.get('tus-version'), '1.0.0');
  const introspect = await fetch(`${stack.api}/dev/sessions/${'c'.repeat(64)}`);
  assert.equal(introspect.status, 404);
});

test('a job with the origin on Redis completes and leaves no chunk row in the local state', async () => {
  // Slow model answers keep the job running while the stored chunks are counted.
  await stack.simControl({ latency_ms: 1500 });
  const { url, done } = startUpload(stack.api, video);
  const id = sessionId(await url);
  const socket = await openSocket(stack.api, id);
  await done;
  assert.ok((await chunkRowsOnDisk()) > 0, 'chunks are stored while the job runs');
  await stack.simControl({ latency_ms: 0 });
  const completed = await socket.until(isEvent('completed'), 60_000, 'completed');
  assert.ok(completed.event.result.inventory.rooms.length > 0);
  socket.close();
  await waitFor(async () => (await chunkRowsOnDisk()) === 0, 15_000, 'no chunk row on disk');
});
