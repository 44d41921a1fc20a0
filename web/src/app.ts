/**
 * The DodoLens page: DOM glue over DodoLensClient and the pure view modules.
 *
 * What the page remembers across a reload (localStorage): the language choice, and two secrets —
 * the handle of the session it is following and tus-js-client's resumable upload URLs, each of
 * which carries the session's capability token (whoever reads them can see, resume or delete the
 * session). localStorage is this origin's alone; the page loads no third-party script. Everything
 * shown is derived from the session snapshot, so a reload or a reconnect renders the same page.
 * While a recording uploads, IndexedDB holds its bytes the server has not acknowledged yet
 * (recording-buffer.ts): a reload then finishes the upload with what was filmed before it, and
 * the buffer is emptied once the upload is complete or discarded.
 */
import {
  DodoLensClient,
  DodoLensError,
  type Snapshot,
  type KeptVideo,
  type StreamedVideo,
  type UploadHandle,
  type UploadProgressInfo,
} from "./client.js";
import type { SessionSubscription, ConnectionMode } from "./subscription.js";
import type { UploadError } from "./upload.js";
import type { AnalysisResult } from "./generated/protocol.js";
import { startCamera, type CameraRecording } from "./camera.js";
import { RecordingBuffer, ResumeRefused } from "./recording-buffer.js";
import { backlogSeconds, Pacer } from "./rules.js";
import { $ } from "./dom.js";
import { errorText, pickLocale, queueText, t, uploadErrorText, type Locale, type MessageKey } from "./i18n.js";
import { formatBytes, formatClock, formatDuration, formatPercent, formatRate, formatVolume } from "./format.js";
import { ReviewPage } from "./review-page.js";
import { loadRules } from "./rules.js";
import { timeline, type Step } from "./timeline.js";
import { isCutRecording, queueWait } from "./session-state.js";

type Phase = "idle" | "recording" | "uploading" | "processing" | "failed" | "completed" | "gone";

const LOCALE_KEY = "dodolens.locale";
const ACTIVE_KEY = "dodolens.active";

interface ActiveSession {
  /** `{id}.{token}`: the secret capability for the session. */
  handle: string;
  filename: string;
}

const client = new DodoLensClient();
let locale: Locale = pickLocale(localStorage.getItem(LOCALE_KEY));
let active: ActiveSession | null = readActive();
let upload: UploadHandle | null = null;
let uploadDone = false;
let progress: UploadProgressInfo | null = null;
/** A recording's length, known once it stopped (tus learns it with the last PATCH). */
let recordedTotal = 0;
let resumedAt: number | null = null;
/** The kept bytes of the recording being uploaded (live, or finished after a reload). */
let kept: RecordingBuffer | null = null;
/** The upload finishes a recording a reload cut off: the inventory covers what came before. */
let finishingCutRecording = false;
/** Uploads started since the page loaded (boot must not replace one started meanwhile). */
let uploadsStarted = 0;
let subscription: SessionSubscription | null = null;
let snapshot: Snapshot | null = null;
let connection: ConnectionMode = "connecting";
let lastAnnouncedStep: Step | null = null;
let lastAnnouncedQuarter = -1;
/** The message under the start buttons, rendered in the current language each time. */
let startMessage: { text: (locale: Locale) => string; tone?: "info" } | null = null;

function message(key: MessageKey, params?: Record<string, string>, tone?: "info"): NonNullable<typeof startMessage> {
  return { text: (l) => t(l, key, params), tone };
}

function readActive(): ActiveSession | null {
  try {
    const value = JSON.parse(localStorage.getItem(ACTIVE_KEY) ?? "null") as ActiveSession | null;
    return value && typeof value.handle === "string" ? value : null;
  } catch {
    return null;
  }
}

function setActive(value: ActiveSession | null): void {
  active = value;
  if (value) localStorage.setItem(ACTIVE_KEY, JSON.stringify(value));
  else localStorage.removeItem(ACTIVE_KEY);
}

