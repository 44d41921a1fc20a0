// The full local stack for the browser tests, plus the few calls the tests make beside the page
// (the session snapshot, the edge's dev introspection, the simulator's fault switch).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, startService } from '../../support/process.mjs';

const root = path.resolve(import.meta.dirname, '../../..');
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, 'target');

/** Polls `probe` until it returns something truthy, or fails after `timeoutMs`. */
export async function waitFor(probe, timeoutMs = 30_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startStack() {
  const services = [];
  const state = await mkdtemp(path.join(os.tmpdir(), 'dodolens-web-stack-'));
  const stopAll = async () => {
    for (const service of services.reverse()) await service.stop();
    await rm(state, { recursive: true, force: true });
  };
  try {
    const secret = randomBytes(32).toString('hex');
    const sim = await startService('openai-sim', path.join(targetDir, 'debug/dodolens-openai-sim'), ['--bind', '127.0.0.1:0'], {
      ready: /listening on (\S+)/,
    });
    services.push(sim);
    const simUrl = `http://${sim.match[1]}`;
    const origin = await startService('origin', path.join(targetDir, 'debug/dodolens-origin'), [], {
      env: {
        DODOLENS_BIND: '127.0.0.1:0',
        DODOLENS_SIGNING_SECRET: secret,
        OPENAI_BASE_URL: `${simUrl}/v1`,
        OPENAI_API_KEY: 'sk-test-simulator',
      },
      ready: /listening on (\S+)/,
    });
    services.push(origin);
    const port = await freePort();
    const inspector = await freePort();
    const vars = {
      ORIGIN_URL: `http://${origin.match[1]}`,
      DODOLENS_SIGNING_SECRET: secret,
      DEV_INTROSPECTION: '1',
      FORWARD_BACKOFF_MS: '200',
    };
    const edge = await startService(
      'wrangler dev',
      path.join(root, 'node_modules/.bin/wrangler'),
      [
        'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
        '--persist-to', path.join(state, 'wrangler'),
        ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
      ],
      { cwd: root, env: { DODOLENS_EDGE_PREBUILT: '1' }, ready: /Ready on (http:\/\/\S+)/ },
    );
    services.push(edge);
    const edgeUrl = `http://127.0.0.1:${port}`;
    return makeStack({ edgeUrl, simUrl, stop: stopAll });
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function makeStack({ edgeUrl, simUrl, stop }) {
  const api = `${edgeUrl}/api/dodo-lens`;
  const json = async (url, init) => {
    const response = await fetch(url, init);
    if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${response.status}`);
    return response.json();
  };
  const stack = {
    edgeUrl,
    simUrl,
    stop,
    waitFor,
    snapshot: (id) => json(`${api}/sessions/${id}`),
    introspect: (id) => json(`${api}/dev/sessions/${id}`),
    async simulatorFault(fault) {
      await json(`${simUrl}/__sim/control`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ fault, latency_ms: 0 }),
      });
    },
    simulatorStats: () => json(`${simUrl}/__sim/stats`),
    /** The session's video is gone from the edge once processing ended (success or failure). */
    async assertNoChunks(id) {
      await waitFor(async () => (await stack.introspect(id)).chunk_rows === 0, 15_000, `no chunk rows for ${id}`);
    },
  };
  return stack;
}
