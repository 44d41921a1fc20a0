/** Choices for recording in the browser, kept pure so they are unit-tested. */

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

/**
 * The video bitrate cap for a recording of `height` lines: about 2.5 Mbit/s at 1080p and
 * 1.5 Mbit/s at 720p and below, against the 8–17 Mbit/s of a phone's own camera, so a mobile
 * uplink keeps up while filming (frames for the inventory need no more).
 */
export function recordingBitrate(height: number): number {
  return height >= 1000 ? 2_500_000 : 1_500_000;
}

/** How far the upload lags behind the camera: bytes not yet on the server, and in seconds. */
export function backlog(recordedBytes: number, uploadedBytes: number, bitsPerSecond: number): { bytes: number; seconds: number } {
  const bytes = Math.max(0, recordedBytes - uploadedBytes);
  return { bytes, seconds: bitsPerSecond > 0 ? (bytes * 8) / bitsPerSecond : 0 };
}

/** `dodolens-2026-11-26-0712.webm`: unique enough per person, and it tells what it is. */
export function recordingFilename(at: Date, mimeType: string): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}-${pad(at.getHours())}${pad(at.getMinutes())}${pad(at.getSeconds())}`;
  const extension = mimeType.startsWith("video/mp4") ? "mp4" : "webm";
  return `dodolens-${stamp}.${extension}`;
}
