/**
 * DodoLensClient: everything a front end needs to talk to a DodoLens edge, without any UI.
 *
 * Usable from this page or any other front end (a React hook would wrap `upload` and
 * `subscribe`). It only ever talks to the edge's public routes, relative to the page by default:
 * no key, no origin address. Sessions are named by their *handle* `{id}.{token}`, the last
 * segment of the upload URL the edge returns: the token is a secret capability (whoever holds the
 * handle can follow, retry and delete the session), so keep it like a password.
 */
import type { ConfirmRequest, Confirmed, ContactField, Snapshot } from "./generated/protocol.js";
import { DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { SessionSubscription, type LiveConfig, type SubscriptionListener } from "./subscription.js";
import {
  UploadError,
  UploadHandle,
  forgetPendingUpload,
  pendingUploads,
  terminate,
  type KeptVideo,
  type PendingUpload,
  type StreamedVideo,
  type UploadOptions,
} from "./upload.js";

export type * from "./generated/protocol.js";
export type { ConnectionMode, SubscriptionListener } from "./subscription.js";
export type { KeptVideo, PendingUpload, StreamedVideo, UploadCallbacks, UploadOptions, UploadProgressInfo } from "./upload.js";
export { SessionSubscription, UploadError, UploadHandle };

export interface DodoLensClientOptions {
  /** Where the edge is; defaults to the page's own origin. */
  baseUrl?: string;
  /** Bytes per PATCH. The edge accepts up to its MAX_REQUEST_BYTES (64 MiB by default). */
  chunkSize?: number;
  /** tus retry delays for a failed request, in ms. */
  retryDelays?: number[];
  backoff?: BackoffOptions;
  socketFailuresBeforePolling?: number;
  socketOpenTimeoutMs?: number;
  keepaliveMs?: number;
}

/** The HTTP status and the edge's message when a call is refused. */
export class DodoLensError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** For a refused confirmation: the contact fields to fix. */
    readonly fields: readonly ContactField[] = [],
  ) {
    super(message);
    this.name = "DodoLensError";
  }
}

export class DodoLensClient {
  readonly apiBase: string;
  private readonly chunkSize: number;
  private readonly retryDelays: number[];
  private readonly live: LiveConfig;

  constructor(options: DodoLensClientOptions = {}) {
    const base = options.baseUrl ?? globalThis.location?.origin ?? "";
    this.apiBase = `${base.replace(/\/+$/, "")}/api/dodo-lens`;
    this.chunkSize = options.chunkSize ?? 4 * 1024 * 1024;
    this.retryDelays = options.retryDelays ?? [0, 1000, 3000, 5000, 10000];
    this.live = {
      apiBase: this.apiBase,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      socketFailuresBeforePolling: options.socketFailuresBeforePolling ?? 2,
      socketOpenTimeoutMs: options.socketOpenTimeoutMs ?? 10_000,
      keepaliveMs: options.keepaliveMs ?? 25_000,
    };
  }

  /**
   * Starts (or resumes, if this browser sent part of the same file before) an upload. The
   * returned handle's `done` resolves with the session handle once the server has every byte;
   * `onSession` fires as soon as the session exists, so a caller can subscribe while uploading.
   * A `StreamedVideo` (a recording being filmed) is sent as it comes, its length declared when
   * its stream ends; a `KeptVideo` (a recording cut off by a reload) resumes at the server's
   * offset from the bytes the page kept, and declares the length.
   */
  upload(file: File | Blob | StreamedVideo | KeptVideo, options: UploadOptions): UploadHandle {
    const handle = new UploadHandle(
      file,
      { endpoint: `${this.apiBase}/uploads`, chunkSize: this.chunkSize, retryDelays: this.retryDelays },
      options,
    );
    void handle.start();
    return handle;
  }

  /** Follows a session (by its handle) live until it completes, is purged, or `close()` is called. */
  subscribe(handle: string, listener: SubscriptionListener): SessionSubscription {
    return new SessionSubscription(handle, this.live, listener);
  }

  /** The session's current snapshot, once. */
  async snapshot(handle: string): Promise<Snapshot> {
    const response = await fetch(this.sessionUrl(handle), { cache: "no-store" });
    await ensureOk(response);
    return (await response.json()) as Snapshot;
  }

  /** Runs processing again after a retryable failure, from the video the edge still holds. */
  async retry(handle: string): Promise<void> {
    const response = await fetch(`${this.sessionUrl(handle)}/retry`, { method: "POST" });
    await ensureOk(response);
  }

  /**
   * Confirms the reviewed inventory: the edge recomputes it from `request.edits` and hands it to
   * the mover. A refused contact rejects with a `DodoLensError` whose `fields` name the fields.
   */
  async confirm(sessionId: string, request: ConfirmRequest): Promise<Confirmed> {
    const response = await fetch(`${this.sessionUrl(sessionId)}/confirm`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
    if (response.status === 422) {
      const body = (await response.json().catch(() => ({}))) as { fields?: ContactField[]; message?: string };
      throw new DodoLensError(422, body.message ?? "refused", body.fields ?? []);
    }
    await ensureOk(response);
    return (await response.json()) as Confirmed;
  }

  /** Withdraws the confirmation (the customer changed the inventory after confirming). */
  async unconfirm(sessionId: string): Promise<void> {
    const response = await fetch(`${this.sessionUrl(sessionId)}/confirm`, { method: "DELETE" });
    await ensureOk(response);
  }

  /** Deletes a session and its video (tus termination), e.g. "Annuler" after the upload ended. */
  async cancel(handle: string): Promise<void> {
    await terminate(this.uploadUrl(handle));
  }

  uploadUrl(handle: string): string {
    return `${this.apiBase}/uploads/${encodeURIComponent(handle)}`;
  }

  /** Uploads this browser started and did not finish; pick the same file again to resume. */
  pendingUploads(): Promise<PendingUpload[]> {
    return pendingUploads();
  }

  forgetPendingUpload(storageKey: string): Promise<void> {
    return forgetPendingUpload(storageKey);
  }

  private sessionUrl(handle: string): string {
    return `${this.apiBase}/sessions/${encodeURIComponent(handle)}`;
  }
}

async function ensureOk(response: Response): Promise<void> {
  if (response.ok) return;
  const text = await response.text().catch(() => "");
  throw new DodoLensError(response.status, text.slice(0, 200) || `HTTP ${response.status}`);
}
