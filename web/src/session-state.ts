/**
 * Folds the live channel into one session view.
 *
 * The edge sends a full snapshot on every (re)connect, then events numbered by a monotonic `seq`.
 * Messages can reach the client twice or late (a WebSocket that reconnects while a long-poll is in
 * flight, a snapshot that already contains an event still queued), so every message is accepted
 * only if it is newer than what the view holds. Gaps are expected: the edge throttles upload
 * progress and does not replay every intermediate event, and the next snapshot is authoritative.
 */
import type { ServerMessage, SessionEvent, Snapshot } from "./generated/protocol.js";

export interface SessionView {
  snapshot: Snapshot;
}

/** Applies one message; returns the same object when the message is stale or a duplicate. */
export function accept(view: SessionView | null, message: ServerMessage): SessionView | null {
  if (message.type === "snapshot") {
    if (view && message.snapshot.seq < view.snapshot.seq) return view;
    return { snapshot: message.snapshot };
  }
  if (!view || message.seq <= view.snapshot.seq) return view;
  return { snapshot: { ...applyEvent(view.snapshot, message.event), seq: message.seq } };
}

/** Applies a batch (a long-poll answer) in `seq` order, whatever order it arrived in. */
export function acceptAll(view: SessionView | null, messages: readonly ServerMessage[]): SessionView | null {
  const ordered = [...messages].sort((a, b) => orderKey(a) - orderKey(b));
  return ordered.reduce<SessionView | null>(accept, view);
}

function orderKey(message: ServerMessage): number {
  return message.type === "snapshot" ? message.snapshot.seq : message.seq;
}

export function applyEvent(snapshot: Snapshot, event: SessionEvent): Snapshot {
  switch (event.type) {
    case "status":
      // Leaving `failed` (a retry) clears the old error so the page stops showing it; leaving
      // `queued` ends the wait.
      return {
        ...snapshot,
        status: event.status,
        error: event.status === "failed" ? snapshot.error : null,
        queue: event.status === "queued" ? snapshot.queue : null,
      };
    case "queued":
      return { ...snapshot, queue: { since: event.since, position: event.position } };
    case "upload":
      return { ...snapshot, upload: { offset: event.offset, length: event.length } };
    case "stage":
      return { ...snapshot, stage: event.stage, progress: null };
    case "progress":
      return { ...snapshot, stage: event.stage, progress: event.fraction };
    case "completed":
      return { ...snapshot, status: "completed", result: event.result, error: null, progress: null };
    case "failed":
      return { ...snapshot, status: "failed", error: event.error };
    case "confirmed":
    case "unconfirmed":
      // The review's own state; the page learns it from its confirm request.
      return snapshot;
  }
}

/** How long a queued session has waited at `now`, and its place when the origin gave one. */
export interface QueueWait {
  seconds: number;
  position: number | null;
}

/**
 * A recording cut off with the page that filmed it (a reload): its length is still deferred and
 * no upload of this page feeds it. The stream is gone with the page, so it can never finish.
 */
export function isCutRecording(snapshot: Snapshot, uploadingHere: boolean): boolean {
  const receiving = snapshot.status === "created" || snapshot.status === "uploading";
  return receiving && snapshot.upload.length === null && !uploadingHere;
}

/** `now` in milliseconds since the epoch, like every time in the protocol. */
export function queueWait(snapshot: Snapshot, now: number): QueueWait | null {
  if (snapshot.status !== "queued" || !snapshot.queue) return null;
  return { seconds: Math.max(0, (now - snapshot.queue.since) / 1000), position: snapshot.queue.position };
}

/** True when nothing more will happen to the session: no reason to stay connected. */
export function isSettled(snapshot: Snapshot): boolean {
  return snapshot.status === "completed" || snapshot.status === "purged";
}
