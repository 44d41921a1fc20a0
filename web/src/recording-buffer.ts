/**
 * The part of a recording the server has not acknowledged, kept in the browser so that a reload
 * during the recording (or while its backlog drains) still finishes the upload: MediaRecorder
 * dies with the page, the kept bytes do not. The rules are shared::recording_buffer's, run
 * through wasm (rules.ts); the bytes live in IndexedDB (recording-store.ts).
 *
 * Each chunk is kept before the upload may read it (`keep` resolves first), so the server never
 * holds a byte the browser does not have. Until the session exists (tus creation), chunks wait
 * in memory; they are stored under the session's id once it is known. A chunk that cannot be
 * stored (quota, storage refused) ends the keeping: what was stored is deleted, the recording
 * still uploads, and a reload then falls back to deleting the session.
 */
import { RecordingStore } from "./recording-store.js";
import { piecesOf, releasedChunks, resumeFrom, type ResumeRefusal, type Span } from "./rules.js";

/** The kept chunks cannot finish the upload from the server's offset. */
export class ResumeRefused extends Error {
  constructor(readonly refusal: ResumeRefusal) {
    super(`the kept recording cannot resume: ${refusal.reason}`);
    this.name = "ResumeRefused";
  }
}

/** The session id of a handle `{id}.{token}`: chunks are stored under the id, not the secret. */
export function sessionIdOf(handle: string): string {
  return handle.split(".")[0];
}

/** A source for tus-js-client (its `fileReader` option): the kept bytes, by offset. */
export interface KeptSource {
  size: number;
  slice(start: number, end: number): Promise<{ value: Blob; done: boolean }>;
  close(): void;
}

export class RecordingBuffer {
  private spans: Span[] = [];
  private waiting: Uint8Array[] = [];
  private end = 0;
  private session: string | null = null;
  private broken = false;
  /** Every store operation, in order. */
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly store: Promise<RecordingStore | null>) {}

  /** A buffer for a recording that starts now. */
  static forRecording(): RecordingBuffer {
    return new RecordingBuffer(RecordingStore.open().catch(() => null));
  }

  /**
   * The chunks kept for `handle`'s session by a page that reloaded, or null when none was
   * kept. Deletes what other sessions left behind.
   */
  static async restore(handle: string | null): Promise<RecordingBuffer | null> {
    const store = await RecordingStore.open().catch(() => null);
    if (!store) return null;
    const session = handle ? sessionIdOf(handle) : null;
    await store.clearAllBut(session);
    const spans = session ? await store.spans(session) : [];
    if (!session || spans.length === 0) {
      store.close();
      return null;
    }
    const buffer = new RecordingBuffer(Promise.resolve(store));
    buffer.session = session;
    buffer.spans = spans;
    const last = spans[spans.length - 1];
    buffer.end = last.offset + last.len;
    return buffer;
  }

  /** The recording's length so far: the end of its last chunk. */
  get length(): number {
    return this.end;
  }

  /** Keeps the next chunk of the recording; resolves once it is stored (never rejects). */
  keep(bytes: Uint8Array): Promise<void> {
    const span = { offset: this.end, len: bytes.byteLength };
    this.end += bytes.byteLength;
    if (this.broken) return Promise.resolve();
    if (this.session === null) {
      this.waiting.push(bytes);
      this.spans.push(span);
      return Promise.resolve();
    }
    return this.enqueue(async (store, session) => {
      await store.put(session, span.offset, bytes);
      this.spans.push(span);
    });
  }

  /** The session exists: the chunks kept so far are stored under its id, and every later one. */
  bind(handle: string): Promise<void> {
    this.session = sessionIdOf(handle);
    const waiting = this.waiting.splice(0);
    const spans = [...this.spans];
    return this.enqueue(async (store, session) => {
      for (const [i, bytes] of waiting.entries()) await store.put(session, spans[i].offset, bytes);
    });
  }

  /** The server holds `offset` bytes: the chunks it covers are released (all but the last). */
  acknowledge(offset: number): Promise<void> {
    return this.enqueue(async (store, session) => {
      const released = new Set(releasedChunks(this.spans, offset));
      if (released.size === 0) return;
      const gone = this.spans.filter((span) => released.has(span.offset));
      this.spans = this.spans.filter((span) => !released.has(span.offset));
      await store.remove(session, gone);
    });
  }

  /** The upload is complete or given up: nothing of the recording stays in the browser. */
  async discard(): Promise<void> {
    this.broken = true;
    this.waiting = [];
    this.spans = [];
    const store = await this.store;
    await this.chain.catch(() => undefined);
    if (store && this.session) await store.clear(this.session).catch(() => undefined);
    store?.close();
  }

  /**
   * tus-js-client's `fileReader`: slices of the kept bytes. A slice that starts where the kept
   * chunks cannot finish the upload (the server's offset, after its HEAD) is refused with
   * `ResumeRefused`; the last slice is `done`, so tus declares the length with it.
   */
  reader(): { openFile(): Promise<KeptSource> } {
    const source: KeptSource = {
      size: this.end,
      slice: (start, end) => this.slice(start, end),
      close: () => undefined,
    };
    return { openFile: async () => source };
  }

  private async slice(start: number, end: number): Promise<{ value: Blob; done: boolean }> {
    const check = resumeFrom(this.spans, start);
    if ("refused" in check) throw new ResumeRefused(check.refused);
    const store = await this.store;
    const session = this.session;
    if (!store || !session) throw new ResumeRefused({ reason: "empty" });
    const parts: Uint8Array[] = [];
    const spans = new Map(this.spans.map((span) => [span.offset, span]));
    for (const piece of piecesOf(this.spans, start, end)) {
      const bytes = await store.read(session, spans.get(piece.offset)!);
      parts.push(bytes.subarray(piece.skip, piece.skip + piece.take));
    }
    return { value: new Blob(parts as BlobPart[]), done: end >= check.resume.length };
  }

  private enqueue(operation: (store: RecordingStore, session: string) => Promise<void>): Promise<void> {
    const next = this.chain.then(async () => {
      const store = await this.store;
      if (this.broken || !this.session) return;
      if (!store) return this.fail(null);
      try {
        await operation(store, this.session);
      } catch {
        await this.fail(store);
      }
    });
    this.chain = next;
    return next;
  }

  /** A store failed: stop keeping and delete what was kept, so no partial buffer is left. */
  private async fail(store: RecordingStore | null): Promise<void> {
    this.broken = true;
    this.spans = [];
    if (store && this.session) await store.clear(this.session).catch(() => undefined);
  }
}
