/**
 * Upload speed and remaining time, measured over sliding windows so that one slow chunk does not
 * swing the estimate and a stalled upload shows as stalled within seconds.
 */
export interface RateSample {
  atMs: number;
  bytes: number;
}

export class RateMeter {
  private samples: RateSample[] = [];

  /**
   * `windowMs`: how far back the rate looks. `minSpanMs`: no rate before the samples span this
   * long (the first bytes fill the socket buffer far faster than the uplink carries them).
   */
  constructor(
    private readonly windowMs = 4_000,
    private readonly minSpanMs = 0,
  ) {}

  /** Records the total bytes sent at a point in time. */
  record(bytes: number, atMs: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && bytes < last.bytes) this.samples = []; // restarted from a lower offset
    this.samples.push({ atMs, bytes });
    const horizon = atMs - this.windowMs;
    while (this.samples.length > 2 && this.samples[1].atMs <= horizon) this.samples.shift();
  }

  /** Bytes per second over the window, or null before the samples span long enough. */
  bytesPerSecond(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.atMs <= first.atMs || last.atMs - first.atMs < this.minSpanMs) return null;
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

/** The speed the page shows: the last few seconds. */
export const SPEED_WINDOW_MS = 4_000;
/** The remaining time: the throughput of the last 30 s (a 1 GiB file takes a quarter of an hour
 * at 10 Mbit/s; an ETA from 4 s of a mobile uplink would jump by minutes), shown only after 3 s. */
export const ETA_WINDOW_MS = 30_000;
export const ETA_MIN_SPAN_MS = 3_000;

/**
 * An upload's measured speed and an honest remaining time: from what was measured, never a
 * guess — nothing until there is enough to measure, nothing while the upload is stalled.
 */
export class UploadRate {
  private readonly speed = new RateMeter(SPEED_WINDOW_MS);
  private readonly eta = new RateMeter(ETA_WINDOW_MS, ETA_MIN_SPAN_MS);

  record(bytes: number, atMs: number): void {
    this.speed.record(bytes, atMs);
    this.eta.record(bytes, atMs);
  }

  bytesPerSecond(): number | null {
    return this.speed.bytesPerSecond();
  }

  etaSeconds(total: number): number | null {
    const stalled = this.speed.bytesPerSecond() === 0;
    return stalled ? null : this.eta.etaSeconds(total);
  }
}