function setPhase(phase: Phase): void {
  $("main").dataset.phase = phase;
  $("start").hidden = !(phase === "idle" || phase === "recording" || phase === "gone");
  $("work").hidden = !(phase === "uploading" || phase === "processing" || phase === "failed");
  $("result").hidden = phase !== "completed";
}

function phase(): Phase {
  return $("main").dataset.phase as Phase;
}

function announce(text: string): void {
  $("announcer").textContent = text;
}

// ---- Language ----

function applyLocale(): void {
  document.documentElement.lang = locale;
  for (const element of document.querySelectorAll<HTMLElement>("[data-i18n]")) {
    element.textContent = t(locale, element.dataset.i18n as MessageKey);
  }
  const other: Locale = locale === "fr" ? "en" : "fr";
  const button = $("lang");
  button.textContent = t(locale, "lang.switch");
  button.lang = other;
  button.setAttribute("aria-label", t(locale, "lang.switchLabel"));
  renderStartMessage();
  renderProgress();
  if (snapshot) renderSnapshot(snapshot);
  void renderResumeNotice();
}

$("lang").addEventListener("click", () => {
  locale = locale === "fr" ? "en" : "fr";
  localStorage.setItem(LOCALE_KEY, locale);
  applyLocale();
});

// ---- Start: pick or record ----

function renderStartMessage(): void {
  const element = $("start-error");
  element.hidden = !startMessage;
  element.textContent = startMessage ? startMessage.text(locale) : "";
  element.dataset.tone = startMessage?.tone ?? "error";
}

function showStart(message: typeof startMessage = null): void {
  startMessage = message;
  renderStartMessage();
  setPhase("idle");
  void renderResumeNotice();
}

async function renderResumeNotice(): Promise<void> {
  const notice = $("resume");
  const pending = (await client.pendingUploads())[0];
  if (!pending) {
    notice.hidden = true;
    return;
  }
  let fraction = 0;
  try {
    const current = await client.snapshot(pending.handle);
    const length = current.upload.length ?? 0;
    fraction = length > 0 ? current.upload.offset / length : 0;
  } catch (error) {
    // Gone (purged or expired): nothing to resume. Otherwise offer it anyway; tus will ask again.
    if (error instanceof DodoLensError && (error.status === 404 || error.status === 410)) {
      await client.forgetPendingUpload(pending.storageKey);
      notice.hidden = true;
      return;
    }
  }
  $("resume-text").textContent = t(locale, "resume.notice", {
    name: pending.filename,
    percent: formatPercent(locale, fraction),
  });
  notice.dataset.storageKey = pending.storageKey;
  notice.hidden = false;
}

$("resume-forget").addEventListener("click", async () => {
  const notice = $("resume");
  const { session, storageKey } = notice.dataset;
  notice.hidden = true;
  if (storageKey) await client.forgetPendingUpload(storageKey);
  if (session) await client.cancel(session).catch(() => undefined);
  void renderResumeNotice();
});

$<HTMLInputElement>("file").addEventListener("change", (event) => {
  const input = event.target as HTMLInputElement;
  const file = input.files?.[0];
  input.value = "";
  if (file) startUpload(file, file.name);
});

let recording: CameraRecording | null = null;
let recordTimer: ReturnType<typeof setInterval> | undefined;

