// Real faults in the middle of jobs, end to end through the edge; each must still end with the
// result on the WebSocket, and leave nothing behind (chunk rows, Redis keys without TTL or still
// marking a job running, memfds in the origin):
//   - redis-server paused (SIGSTOP) for 45 s while two jobs wait on 8 s model calls, resumed;
//   - redis-server SIGKILLed and started again (its state gone) while jobs wait on the model;
//   - the only origin SIGKILLed mid-job (memory store) and started again;
//   - the edge's callback path refusing for a minute (HAProxy in front of it, its server
//     disabled through the runtime API, so every origin event gets 503).
// The fault durations are the faults themselves, not synchronisation: every wait is on a frame,
// a log line or a counter. Each scenario has its own stack (its own settings).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sampleBytes } from '../../scripts/lib/sample.mjs';
import { startStack, TEST_VARS, waitFor } from '../../scripts/lib/stack.mjs';
import { burst, count, describeFailures, jobRuns, MODEL_STAGES, reached, residue } from './support.mjs';

const REDIS_PAUSE_S = Number(process.env.LOAD_REDIS_PAUSE_S ?? 45);
const CALLBACK_REFUSAL_S = Number(process.env.LOAD_CALLBACK_REFUSAL_S ?? 60);
const video = await sampleBytes({ seconds: 8 });
const hold = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));

/**
 * Runs `sessions` uploads on a fresh stack, calls `fault(stack, live)` once every session's job
 * waits on the model, and checks that every session completed and nothing remains.
 */
async function scenario(t, { stack: options, sessions = 2, latencyMs, fault, timeoutMs = 6 * 60_000 }) {
  const stack = await startStack({ simulator: true, ...options, originEnv: { DODOLENS_LOG_FORMAT: 'json', ...options.originEnv } });
  try {
    await stack.simControl({ latency_ms: latencyMs });
    const live = [];
    const started = performance.now();
    const running = burst(stack.api, video, sessions, { live, timeoutMs });
    await waitFor(() => live.length === sessions && live.every((s) => reached(s, MODEL_STAGES)), 120_000, 'every job waiting on the model');
    const faultAt = performance.now() - started;
    await fault(stack, live);
    const records = await running;
    const seconds = (performance.now() - started) / 1000;
    const runs = jobRuns(stack.origins.map((o) => o.output()));
    t.diagnostic(
      `${count(records, 'completed')}/${sessions} completed in ${seconds.toFixed(1)} s (fault at ${(faultAt / 1000).toFixed(1)} s); ` +
        `job runs (job:attempt): ${[...runs].map(([k, n]) => `${k}×${n}`).join(' ')}`,
    );
    assert.equal(count(records, 'completed'), sessions, `not completed:\n${describeFailures(records)}`);
    assert.deepEqual([...runs].filter(([, n]) => n > 1), [], 'each (job, attempt) ran at most once');
    const left = await residue({ stack, ids: records.map((r) => r.id), pids: stack.origins.map((o) => o.pid) });
    assert.equal(left, '', 'residue');
    return { stack, records };
  } finally {
    await stack.stop();
  }
}

test(`redis-server paused ${REDIS_PAUSE_S} s while two jobs wait on 8 s model calls: both results delivered`, { timeout: 10 * 60_000 }, (t) =>
  // `scripts/stack --redis` as it is (production edge timings).
  scenario(t, {
    stack: { redis: true },
    latencyMs: 8000,
    fault: async (stack) => {
      stack.redis.pause();
      await hold(REDIS_PAUSE_S);
      stack.redis.resume();
    },
  }),
);

test('redis-server SIGKILLed and started again (its state lost) while jobs wait on the model: results delivered', { timeout: 10 * 60_000 }, (t) =>
  scenario(t, {
    stack: { redis: true },
    latencyMs: 4000,
    fault: async (stack) => {
      await stack.redis.kill();
      await stack.redis.start();
    },
  }),
);

test('the only origin SIGKILLed mid-job and started again (memory store): the job runs again and completes', { timeout: 10 * 60_000 }, (t) =>
  // Short test timings: the watchdog re-forwards 10 s after the origin went silent.
  scenario(t, {
    stack: { vars: { ...TEST_VARS, WATCHDOG_MS: '10000' }, originEnv: { DODOLENS_HEARTBEAT_MS: '2000' } },
    sessions: 1,
    latencyMs: 3000,
    fault: async (stack) => {
      await stack.killOrigin();
      await stack.startOrigin();
    },
  }),
);

test(`the edge's callback path refuses for ${CALLBACK_REFUSAL_S} s (HAProxy, server disabled): the result is delivered`, { timeout: 10 * 60_000 }, (t) =>
  // Production edge timings: a minute without origin events is under the 2 min watchdog.
  scenario(t, {
    stack: { callbackProxy: true },
    latencyMs: 2000,
    fault: async (stack) => {
      const refused = async () => {
        const front = (await stack.haproxy.stats()).find((s) => s.pxname === 'edge_callbacks' && s.svname === 'FRONTEND');
        return Number(front.hrsp_5xx);
      };
      const before = await refused();
      await stack.refuseCallbacks(true);
      await hold(CALLBACK_REFUSAL_S);
      assert.ok((await refused()) > before, 'the origin tried to reach the edge and was refused');
      await stack.refuseCallbacks(false);
    },
  }),
);
