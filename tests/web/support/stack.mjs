// The full local stack for the browser tests: the same scripts/lib/stack.mjs that scripts/stack,
// the edge tests and the benchmarks use (edge under wrangler dev serving web/dist, origin, OpenAI
// simulator), with the edge's production timings except a short forward backoff.
import { startStack as startFullStack, waitFor } from '../../../scripts/lib/stack.mjs';

export { waitFor };

export async function startStack() {
  const stack = await startFullStack({ vars: { FORWARD_BACKOFF_MS: '200' }, simulator: true });
  return {
    ...stack,
    waitFor,
    stop: () => stack.stop(),
    simulatorFault: (fault) => stack.simControl({ fault }),
    simulatorLatency: (ms) => stack.simControl({ latency_ms: ms }),
    simulatorStats: () => stack.simStats(),
  };
}
