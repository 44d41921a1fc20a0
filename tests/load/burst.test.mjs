// A burst on default settings: 20 sessions uploading a 63 MiB video at once through the stack as
// `scripts/stack` runs it (production edge timings, one origin with its default job slots, the
// simulator). Every session must end with its result — a burst is a queue, not a failure — and
// leave no chunk row and no memfd behind. Heavy (1.2 GiB through the edge): not part of
// scripts/test; run it with `tests/load/run tests/load/burst.test.mjs`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sampleBytes } from '../../scripts/lib/sample.mjs';
import { startStack } from '../../scripts/lib/stack.mjs';
import { burst, count, describeFailures, percentile, residue } from './support.mjs';

const SESSIONS = Number(process.env.LOAD_SESSIONS ?? 20);
let stack;
let video;

before(async () => {
  // 80 s of 1280×720 is about 63 MiB.
  [stack, video] = await Promise.all([
    startStack({ simulator: true, originEnv: { DODOLENS_LOG_FORMAT: 'json' } }),
    sampleBytes({ seconds: 80, width: 1280, height: 720 }),
  ]);
});

after(async () => {
  await stack?.stop();
});

test(`${SESSIONS} sessions × a 63 MiB video at once on default settings: all complete`, { timeout: 30 * 60_000 }, async (t) => {
  const started = performance.now();
  const records = await burst(stack.api, video, SESSIONS, { chunkSize: 5 << 20, timeoutMs: 25 * 60_000 });
  const seconds = (s) => (s === null ? '–' : `${(s / 1000).toFixed(1)} s`);
  const results = records.filter((r) => r.outcome === 'completed').map((r) => r.result);
  t.diagnostic(
    `${(video.length / 2 ** 20).toFixed(1)} MiB × ${SESSIONS}: ${count(records, 'completed')} completed, ` +
      `${SESSIONS - count(records, 'completed')} not, in ${seconds(performance.now() - started)}; upload→result p50 ` +
      `${seconds(percentile(results, 50))}, p95 ${seconds(percentile(results, 95))}, max ${seconds(results.length ? Math.max(...results) : null)}; ` +
      `queued p50 ${seconds(percentile(records.map((r) => r.queued), 50))}`,
  );
  assert.equal(count(records, 'completed'), SESSIONS, `not completed:\n${describeFailures(records)}`);
  const left = await residue({ stack, ids: records.map((r) => r.id), pids: stack.origins.map((o) => o.pid) });
  assert.equal(left, '', 'residue');
});
