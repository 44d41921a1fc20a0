/**
 * Recording in the browser with the camera and the microphone (MediaRecorder), in a container the
 * origin reads front to back, handed over as a stream while it is filmed: the upload starts with
 * the first second, not after the stop. The bitrate is capped so a mobile uplink keeps up. Each
 * chunk is handed to `keep` (the page's buffer for a reload) and enters the stream only once
 * kept, so the upload never sends a byte the page does not have. The bitrate cannot change once
 * recording, but the camera's frame rate can (`lowerFrameRate`), which lowers the bytes per
 * second in the same stream (shared::recording). The camera is released as soon as the
 * recording ends so its light goes off.
 */
import { KEYFRAME_INTERVAL_MS, pickRecordingType, recordingFilename, TIMESLICE_MS } from "./recording.js";
import { recordingBitrate } from "./rules.js";

/** MediaRecorder options of the spec that TypeScript's DOM types lack (Chromium has them). */
interface RecorderOptions extends MediaRecorderOptions {
  videoKeyFrameIntervalDuration?: number;
}

export interface CameraRecording {
  /** The recording's bytes in order, as MediaRecorder produces them; ends at `stop()`. */
  readonly stream: ReadableStream<Uint8Array>;
  readonly filename: string;
  readonly mimeType: string;
  /** The video bitrate asked of the recorder. */
  readonly bitsPerSecond: number;
  /** Bytes recorded so far. */
  recordedBytes(): number;
  /** Caps the camera's frame rate for the rest of the recording; false if the camera refused. */
  lowerFrameRate(fps: number): Promise<boolean>;
  /** Ends the recording: the stream ends after the last chunk. */
  stop(): Promise<void>;
  /** Ends it and fails the stream: nothing more is sent. */
  abort(): void;
}

/** Asks for the camera (the back one on phones) and the microphone, and starts recording. */
export async function startCamera(
  preview: HTMLVideoElement,
  keep: (bytes: Uint8Array) => Promise<void>,
): Promise<CameraRecording> {
  const media = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: true,
  });
  const height = media.getVideoTracks()[0]?.getSettings().height ?? 720;
  const bitsPerSecond = recordingBitrate(height);
  const requested = pickRecordingType((type) => MediaRecorder.isTypeSupported(type));
  const options: RecorderOptions = {
    ...(requested ? { mimeType: requested } : {}),
    videoBitsPerSecond: bitsPerSecond,
    videoKeyFrameIntervalDuration: KEYFRAME_INTERVAL_MS,
  };
  const recorder = new MediaRecorder(media, options);
  let recorded = 0;
  let aborted = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => (controller = c) });
  // Blobs are read one after the other, so the bytes keep the recorder's order.
  let queue = Promise.resolve();
  recorder.ondataavailable = (event) => {
    if (event.data.size === 0) return;
    recorded += event.data.size;
    const blob = event.data;
    queue = queue.then(async () => {
      const bytes = new Uint8Array(await blob.arrayBuffer());
      await keep(bytes);
      if (!aborted) controller.enqueue(bytes);
    });
  };
  const stopped = new Promise<void>((resolve) => (recorder.onstop = () => resolve()));
  const release = () => {
    for (const track of media.getTracks()) track.stop();
    preview.srcObject = null;
  };
  preview.srcObject = media;
  recorder.start(TIMESLICE_MS);
  const mimeType = (recorder.mimeType || requested || "video/webm").split(";")[0];
  return {
    stream,
    filename: recordingFilename(new Date(), mimeType),
    mimeType,
    bitsPerSecond,
    recordedBytes: () => recorded,
    async lowerFrameRate(fps) {
      const track = media.getVideoTracks()[0];
      if (!track) return false;
      return track.applyConstraints({ ...track.getConstraints(), frameRate: { ideal: fps, max: fps } }).then(
        () => true,
        () => false,
      );
    },
    async stop() {
      if (recorder.state !== "inactive") recorder.stop();
      await stopped;
      release();
      await queue;
      controller.close();
    },
    abort() {
      aborted = true;
      recorder.ondataavailable = null;
      if (recorder.state !== "inactive") recorder.stop();
      release();
      controller.error(new Error("recording discarded"));
    },
  };
}