$("record").addEventListener("click", async () => {
  startMessage = null;
  renderStartMessage();
  const preview = $<HTMLVideoElement>("preview");
  const buffer = RecordingBuffer.forRecording();
  try {
    recording = await startCamera(preview, (bytes) => buffer.keep(bytes));
  } catch (error) {
    void buffer.discard();
    showStart(message("record.unavailable", { reason: (error as Error).message || String(error) }));
    return;
  }
  kept = buffer;
  $("recorder").hidden = false;
  $("record").hidden = true;
  setPhase("recording");
  // The upload starts with the recording: each second of video goes out as it is filmed.
  const source: StreamedVideo = { stream: recording.stream, filename: recording.filename, filetype: recording.mimeType };
  startUpload(source, recording.filename, "live");
  const started = performance.now();
  pacer = new Pacer();
  const tick = () => {
    $("rec-time").textContent = t(locale, "record.recording", { time: formatClock((performance.now() - started) / 1000) });
    renderRecordingUpload();
    paceRecording(performance.now() - started);
  };
  tick();
  recordTimer = setInterval(tick, 500);
  $("rec-stop").focus();
});

/** Watches the recording's backlog (shared::recording::Pacer, in wasm: freed with the recorder). */
let pacer: Pacer | null = null;
/** The frame rate the recording was lowered to (the uplink could not keep up), if it was. */
let loweredFrameRate: number | null = null;

function recordingBacklog(current: CameraRecording): number {
  return backlogSeconds(current.recordedBytes(), progress?.bytesSent ?? 0, current.bitsPerSecond);
}

/** Recorded vs uploaded bytes while filming, and how far the upload lags behind the camera. */
function renderRecordingUpload(): void {
  const current = recording;
  if (!current) return;
  const recorded = current.recordedBytes();
  const sent = progress?.bytesSent ?? 0;
  const lag = recordingBacklog(current);
  const parts = [t(locale, "record.upload", { sent: formatBytes(locale, sent), recorded: formatBytes(locale, recorded) })];
  if (lag >= 1) parts.push(t(locale, "record.backlog", { backlog: formatDuration(lag) }));
  if (loweredFrameRate !== null) parts.push(t(locale, "record.lowered", { fps: String(loweredFrameRate) }));
  $("rec-upload").textContent = parts.join(" · ");
}

/** A backlog that keeps growing lowers the frame rate for the rest of the recording. */
function paceRecording(elapsedMs: number): void {
  const current = recording;
  if (!current || !pacer) return;
  const fps = pacer.observe(elapsedMs, recordingBacklog(current));
  if (fps === undefined) return;
  void current.lowerFrameRate(fps).then((lowered) => {
    if (!lowered || recording !== current) return;
    loweredFrameRate = fps;
    announce(t(locale, "record.lowered", { fps: String(fps) }));
    renderRecordingUpload();
  });
}

function closeRecorder(): void {
  recording = null;
  pacer?.free();
  pacer = null;
  loweredFrameRate = null;
  clearInterval(recordTimer);
  $("recorder").hidden = true;
  $("record").hidden = false;
  $("rec-upload").textContent = "";
}

/** Stop: the rest of the recording drains, its length goes with the last PATCH. Discard:
 * the upload is cancelled (the server deletes what it holds) and the stream fails. */
async function stopRecording(keep: boolean): Promise<void> {
  const current = recording;
  if (!current) return;
  closeRecorder();
  if (keep) {
    setPhase("uploading");
    await current.stop();
    recordedTotal = current.recordedBytes();
    renderProgress();
    return;
  }
  const running = upload;
  upload = null;
  closeSubscription();
  setActive(null);
  snapshot = null;
  const cancelling = running?.cancel().catch(() => undefined);
  current.abort();
  await Promise.all([cancelling, discardKept()]);
  setPhase("idle");
}
$("rec-stop").addEventListener("click", () => void stopRecording(true));
$("rec-abort").addEventListener("click", () => void stopRecording(false));

// ---- Upload ----

/** Empties the browser's copy of the recording (its upload is complete or given up). */
async function discardKept(): Promise<void> {
  const buffer = kept;
  kept = null;
  await buffer?.discard();
}

/**
 * Uploads a picked file, a recording as it is filmed (`live`: the phase stays `recording`), or
 * (`kept`) the bytes a recording cut off by a reload left in the browser.
 */
