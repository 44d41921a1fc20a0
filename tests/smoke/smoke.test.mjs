// The smallest proof that the stack runs here: the origin binary and the edge under
// `wrangler dev` start on free ports, answer their health routes, and stop without leaving a
// process behind. Expects `cargo build -p dodolens-origin` and the edge build to have run
// (scripts/test does both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, groupAlive, startService } from '../support/process.mjs';

const root = path.resolve(import.meta.dirname, '../..');
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, 'target');

test('origin answers /healthz and stops cleanly', async () => {
  const port = await freePort();
  const origin = await startService('origin', path.join(targetDir, 'debug/dodolens-origin'), [], {
    env: {
      DODOLENS_BIND: `127.0.0.1:${port}`,
      DODOLENS_OPS_BIND: `127.0.0.1:${await freePort()}`,
      DODOLENS_SIGNING_SECRET: randomBytes(32).toString('hex'),
      // Never called by this test; the origin only needs to know where a model would be.
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
    },
    ready: /listening on (\S+)/,
  });
  try {
    const res = await fetch(`http://${origin.match[1]}/healthz`);
    assert.equal(res.status, 200);
  } finally {
    await origin.stop();
  }
  assert.equal(groupAlive(origin.pgid), false);
});

test('edge answers /api/dodo-lens/health under wrangler dev and stops cleanly', async () => {
  const port = await freePort();
  const inspector = await freePort();
  const state = await mkdtemp(path.join(os.tmpdir(), 'dodolens-smoke-'));
  const edge = await startService(
    'wrangler dev',
    'npx',
    ['wrangler', 'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector), '--persist-to', state],
    { cwd: root, env: { DODOLENS_EDGE_PREBUILT: '1' }, ready: /Ready on (http:\/\/\S+)/ },
  );
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/dodo-lens/health`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.ok, true);
  } finally {
    await edge.stop();
    await rm(state, { recursive: true, force: true });
  }
  assert.equal(groupAlive(edge.pgid), false);
});
