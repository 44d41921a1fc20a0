/**
 * Choices for recording in the browser that depend on the browser alone (containers, timeslice,
 * file name), kept pure so they are unit-tested. The bitrate cap, the backlog and the frame-rate
 * steps are shared::recording's, through wasm (rules.ts).
 */

/**
 * Containers the origin accepts, in order of preference for MediaRecorder. The recording is
 * uploaded while it is filmed, so it must be readable front to back: MediaRecorder's MP4 is
 * fragmented (`moov` first, then `moof`+`mdat`; Safari, Chrome 126+), its WebM a live stream
 * (Firefox, older Chrome). Only the ordered concatenation of the chunks is a file.
 */
export const RECORDING_TYPES = [
  "video/mp4;codecs=avc1,mp4a",
  "video/mp4",
  "video/webm;codecs=vp9,opus",
  "video/webm;codecs=vp8,opus",
  "video/webm",
] as const;

/** MediaRecorder hands over a chunk about every second, so the upload follows the camera. */
export const TIMESLICE_MS = 1000;

/**
 * A keyframe every 2 s where the browser lets us ask (Chromium's `videoKeyFrameIntervalDuration`;
 * others ignore it): the origin picks frames among keyframes, and a fragment is flushed only at
 * one, so they also keep the upload close behind the camera.
 */
export const KEYFRAME_INTERVAL_MS = 2000;

/** The first supported type, or null to let the browser choose. */
export function pickRecordingType(isSupported: (type: string) => boolean): string | null {
  return RECORDING_TYPES.find((type) => isSupported(type)) ?? null;
}

/** `dodolens-2026-11-26-0712.webm`: unique enough per person, and it tells what it is. */
export function recordingFilename(at: Date, mimeType: string): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}-${pad(at.getHours())}${pad(at.getMinutes())}${pad(at.getSeconds())}`;
  const extension = mimeType.startsWith("video/mp4") ? "mp4" : "webm";
  return `dodolens-${stamp}.${extension}`;
}
