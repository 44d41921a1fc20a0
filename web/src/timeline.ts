/**
 * The five steps a user sees, derived from the session's status and the origin's finer stages.
 * The origin reports seven stages; people care about five: their upload, the extraction of frames
 * and sound, the transcription, the analysis, and the result.
 */
import type { Snapshot, Stage } from "./generated/protocol.js";

export type Step = "upload" | "extraction" | "transcription" | "analysis" | "result";
export const STEPS: readonly Step[] = ["upload", "extraction", "transcription", "analysis", "result"];

export type StepState = "pending" | "active" | "done" | "failed";

export interface TimelineEntry {
  step: Step;
  state: StepState;
  /** Progress of the active step, 0–1, when known. */
  progress: number | null;
}

const STEP_OF_STAGE: Record<Stage, Step> = {
  received: "extraction",
  probing: "extraction",
  extracting: "extraction",
  transcribing: "transcription",
  analysing: "analysis",
  fusing: "analysis",
  delivering: "result",
};

/** Which step is under way (or was, when the session failed); null once completed. */
export function currentStep(snapshot: Snapshot): Step | null {
  switch (snapshot.status) {
    case "created":
    case "uploading":
      return "upload";
    case "uploaded":
    case "forwarding":
    case "queued":
      return "extraction";
    case "processing":
    case "failed":
      if (snapshot.stage) return STEP_OF_STAGE[snapshot.stage];
      // A deferred length (null) is a recording still being uploaded.
      return (snapshot.upload.length ?? Infinity) > snapshot.upload.offset ? "upload" : "extraction";
    case "completed":
    case "purged":
      return null;
  }
}

export function timeline(snapshot: Snapshot): TimelineEntry[] {
  if (snapshot.status === "completed") {
    return STEPS.map((step) => ({ step, state: "done", progress: null }));
  }
  const current = currentStep(snapshot);
  const index = current ? STEPS.indexOf(current) : -1;
  return STEPS.map((step, i): TimelineEntry => {
    if (i < index) return { step, state: "done", progress: null };
    if (i > index || snapshot.status === "purged") return { step, state: "pending", progress: null };
    if (snapshot.status === "failed") return { step, state: "failed", progress: null };
    const length = snapshot.upload.length ?? 0;
    const progress = step === "upload" ? (length > 0 ? snapshot.upload.offset / length : null) : snapshot.progress;
    return { step, state: "active", progress };
  });
}