function startUpload(file: File | StreamedVideo | KeptVideo, filename: string, mode: "file" | "live" | "kept" = "file"): void {
  uploadsStarted += 1;
  closeSubscription();
  snapshot = null;
  progress = null;
  recordedTotal = 0;
  resumedAt = null;
  finishingCutRecording = mode === "kept";
  uploadDone = false;
  lastAnnouncedStep = null;
  lastAnnouncedQuarter = -1;
  startMessage = null;
  $("filename").textContent = filename;
  $("failure").hidden = true;
  $("retry").hidden = true;
  $("restart").hidden = true;
  $("cancel").hidden = false;
  if (mode !== "live") setPhase("uploading");
  renderProgress();
  renderTimeline(null);
  const buffer = kept;
  const handle = client.upload(file, {
    locale,
    onSession: (handle) => {
      setActive({ handle, filename });
      if (mode === "live") void buffer?.bind(handle);
      follow(handle);
    },
    onAcknowledged: (offset) => void buffer?.acknowledge(offset),
    onResume: (offset) => {
      resumedAt = offset;
      renderProgress();
    },
    onProgress: (info) => {
      progress = info;
      renderProgress();
    },
  });
  upload = handle;
  const ticker = setInterval(() => {
    if (upload !== handle || uploadDone) return clearInterval(ticker);
    if (!progress) return;
    progress = handle.measure();
    renderProgress();
  }, 1000);
  handle.done.then(
    () => {
      if (upload !== handle) return;
      uploadDone = true;
      void discardKept();
      renderProgress();
    },
    (error: UploadError | ResumeRefused) => {
      if (upload !== handle) return;
      upload = null;
      void discardKept();
      if (recording) {
        recording.abort();
        closeRecorder();
      }
      const session = active?.handle;
      if (error instanceof ResumeRefused && session) return void endCutRecording(session);
      closeSubscription();
      setActive(null);
      showStart({ text: (l) => uploadErrorText(l, (error as UploadError).status) });
    },
  );
  $("main").focus();
}

function renderProgress(): void {
  const fromServer = snapshot?.upload;
  const sent = progress?.bytesSent ?? fromServer?.offset ?? 0;
  const total = progress?.bytesTotal || recordedTotal || fromServer?.length || 0;
  const fraction = uploadDone ? 1 : total > 0 ? sent / total : 0;
  $("upload-fill").style.width = `${(fraction * 100).toFixed(1)}%`;
  const bar = $("upload-bar");
  bar.setAttribute("aria-valuenow", String(Math.floor(fraction * 100)));
  bar.setAttribute("aria-valuetext", formatPercent(locale, fraction));
  const stats = total
    ? t(locale, "upload.stats", {
        percent: formatPercent(locale, fraction),
        sent: formatBytes(locale, uploadDone ? total : sent),
        total: formatBytes(locale, total),
      })
    : "";
  $("upload-stats").textContent = uploadDone || fraction >= 1 ? `${t(locale, "upload.done")} · ${stats}` : stats;
  const extra: string[] = [];
  if (!uploadDone && progress?.bytesPerSecond) extra.push(formatRate(locale, progress.bytesPerSecond));
  if (!uploadDone && progress?.etaSeconds != null && fraction < 1) {
    extra.push(t(locale, "upload.eta", { eta: formatDuration(progress.etaSeconds) }));
  }
  if (resumedAt !== null && resumedAt > 0) extra.push(t(locale, "upload.resumed", { offset: formatBytes(locale, resumedAt) }));
  $("upload-extra").textContent = extra.join(" · ");
  $("upload-note").hidden = !finishingCutRecording;
  $("upload-note").textContent = finishingCutRecording ? t(locale, "record.finishing") : "";
  const quarter = Math.floor(fraction * 4);
  if (phase() === "uploading" && quarter > lastAnnouncedQuarter) {
    lastAnnouncedQuarter = quarter;
    announce(`${t(locale, "upload.title")} ${formatPercent(locale, fraction)}`);
  }
}

