// A real HAProxy (Debian's, installed by scripts/bootstrap) in front of local services, started
// by the stack like redis-server: config generated into the stack's run directory, free ports,
// its own process group, an admin socket for the runtime API (take a server out, read counters).
//
// Two roles, each optional:
//   - `origins`: the edge's ORIGIN_URL. Round-robin over the replicas (a live recording's ranges
//     and finish: hashed on the session id, so they meet its live job), health checks on each
//     replica's health route, and retries that are safe for a forward: a connection that fails
//     before a byte was sent is retried on another replica (`retry-on conn-failure` +
//     `option redispatch`); a forward whose replica dies mid-body is NOT replayed by HAProxy (it
//     cannot, the body streamed through) — the edge sees a 502 and retries the whole forward.
//   - `callbacks`: the edge's public URL for origin events (EDGE_PUBLIC_URL), so a test can make
//     the edge's callback path refuse (server disabled through the runtime API → 503).
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startService } from '../../tests/support/process.mjs';

export const ORIGINS = 'origins';
export const CALLBACKS = 'edge_callbacks';

/** `host:port` of a `http://host:port` URL. */
const hostPort = (url) => new URL(url).host;

/**
 * The configuration text. origins: [{ name, url, healthPath }]; callbacks: the edge's URL.
 * Each listed role gets a frontend on its own port (originsPort, callbacksPort).
 */
export function config({ socket, origins, originsPort, callbacks, callbacksPort }) {
  const lines = [
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    '  maxconn 4000',
    '  log stdout format raw local0',
    'defaults',
    '  mode http',
    '  log global',
    '  option httplog',
    // Only errors are logged (a refused forward, a dead replica), not every request.
    '  option dontlog-normal',
    '  timeout connect 1s',
    '  timeout client 5m',
    // The origin answers a forward once the whole body arrived: tens of MiB on a busy machine.
    '  timeout server 5m',
    '  timeout queue 30s',
    '  timeout http-request 30s',
    '  retries 3',
    '  retry-on conn-failure',
    '  option redispatch 1',
  ];
  if (origins) {
    const replicas = [
      `  option httpchk GET ${origins[0].healthPath}`,
      '  http-check expect status 200',
      // A dead replica is out after two failed checks a quarter second apart.
      '  default-server check inter 1s fastinter 250ms downinter 500ms fall 2 rise 2',
      ...origins.map((o) => `  server ${o.name} ${hostPort(o.url)}${o.healthPort ? ` port ${o.healthPort}` : ''}`),
    ];
    lines.push(
      `frontend ${ORIGINS}`,
      `  bind 127.0.0.1:${originsPort}`,
      // A live recording's ranges and its finishing forward must meet its live job, which lives
      // in one replica's memory: hashed on the session id (`/v1/jobs/{id}`, depth 3 — checked
      // to give /v1/jobs/{id}/stream and /v1/jobs/{id} one replica).
      '  acl live_capture path_end /stream',
      '  acl live_capture req.hdr(dodolens-stream-offset) -m found',
      `  use_backend ${ORIGINS}_live if live_capture`,
      `  default_backend ${ORIGINS}_replicas`,
      `backend ${ORIGINS}_replicas`,
      '  balance roundrobin',
      ...replicas,
      `backend ${ORIGINS}_live`,
      '  balance uri depth 3',
      '  hash-type consistent',
      ...replicas,
    );
  }
  if (callbacks) {
    lines.push(
      `frontend ${CALLBACKS}`,
      `  bind 127.0.0.1:${callbacksPort}`,
      `  default_backend ${CALLBACKS}_edge`,
      `backend ${CALLBACKS}_edge`,
      `  server edge ${hostPort(callbacks)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes the config into `dir`, checks it (`haproxy -c`), starts HAProxy in the foreground
 * (`-db`) and resolves to a handle: { stop, output, runtime(cmd), setServer, stats }.
 */
export async function startHaproxy(dir, options) {
  const socket = path.join(dir, 'haproxy.sock');
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, config({ socket, ...options }), { mode: 0o600 });
  const service = await startService('haproxy', 'haproxy', ['-db', '-V', '-f', file], {
    ready: /Using \w+\(\) as the polling mechanism/,
  });
  const runtime = (command) => runtimeCommand(socket, command);
  // The polling line comes just before the listeners run: wait until the admin socket answers.
  await waitForSocket(runtime);
  return {
    ...service,
    file,
    runtime,
    /** Takes a server out of rotation (`disable`) or back (`enable`); HAProxy answers 503 meanwhile. */
    async setServer(backend, server, state) {
      const answer = await runtime(`${state} server ${backend}/${server}`);
      if (answer.trim()) throw new Error(`haproxy ${state} server ${backend}/${server}: ${answer.trim()}`);
    },
    /** `show stat` as objects keyed by the CSV header (pxname, svname, status, wretr, wredis, stot…). */
    async stats() {
      const [header, ...rows] = (await runtime('show stat')).trim().split('\n');
      const names = header.replace(/^# /, '').split(',');
      return rows.map((row) => Object.fromEntries(row.split(',').map((v, i) => [names[i], v])));
    },
  };
}

/** One command on the admin socket; resolves to the whole answer (HAProxy closes after it). */
function runtimeCommand(socket, command) {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let answer = '';
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${command}\n`));
    conn.on('data', (d) => (answer += d));
    conn.on('end', () => resolve(answer));
    conn.on('error', reject);
  });
}

async function waitForSocket(runtime) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if ((await runtime('show info')).includes('Pid:')) return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`haproxy admin socket: ${error.message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
