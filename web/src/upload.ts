/**
 * A resumable upload over tus, with the numbers a person wants to see (bytes, speed, time left).
 *
 * tus-js-client does the protocol. What this adds: a fingerprint under our own prefix, so a page
 * reloaded mid-upload can list what it may resume and pick the same file up at the server's
 * offset; the session handle (the last segment of the upload URL: the session id and its secret
 * capability token, `{id}.{token}`); and cancellation that deletes the upload on the server (tus
 * termination) instead of leaving chunks behind until they expire.
 *
 * A recording is uploaded while it is filmed: its bytes come as a stream, the length is deferred
 * (tus `Upload-Defer-Length`) and sent with the last PATCH once the recording stops. tus-js-client
 * (4.3) reads the stream a chunk at a time; its PATCHes follow the camera by about one chunk.
 * A recording cut off by a reload is finished from what the page kept of it (`KeptVideo`): tus
 * resumes at the stored upload URL (HEAD for the server's offset), reads the kept bytes from
 * there through a custom `fileReader`, and declares the length with the last PATCH.
 *
 * The upload URL is a secret capability: whoever has it can see, resume and delete the session.
 * tus-js-client keeps it in localStorage for resuming, which is where the page keeps it too.
 */
import * as tus from "tus-js-client";
import { UploadRate } from "./rate.js";
import { ResumeRefused, type KeptSource } from "./recording-buffer.js";

/** Prefix of our entries in tus-js-client's URL storage (localStorage in browsers). */
export const FINGERPRINT_PREFIX = "dodolens-v1";

export interface UploadProgressInfo {
  bytesSent: number;
  bytesTotal: number;
  /** 0–1. */
  fraction: number;
  /** Null until two measurements are apart in time. */
  bytesPerSecond: number | null;
  /** Seconds left at the current speed; null when unknown or stalled. */
  etaSeconds: number | null;
}

export interface UploadCallbacks {
  /** The server created (or the client resumed) the session; fired once per upload. */
  onSession?(handle: string, uploadUrl: string): void;
  /** A previous upload of the same file was found; the server already holds `offset` bytes. */
  onResume?(offset: number): void;
  onProgress?(progress: UploadProgressInfo): void;
  /** The server holds `offset` bytes (a PATCH's answer, or a HEAD's). */
  onAcknowledged?(offset: number): void;
}

export interface UploadOptions extends UploadCallbacks {
  /** Language of the narration, sent as tus metadata (`fr`, `en`). */
  locale: string;
}

/** A recording uploaded while it is filmed: its bytes in order, its length known at the end. */
export interface StreamedVideo {
  stream: ReadableStream<Uint8Array>;
  filename: string;
  filetype: string;
}

/** A recording cut off by a reload, finished from the bytes the page kept of it. */
export interface KeptVideo {
  uploadUrl: string;
  reader: { openFile(): Promise<KeptSource> };
}

/**
 * PATCH size of a streamed recording: tus-js-client sends a chunk once it is whole, so this is
 * how far the upload trails the camera (about 1.4 s at 1.5 Mbit/s).
 */
export const STREAM_CHUNK_BYTES = 256 * 1024;

export interface PendingUpload {
  /** The session handle (`{id}.{token}`): a secret capability. */
  handle: string;
  uploadUrl: string;
  filename: string;
  size: number;
  /** Key in tus storage, to forget it. */
  storageKey: string;
  createdAt: string;
}

export interface UploaderConfig {
  endpoint: string;
  chunkSize: number;
  retryDelays: number[];
}

/** The session handle (`{id}.{token}`, a secret capability) is the last path segment of the upload URL. */
export function sessionHandleFromUrl(uploadUrl: string): string {
  const path = new URL(uploadUrl, "http://x").pathname.replace(/\/+$/, "");
  return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1));
}

/** Identifies a file across page loads: same name, size, type and modification time. */
export function fingerprintOf(file: Blob, endpoint: string): string {
  const named = file as Partial<File>;
  return [FINGERPRINT_PREFIX, named.name ?? "blob", file.type, file.size, named.lastModified ?? 0, endpoint].join("|");
}

/** Why an upload stopped: the edge's HTTP status (0 when the network failed). */
export class UploadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "UploadError";
  }
}

export class UploadHandle {
  /** Resolves with the session handle once the whole file is on the server. */
  readonly done: Promise<string>;
  private upload: tus.Upload;
  private cancelled = false;
  private meter = new UploadRate();
  private last: { bytesSent: number; bytesTotal: number } | null = null;
  private fail!: (error: Error) => void;

  private readonly streamed: boolean;