// ---- Session ----

function follow(handle: string): void {
  closeSubscription();
  subscription = client.subscribe(handle, {
    onUpdate: (next) => {
      snapshot = next;
      renderSnapshot(next);
    },
    onConnection: (mode) => {
      connection = mode;
      renderConnection();
    },
    onGone: () => {
      if (phase() === "completed") return;
      setActive(null);
      showStart(message("error.gone"));
      setPhase("gone");
    },
  });
}

function closeSubscription(): void {
  subscription?.close();
  subscription = null;
}

function renderConnection(): void {
  const element = $("connection");
  const key: MessageKey | null =
    connection === "polling" ? "connection.polling" : connection === "reconnecting" ? "connection.reconnecting" : null;
  element.hidden = !key;
  element.textContent = key ? t(locale, key) : "";
  element.dataset.mode = connection;
}

function renderTimeline(current: Snapshot | null): void {
  const entries = current
    ? timeline(current)
    : timeline({
        session_id: "",
        status: "created",
        seq: 0,
        upload: { offset: 0, length: 0 },
        meta: { filename: null, filetype: "", locale },
        stage: null,
        progress: null,
        queue: null,
        result: null,
        error: null,
        expires_at: null,
      });
  const list = $("timeline");
  list.replaceChildren(
    ...entries.map((entry) => {
      const item = document.createElement("li");
      item.dataset.step = entry.step;
      item.dataset.state = entry.state;
      if (entry.state === "active") item.setAttribute("aria-current", "step");
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.setAttribute("aria-hidden", "true");
      const label = document.createElement("span");
      label.textContent = t(locale, `stage.${entry.step}`);
      const state = document.createElement("span");
      state.className = "state";
      state.textContent =
        entry.state === "active" && entry.progress !== null
          ? formatPercent(locale, entry.progress)
          : t(locale, `state.${entry.state}`);
      item.append(dot, label, state);
      return item;
    }),
  );
  const activeEntry = entries.find((e) => e.state === "active");
  if (activeEntry && activeEntry.step !== lastAnnouncedStep && activeEntry.step !== "upload") {
    lastAnnouncedStep = activeEntry.step;
    announce(t(locale, "live.stage", { stage: t(locale, `stage.${activeEntry.step}`) }));
  }
}

let queueTimer: ReturnType<typeof setInterval> | undefined;

/** While queued, the wait so far, counted every second from the snapshot's `since`. */
function renderQueue(): void {
  const wait = snapshot ? queueWait(snapshot, Date.now()) : null;
  $("queue").hidden = !wait;
  $("queue-text").textContent = wait ? queueText(locale, wait) : "";
  if (wait && queueTimer === undefined) {
    announce(queueText(locale, wait));
    queueTimer = setInterval(renderQueue, 1000);
  } else if (!wait && queueTimer !== undefined) {
    clearInterval(queueTimer);
    queueTimer = undefined;
  }
}

/** A recording whose page was reloaded, and whose unsent bytes the browser did not keep (or
 * not all of them): it cannot be finished, so what the edge holds is deleted at once rather
 * than left to the idle expiry, and the page says so. */
async function endCutRecording(handle: string): Promise<void> {
  closeSubscription();
  setActive(null);
  snapshot = null;
  await client.cancel(handle).catch(() => undefined);
  showStart(message("record.cut"));
}

