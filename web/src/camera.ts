/**
 * Recording in the browser with the camera and the microphone (MediaRecorder), in a container the
 * origin reads. The stream is stopped as soon as the recording ends so the camera light goes off.
 */
import { pickRecordingType, recordingFilename } from "./recording.js";

export interface CameraRecording {
  /** Ends the recording and returns it as a file ready to upload. */
  stop(): Promise<File>;
}

/** Asks for the camera (the back one on phones) and the microphone, and starts recording. */
export async function startCamera(preview: HTMLVideoElement): Promise<CameraRecording> {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: true,
  });
  const mimeType = pickRecordingType((type) => MediaRecorder.isTypeSupported(type));
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
  const parts: Blob[] = [];
  recorder.ondataavailable = (event) => {
    if (event.data.size > 0) parts.push(event.data);
  };
  const stopped = new Promise<void>((resolve) => (recorder.onstop = () => resolve()));
  preview.srcObject = stream;
  recorder.start(1000);
  return {
    async stop() {
      if (recorder.state !== "inactive") recorder.stop();
      await stopped;
      for (const track of stream.getTracks()) track.stop();
      preview.srcObject = null;
      const type = (recorder.mimeType || mimeType || "video/webm").split(";")[0];
      return new File(parts, recordingFilename(new Date(), type), { type, lastModified: Date.now() });
    },
  };
}