  constructor(file: File | Blob | StreamedVideo | KeptVideo, config: UploaderConfig, options: UploadOptions) {
    let announced = false;
    let resolve!: (id: string) => void;
    let reject!: (error: Error) => void;
    this.done = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.fail = reject;
    const announce = () => {
      if (announced || !this.upload.url) return;
      announced = true;
      options.onSession?.(sessionHandleFromUrl(this.upload.url), this.upload.url);
    };
    const streamed = "filetype" in file ? file : null;
    const kept = "reader" in file ? file : null;
    this.streamed = streamed !== null || kept !== null;
    const filename = streamed?.filename ?? (file as Partial<File>).name ?? "video";
    const filetype = streamed?.filetype ?? ((file as Blob).type || "video/mp4");
    // A kept recording's input goes only to its own `fileReader`, which tus's types do not foresee.
    const input = streamed ? streamed.stream.getReader() : kept ? (kept.reader as unknown as Blob) : (file as Blob);
    this.upload = new tus.Upload(input, {
      // A kept recording only resumes: without an endpoint tus cannot create a new upload.
      endpoint: kept ? null : config.endpoint,
      uploadUrl: kept?.uploadUrl ?? null,
      ...(kept ? { fileReader: kept.reader, onShouldRetry: retriesUnlessRefused } : {}),
      chunkSize: streamed ? STREAM_CHUNK_BYTES : config.chunkSize,
      uploadLengthDeferred: this.streamed,
      retryDelays: config.retryDelays,
      metadata: { filename, filetype, locale: options.locale },
      fingerprint: async () => fingerprintOf(file as Blob, config.endpoint),
      // A stream cannot be read again after a reload: nothing to resume from tus's storage (a
      // recording is resumed from what the page kept, as a KeptVideo).
      storeFingerprintForResuming: !this.streamed,
      removeFingerprintOnSuccess: true,
      onUploadUrlAvailable: announce,
      onAfterResponse: (req, res) => {
        // A HEAD is how tus resumes: the server says how much it already holds.
        if (req.getMethod() === "HEAD" && res.getStatus() === 200) {
          const offset = Number(res.getHeader("Upload-Offset"));
          if (Number.isFinite(offset)) {
            options.onResume?.(offset);
            options.onAcknowledged?.(offset);
          }
        }
      },
      onChunkComplete: (_size, accepted) => options.onAcknowledged?.(accepted),
      onProgress: (bytesSent, bytesTotal) => {
        announce();
        // While a recording's length is deferred, tus-js-client has no total (null).
        this.last = { bytesSent, bytesTotal: bytesTotal ?? 0 };
        options.onProgress?.(this.measure());
      },
      onSuccess: () => {
        announce();
        resolve(sessionHandleFromUrl(this.upload.url ?? ""));
      },
      onError: (error) => {
        const detailed = error as tus.DetailedError;
        if (detailed.causingError instanceof ResumeRefused) return reject(detailed.causingError);
        reject(new UploadError(detailed.originalResponse?.getStatus() ?? 0, error.message));
      },
    });
  }

  /** Starts, resuming the newest earlier upload of the same file if the browser remembers one. */
  async start(): Promise<void> {
    try {
      const previous = this.streamed ? [] : await this.upload.findPreviousUploads();
      const newest = previous.sort((a, b) => b.creationTime.localeCompare(a.creationTime))[0];
      if (newest) this.upload.resumeFromPreviousUpload(newest);
      if (!this.cancelled) this.upload.start();
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Progress now. The browser reports progress only when bytes move, so call this on a timer to
   * see a stalled upload's speed fall to zero (and its ETA become unknown) instead of freezing.
   */
  measure(): UploadProgressInfo {
    const { bytesSent, bytesTotal } = this.last ?? { bytesSent: 0, bytesTotal: 0 };
    this.meter.record(bytesSent, performance.now());
    return {
      bytesSent,
      bytesTotal,
      fraction: bytesTotal > 0 ? bytesSent / bytesTotal : 0,
      bytesPerSecond: this.meter.bytesPerSecond(),
      etaSeconds: bytesTotal > 0 ? this.meter.etaSeconds(bytesTotal) : null,
    };
  }

  get uploadUrl(): string | null {
    return this.upload.url;
  }

  /** Stops sending and deletes what the server holds (tus termination). */
  async cancel(): Promise<void> {
    this.cancelled = true;
    await this.upload.abort(true);
  }
}

/**
 * tus-js-client's own retry rule (not a 4xx other than 409/423, and online), except that kept
 * bytes that cannot resume are final: retrying would ask the same question again.
 */
function retriesUnlessRefused(error: tus.DetailedError): boolean {
  if (error.causingError instanceof ResumeRefused) return false;
  const status = error.originalResponse?.getStatus() ?? 0;
  const refused = status >= 400 && status < 500 && status !== 409 && status !== 423;
  return !refused && navigator.onLine !== false;
}

/** Uploads this browser started but did not finish, newest first. */
export async function pendingUploads(): Promise<PendingUpload[]> {
  if (!tus.canStoreURLs) return [];
  const all = await tus.defaultOptions.urlStorage.findAllUploads();
  return all
    .filter((u) => u.urlStorageKey.startsWith(`tus::${FINGERPRINT_PREFIX}`) && u.uploadUrl)
    .map((u) => ({
      handle: sessionHandleFromUrl(u.uploadUrl!),
      uploadUrl: u.uploadUrl!,
      filename: u.metadata.filename ?? "video",
      size: u.size ?? 0,
      storageKey: u.urlStorageKey,
      createdAt: u.creationTime,
    }))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

export async function forgetPendingUpload(storageKey: string): Promise<void> {
  await tus.defaultOptions.urlStorage.removeUpload(storageKey);
}

/** Deletes an upload by URL (tus termination), e.g. after the page that started it reloaded. */
export async function terminate(uploadUrl: string): Promise<void> {
  await tus.Upload.terminate(uploadUrl, { retryDelays: [0, 1000] });
}
