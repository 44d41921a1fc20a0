// Starting and stopping the real services tests talk to (origin, wrangler dev, redis-server).
//
// Each service runs in its own process group (setsid-like `detached`), because `wrangler dev`
// forks node and workerd children that outlive a plain kill; stopping signals the whole group
// and then proves it is empty, so a test that passes leaves nothing running.
import { spawn } from 'node:child_process';
import net from 'node:net';

/** A TCP port that was free a moment ago (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `cmd` in a new process group and resolves once a line of its output matches `ready`
 * (a RegExp); rejects if it exits first or `timeoutMs` passes. The match is returned so callers
 * can read a bound address from it.
 */
export function startService(name, cmd, args, { env = {}, cwd, ready, timeoutMs = 120_000 } = {}) {
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const service = {
    name,
    child,
    pgid: child.pid,
    output: () => output,
    stop: () => stopGroup(child.pid, exited),
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      service.stop().finally(() => reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${output}`)));
    }, timeoutMs);
    const onData = (chunk) => {
      output += chunk;
      const m = output.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve({ ...service, match: m });
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${output}`));
    });
  });
}

/** True while any process of group `pgid` is alive. */
export function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    if (e.code === 'ESRCH') return false;
    throw e;
  }
}

/** SIGTERM the group, SIGKILL what is left after a grace period, and wait until it is empty. */
export async function stopGroup(pgid, exited, graceMs = 5_000) {
  const signal = (sig) => {
    try {
      process.kill(-pgid, sig);
    } catch (e) {
      if (e.code !== 'ESRCH') throw e;
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) signal('SIGKILL');
    if (Date.now() > deadline + 10_000) throw new Error(`process group ${pgid} survived SIGKILL`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
