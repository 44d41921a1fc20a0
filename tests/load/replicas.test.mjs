// Several origin replicas for real: two origins sharing one redis-server behind HAProxy (the
// edge's ORIGIN_URL), 50 sessions at once through the edge, the simulator answering each model
// call after 2 s, and one replica SIGKILLed while it runs jobs. Every session must end with its
// result — none failed, not even retryably — each (job, attempt) ran at most once across the
// replicas, and nothing is left behind: no chunk row at the edge, no Redis key without a TTL or
// still marking a job running, no memfd in the surviving origin.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sampleBytes } from '../../scripts/lib/sample.mjs';
import { startStack, TEST_VARS, waitFor } from '../../scripts/lib/stack.mjs';
import { burst, count, describeFailures, inFlight, jobRuns, percentile, residue } from './support.mjs';

const SESSIONS = Number(process.env.LOAD_SESSIONS ?? 50);
const MODEL_LATENCY_MS = 2000;
let stack;
let video;

before(async () => {
  const [s, bytes] = await Promise.all([
    startStack({
      replicas: 2,
      simulator: true,
      // Test timings (short retention and backoff), but 50 uploads at once on two cores may
      // pause for seconds between PATCHes; the watchdog well above the origin's heartbeat; 50
      // jobs through 4 slots take minutes, so the queue limit is 10 min (15 by default).
      vars: { ...TEST_VARS, IDLE_EXPIRY_MS: '120000', WATCHDOG_MS: '8000', QUEUE_LIMIT_MS: '600000' },
      originEnv: {
        DODOLENS_LOG_FORMAT: 'json',
        DODOLENS_HEARTBEAT_MS: '1000',
        DODOLENS_RETRY_AFTER_S: '1',
        // A dead replica's claim on its running jobs lapses after 3 s, not a minute.
        DODOLENS_RUNNING_LEASE_S: '3',
      },
    }),
    // A few MiB, generated once and uploaded by every session.
    sampleBytes({ seconds: 12 }),
  ]);
  stack = s;
  video = bytes;
});

after(async () => {
  await stack?.stop();
});

test(`${SESSIONS} sessions at once, two replicas behind HAProxy, one SIGKILLed mid-run: every session completes`, { timeout: 10 * 60_000 }, async (t) => {
  await stack.simControl({ latency_ms: MODEL_LATENCY_MS });
  const [survivor, victim] = stack.origins;
  let ended = 0;
  const started = performance.now();
  const running = burst(stack.api, video, SESSIONS, { timeoutMs: 8 * 60_000, onEnd: () => ended++ });

  // The middle of the run: some sessions are done and the victim is running jobs of its own.
  const jobsOnVictim = await waitFor(
    async () => (ended >= Math.ceil(SESSIONS / 10) && (await inFlight(victim))) || (ended === SESSIONS && -1),
    6 * 60_000,
    'the victim replica running jobs after the first results',
  );
  // (Not `assert.ok(…, describeFailures(await running))`: that awaits every session first.)
  if (jobsOnVictim < 0) assert.fail(`every session ended before the victim ran a job:\n${describeFailures(await running)}`);
  const victimPid = victim.pid;
  await victim.kill();
  const killedAt = performance.now() - started;
  const records = await running;
  const total = performance.now() - started;

  const runsOf = (replica) => jobRuns([replica.output()]);
  const runs = jobRuns(stack.origins.map((o) => o.output()));
  const sim = await stack.simStats();
  const servers = (await stack.haproxy.stats()).filter((s) => s.pxname === 'origins_replicas');
  t.diagnostic(
    `${count(records, 'completed')}/${SESSIONS} completed in ${(total / 1000).toFixed(1)} s; ` +
      `${victim.name} (pid ${victimPid}) SIGKILLed at ${(killedAt / 1000).toFixed(1)} s with ${jobsOnVictim} jobs in flight; ` +
      `upload→result p50 ${(percentile(records.map((r) => r.result), 50) / 1000).toFixed(1)} s, ` +
      `p95 ${(percentile(records.map((r) => r.result), 95) / 1000).toFixed(1)} s; ` +
      `job runs: ${survivor.name} ${runsOf(survivor).size}, ${victim.name} ${runsOf(victim).size}; ` +
      `simulator: ${sim.chat_completions} chat, ${sim.transcriptions} transcriptions; ` +
      `haproxy: ${servers.map((s) => `${s.svname} ${s.status} retries=${s.wretr} redispatches=${s.wredis}`).join(', ')}`,
  );

  assert.equal(count(records, 'completed'), SESSIONS, `not completed:\n${describeFailures(records)}`);
  const failedEvents = records.filter((r) => r.frames.some(({ frame }) => frame.type === 'event' && frame.event.type === 'failed'));
  assert.deepEqual(failedEvents.map((r) => r.id), [], 'no session saw a failed event, not even a retryable one');

  const twice = [...runs].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'each (job, attempt) ran at most once across the replicas');
  const jobs = new Set([...runs.keys()].map((k) => k.split(':')[0]));
  assert.equal(jobs.size, SESSIONS, 'every session\'s job ran');
  assert.ok(runsOf(victim).size >= jobsOnVictim, 'the victim had run jobs before it was killed');
  assert.ok(runs.size > SESSIONS, 'the jobs caught by the kill ran again under a later attempt');
  assert.equal(servers.find((s) => s.svname === victim.name)?.status, 'DOWN', 'HAProxy\'s health check took the dead replica out');

  const left = await residue({ stack, ids: records.map((r) => r.id), pids: [survivor.pid] });
  assert.equal(left, '', 'residue');
});