function renderSnapshot(current: Snapshot): void {
  if (active && isCutRecording(current, upload !== null)) {
    void endCutRecording(active.handle);
    return;
  }
  if (!upload) $("filename").textContent = current.meta.filename ?? active?.filename ?? "";
  if (current.status !== "created" && current.status !== "uploading") uploadDone = true;
  renderTimeline(current);
  renderQueue();
  renderProgress();
  const failure = current.status === "failed" ? current.error : null;
  $("failure").hidden = !failure;
  $("failure-text").textContent = failure ? errorText(locale, failure.code) : "";
  $("failure-hint").hidden = !failure?.retryable;
  $("retry").hidden = !failure?.retryable;
  $<HTMLButtonElement>("retry").disabled = false;
  $("restart").hidden = !failure || failure.retryable;
  $("cancel").hidden = current.status === "completed";
  switch (current.status) {
    case "completed":
      if (current.result) renderResult(current.result);
      break;
    case "failed":
      if (phase() !== "failed") announce(t(locale, "live.failed"));
      setPhase("failed");
      break;
    case "purged":
      setActive(null);
      showStart(message("error.gone"));
      setPhase("gone");
      break;
    case "created":
    case "uploading":
      // While filming, the recorder stays on screen; the upload shows in it.
      if (phase() !== "recording") setPhase("uploading");
      break;
    default:
      setPhase("processing");
  }
}

$("retry").addEventListener("click", async () => {
  const handle = active?.handle;
  if (!handle) return;
  const button = $<HTMLButtonElement>("retry");
  button.disabled = true;
  try {
    await client.retry(handle);
    $("failure").hidden = true;
    button.hidden = true;
    setPhase("processing");
    if (!subscription) follow(handle);
  } catch (error) {
    button.disabled = false;
    $("failure-text").textContent = (error as Error).message;
  }
});

$("cancel").addEventListener("click", async () => {
  const session = active?.handle;
  const running = upload;
  upload = null;
  closeSubscription();
  setActive(null);
  snapshot = null;
  if (running && !uploadDone) await running.cancel().catch(() => undefined);
  else if (session) await client.cancel(session).catch(() => undefined);
  await discardKept();
  showStart(message("cancelled", {}, "info"));
  $("file-label").focus();
});

function newVideo(): void {
  review.clear();
  closeSubscription();
  upload = null;
  snapshot = null;
  setActive(null);
  showStart();
  $("file-label").focus();
}
$("restart").addEventListener("click", newVideo);
$("new").addEventListener("click", newVideo);

// ---- Result ----

const review = new ReviewPage(client, () => locale, announce);

function renderResult(result: AnalysisResult): void {
  const wasShown = phase() === "completed";
  // The handle is the capability the confirmation needs.
  const handle = active?.handle ?? "";
  review.show(handle, result, snapshot?.meta.locale ?? locale);
  setPhase("completed");
  if (!wasShown) {
    announce(t(locale, "live.completed", { total: formatVolume(locale, result.inventory.total_m3) }));
    $("result").focus();
  }
}

// ---- Boot ----

async function boot(): Promise<void> {
  // A file picked while the page was starting wins: its upload (or its refusal) stays on screen.
  // Counted from the very start: a file picked while the rules load counts too.
  const started = uploadsStarted;
  await loadRules();
  applyLocale();
  // A recording cut off by a reload is finished from what the browser kept of it. An upload cut
  // short by a reload waits for its file to be picked again (the browser cannot reopen it by
  // itself); a finished upload is followed where it stands.
  const restored = await RecordingBuffer.restore(active?.handle ?? null);
  if (uploadsStarted !== started) return void restored?.discard();
  if (active && restored) {
    kept = restored;
    startUpload({ uploadUrl: client.uploadUrl(active.handle), reader: restored.reader() }, active.filename, "kept");
    recordedTotal = restored.length;
    return;
  }
  const pending = await client.pendingUploads();
  if (uploadsStarted !== started) return;
  if (active && !pending.some((p) => p.handle === active?.handle)) {
    $("filename").textContent = active.filename;
    setPhase("processing");
    renderTimeline(null);
    follow(active.handle);
  } else {
    showStart();
  }
}

// Marks the end of start-up (tests wait for it; nothing else reads it).
void boot().finally(() => ($("main").dataset.booted = "true"));
