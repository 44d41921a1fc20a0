import { test } from "node:test";
import assert from "node:assert/strict";
import { accept, acceptAll, isCutRecording, isSettled, queueWait } from "../src/session-state.js";
import { queueText } from "../src/i18n.js";
import type { ServerMessage } from "../src/generated/protocol.js";
import { result, snapshot } from "./fixtures.js";

const snap = (seq: number, status: "uploading" | "processing" = "uploading"): ServerMessage => ({
  type: "snapshot",
  snapshot: snapshot({ seq, status }),
});

test("events before any snapshot are ignored: the snapshot is the base", () => {
  assert.equal(accept(null, { type: "event", seq: 3, event: { type: "stage", stage: "probing" } }), null);
});

test("events apply in seq order and duplicates are dropped", () => {
  let view = accept(null, snap(2));
  view = accept(view, { type: "event", seq: 3, event: { type: "upload", offset: 500, length: 1000 } });
  assert.equal(view!.snapshot.upload.offset, 500);
  const again = accept(view, { type: "event", seq: 3, event: { type: "upload", offset: 100, length: 1000 } });
  assert.equal(again, view);
  const stale = accept(view, { type: "event", seq: 1, event: { type: "status", status: "created" } });
  assert.equal(stale, view);
  assert.equal(view!.snapshot.seq, 3);
});

test("gaps are accepted: the edge throttles upload progress", () => {
  let view = accept(null, snap(2));
  view = accept(view, { type: "event", seq: 9, event: { type: "stage", stage: "extracting" } });
  assert.equal(view!.snapshot.seq, 9);
  assert.equal(view!.snapshot.stage, "extracting");
});

test("an older snapshot does not roll the view back; a newer one replaces it", () => {
  let view = accept(null, snap(5, "processing"));
  assert.equal(accept(view, snap(4)), view);
  view = accept(view, snap(7, "processing"));
  assert.equal(view!.snapshot.seq, 7);
});

test("a long-poll batch is applied in seq order whatever its order", () => {
  const view = acceptAll(accept(null, snap(1)), [
    { type: "event", seq: 4, event: { type: "progress", stage: "analysing", fraction: 0.5 } },
    { type: "event", seq: 2, event: { type: "status", status: "processing" } },
    { type: "event", seq: 3, event: { type: "stage", stage: "transcribing" } },
  ]);
  assert.equal(view!.snapshot.status, "processing");
  assert.equal(view!.snapshot.stage, "analysing");
  assert.equal(view!.snapshot.progress, 0.5);
  assert.equal(view!.snapshot.seq, 4);
});

test("a snapshot in a batch wins over the older events beside it", () => {
  const view = acceptAll(null, [
    { type: "event", seq: 6, event: { type: "stage", stage: "probing" } },
    { type: "snapshot", snapshot: snapshot({ seq: 6, status: "processing", stage: "fusing" }) },
  ]);
  assert.equal(view!.snapshot.stage, "fusing");
});

test("failure, retry and completion", () => {
  let view = accept(null, snap(1, "processing"));
  view = accept(view, {
    type: "event",
    seq: 2,
    event: { type: "failed", error: { code: "model_unavailable", message: "429", retryable: true } },
  });
  assert.equal(view!.snapshot.status, "failed");
  assert.equal(view!.snapshot.error?.retryable, true);
  assert.equal(isSettled(view!.snapshot), false, "a retryable failure may still be retried");
  view = accept(view, { type: "event", seq: 3, event: { type: "status", status: "forwarding" } });
  assert.equal(view!.snapshot.error, null, "leaving failed clears the old error");
  view = accept(view, { type: "event", seq: 4, event: { type: "completed", result: result() } });
  assert.equal(view!.snapshot.status, "completed");
  assert.equal(view!.snapshot.result?.inventory.total_m3, 4.015);
  assert.equal(isSettled(view!.snapshot), true);
});

test("a queued session shows since when it waits, and its position once known", () => {
  let view = accept(null, snap(3, "processing"));
  view = accept(view, { type: "event", seq: 4, event: { type: "queued", since: 10_000, position: null } });
  view = accept(view, { type: "event", seq: 5, event: { type: "status", status: "queued" } });
  assert.deepEqual(view!.snapshot.queue, { since: 10_000, position: null });
  const nbsp = (s: string) => s.replace(/[\u00a0\u202f]/g, " ");
  const wait = queueWait(view!.snapshot, 50_000)!;
  assert.deepEqual(wait, { seconds: 40, position: null });
  assert.equal(nbsp(queueText("fr", wait)), "En file d'attente depuis 40 s…");
  assert.equal(nbsp(queueText("en", wait)), "Queued for 40 s…");
  view = accept(view, { type: "event", seq: 6, event: { type: "queued", since: 10_000, position: 3 } });
  const later = queueWait(view!.snapshot, 135_000)!;
  assert.equal(nbsp(queueText("fr", later)), "En file d'attente depuis 2 min 05 s (position 3)…");
  assert.equal(nbsp(queueText("en", later)), "Queued for 2 min 05 s (position 3)…");
  view = accept(view, { type: "event", seq: 7, event: { type: "status", status: "processing" } });
  assert.equal(view!.snapshot.queue, null, "taken: the wait is over");
  assert.equal(queueWait(view!.snapshot, 140_000), null);
  assert.equal(isSettled(view!.snapshot), false);
});

test("a recording whose length is still deferred and that no upload here feeds is cut off", () => {
  const recording = snapshot({ status: "uploading", upload: { offset: 262144, length: null } });
  assert.equal(isCutRecording(recording, false), true);
  assert.equal(isCutRecording(recording, true), false, "this page is still filming it");
  assert.equal(isCutRecording(snapshot({ status: "created", upload: { offset: 0, length: null } }), false), true);
  // A picked file (length known) resumes when picked again; a finished upload goes on.
  assert.equal(isCutRecording(snapshot({ status: "uploading", upload: { offset: 10, length: 1000 } }), false), false);
  assert.equal(isCutRecording(snapshot({ status: "processing", upload: { offset: 9, length: 9 } }), false), false);
});
