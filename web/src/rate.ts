/**
 * Upload speed and remaining time, measured over a sliding window so that one slow chunk does not
 * swing the estimate and a stalled upload shows as stalled within seconds.
 */
export interface RateSample {
  atMs: number;
  bytes: number;
}

export class RateMeter {
  private samples: RateSample[] = [];

  constructor(private readonly windowMs = 4_000) {}

  /** Records the total bytes sent at a point in time. */
  record(bytes: number, atMs: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && bytes < last.bytes) this.samples = []; // restarted from a lower offset
    this.samples.push({ atMs, bytes });
    const horizon = atMs - this.windowMs;
    while (this.samples.length > 2 && this.samples[1].atMs <= horizon) this.samples.shift();
  }

  /** Bytes per second over the window, or null before two samples spread in time. */
  bytesPerSecond(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.atMs <= first.atMs) return null;
    return ((last.bytes - first.bytes) * 1000) / (last.atMs - first.atMs);
  }

  /** Seconds until `total` at the current rate; null when unknown or stalled. */
  etaSeconds(total: number): number | null {
    const rate = this.bytesPerSecond();
    const last = this.samples[this.samples.length - 1];
    if (rate === null || !last) return null;
    const remaining = Math.max(0, total - last.bytes);
    if (remaining === 0) return 0;
    if (rate <= 0) return null;
    return remaining / rate;
  }
}
