/**
 * Where the recorder keeps the chunks the server has not acknowledged yet: IndexedDB, one
 * database with one store, each chunk under the key `[session, offset, end]` so the spans of a
 * session are listed from the keys alone, without reading any video. Storage only: what to keep
 * and what to release is decided by shared::recording_buffer (rules.ts).
 *
 * Nothing here outlives its upload: the page deletes a session's chunks once its upload is
 * complete or discarded, and at start-up every chunk of a session it no longer follows.
 */
import type { Span } from "./rules.js";

const DATABASE = "dodolens-recording";
const STORE = "chunks";

type Key = [session: string, offset: number, end: number];

function done(request: IDBRequest): Promise<unknown> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function committed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error("IndexedDB transaction aborted"));
  });
}

/** Every key of `session`: arrays sort after numbers, so `[session, []]` bounds them all. */
function rangeOf(session: string): IDBKeyRange {
  return IDBKeyRange.bound([session], [session, []]);
}

export class RecordingStore {
  private constructor(private readonly db: IDBDatabase) {}

  static open(): Promise<RecordingStore> {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    return done(request).then((db) => new RecordingStore(db as IDBDatabase));
  }

  /** Stores one chunk; resolves once it is committed. */
  async put(session: string, offset: number, bytes: Uint8Array): Promise<void> {
    const transaction = this.db.transaction(STORE, "readwrite");
    const key: Key = [session, offset, offset + bytes.byteLength];
    transaction.objectStore(STORE).put(bytes, key);
    await committed(transaction);
  }

  /** The session's chunks, in offset order. */
  async spans(session: string): Promise<Span[]> {
    const store = this.db.transaction(STORE, "readonly").objectStore(STORE);
    const keys = (await done(store.getAllKeys(rangeOf(session)))) as Key[];
    return keys.map(([, offset, end]) => ({ offset, len: end - offset }));
  }

  /** The bytes of the chunk stored as `span`. */
  async read(session: string, span: Span): Promise<Uint8Array> {
    const store = this.db.transaction(STORE, "readonly").objectStore(STORE);
    const bytes = await done(store.get([session, span.offset, span.offset + span.len]));
    if (!(bytes instanceof Uint8Array)) throw new Error(`chunk at ${span.offset} is not stored`);
    return bytes;
  }

  async remove(session: string, spans: readonly Span[]): Promise<void> {
    if (spans.length === 0) return;
    const transaction = this.db.transaction(STORE, "readwrite");
    const store = transaction.objectStore(STORE);
    for (const span of spans) store.delete([session, span.offset, span.offset + span.len]);
    await committed(transaction);
  }

  /** Deletes every chunk of every session but `keep`. */
  async clearAllBut(keep: string | null): Promise<void> {
    const transaction = this.db.transaction(STORE, "readwrite");
    const store = transaction.objectStore(STORE);
    if (keep === null) store.clear();
    else {
      store.delete(IDBKeyRange.upperBound([keep], true));
      store.delete(IDBKeyRange.lowerBound([keep, []], true));
    }
    await committed(transaction);
  }

  async clear(session: string): Promise<void> {
    const transaction = this.db.transaction(STORE, "readwrite");
    transaction.objectStore(STORE).delete(rangeOf(session));
    await committed(transaction);
  }

  close(): void {
    this.db.close();
  }
}
