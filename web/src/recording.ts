/** Choices for recording in the browser, kept pure so they are unit-tested. */

/** Containers the origin accepts, in order of preference for MediaRecorder. */
export const RECORDING_TYPES = [
  "video/webm;codecs=vp9,opus",
  "video/webm;codecs=vp8,opus",
  "video/webm",
  "video/mp4;codecs=avc1,mp4a",
  "video/mp4",
] as const;

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
