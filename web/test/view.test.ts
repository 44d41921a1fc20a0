import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay } from "../src/backoff.js";
import { ETA_WINDOW_MS, RateMeter, UploadRate } from "../src/rate.js";
import { formatBytes, formatClock, formatDuration, formatPercent, formatRate, formatVolume } from "../src/format.js";
import { timeline, currentStep } from "../src/timeline.js";
import { groupRooms, roomBars } from "../src/inventory.js";
import { errorText, pickLocale, t, uploadErrorText, warningText } from "../src/i18n.js";
import { pickRecordingType, recordingFilename } from "../src/recording.js";
import { parsePoll } from "../src/subscription.js";
import { fingerprintOf, sessionHandleFromUrl } from "../src/upload.js";
import { result, snapshot } from "./fixtures.js";

const nbsp = (s: string) => s.replace(/[\u00a0\u202f]/g, " ");

test("backoff grows, is capped and never zero", () => {
  const options = { baseMs: 500, maxMs: 8000 };
  assert.equal(backoffDelay(0, options, 0), 250);
  assert.equal(backoffDelay(0, options, 0.5), 375);
  assert.equal(backoffDelay(3, options, 0.5), 3000);
  assert.equal(backoffDelay(20, options, 0.5), 6000);
  assert.ok(backoffDelay(20, options, 0.9999) <= 8000);
  assert.equal(backoffDelay(20, options, 0), 4000);
});

test("rate over a sliding window, ETA from it, reset on restart", () => {
  const meter = new RateMeter(2000);
  assert.equal(meter.bytesPerSecond(), null);
  meter.record(0, 0);
  meter.record(1_000_000, 1000);
  assert.equal(meter.bytesPerSecond(), 1_000_000);
  assert.equal(meter.etaSeconds(5_000_000), 4);
  meter.record(1_000_000, 5000); // stalled for 4 s: old samples leave the window
  assert.equal(meter.bytesPerSecond(), 0);
  assert.equal(meter.etaSeconds(5_000_000), null);
  meter.record(200, 5100); // a new upload from a lower offset
  assert.equal(meter.bytesPerSecond(), null);
  meter.record(1_000_000, 6000);
  assert.equal(meter.etaSeconds(1_000_000), 0);
});

test("the upload ETA: measured over a long window, none before 3 s of it nor while stalled", () => {
  const rate = new UploadRate();
  const mb = 1_000_000;
  // The first second fills the socket buffer: fast, and not what the uplink carries.
  rate.record(0, 0);
  rate.record(4 * mb, 1000);
  assert.ok(rate.bytesPerSecond()! > 0, "the speed shows at once");
  assert.equal(rate.etaSeconds(1000 * mb), null, "no ETA from one burst");
  // Then 1 MB/s, steadily, with one slow second that does not swing the ETA by much.
  let bytes = 4 * mb;
  for (let s = 2; s * 1000 <= ETA_WINDOW_MS + 5000; s++) {
    bytes += s === 20 ? 0.2 * mb : mb;
    rate.record(bytes, s * 1000);
  }
  const eta = rate.etaSeconds(1000 * mb)!;
  const remaining = (1000 * mb - bytes) / mb;
  assert.ok(Math.abs(eta - remaining) / remaining < 0.05, `ETA ${eta} s for ${remaining} s at 1 MB/s`);
  // Stalled: the ETA goes at once, though the long window still holds throughput.
  const stalledAt = (ETA_WINDOW_MS + 5000) / 1000 + 5;
  rate.record(bytes, stalledAt * 1000);
  assert.equal(rate.bytesPerSecond(), 0);
  assert.equal(rate.etaSeconds(1000 * mb), null);
});

test("formatting in French and English", () => {
  assert.equal(nbsp(formatBytes("fr", 12_345_678)), "12,3 Mo");
  assert.equal(nbsp(formatBytes("en", 12_345_678)), "12.3 MB");
  assert.equal(nbsp(formatBytes("fr", 999)), "999 o");
  assert.equal(nbsp(formatRate("en", 4_200_000)), "4.2 MB/s");
  assert.equal(nbsp(formatVolume("fr", 4.015)), "4,02 m³");
  assert.equal(nbsp(formatVolume("en", 0.06)), "0.06 m³");
  assert.equal(nbsp(formatDuration(0.2)), "1 s");
  assert.equal(nbsp(formatDuration(125)), "2 min 05 s");
  assert.equal(nbsp(formatDuration(3720)), "1 h 02 min");
  assert.equal(nbsp(formatPercent("fr", 0.426)), "42 %");
  assert.equal(formatPercent("en", 0.999), "99%", "never 100 % before the end");
  assert.equal(formatPercent("en", 1.5), "100%");
  assert.equal(formatClock(65.9), "1:05");
});

test("timeline follows status and stages", () => {
  const states = (s: ReturnType<typeof snapshot>) => timeline(s).map((e) => e.state).join(",");
  assert.equal(states(snapshot({ status: "uploading", upload: { offset: 250, length: 1000 } })), "active,pending,pending,pending,pending");
  assert.equal(timeline(snapshot({ status: "uploading", upload: { offset: 250, length: 1000 } }))[0].progress, 0.25);
  assert.equal(states(snapshot({ status: "forwarding" })), "done,active,pending,pending,pending");
  assert.equal(
    states(snapshot({ status: "queued", queue: { since: 1, position: null } })),
    "done,active,pending,pending,pending",
    "queued: uploaded, waiting to be extracted",
  );
  assert.equal(states(snapshot({ status: "processing", stage: "transcribing" })), "done,done,active,pending,pending");
  assert.equal(states(snapshot({ status: "processing", stage: "fusing", progress: 0.5 })), "done,done,done,active,pending");
  assert.equal(timeline(snapshot({ status: "processing", stage: "fusing", progress: 0.5 }))[3].progress, 0.5);
  assert.equal(states(snapshot({ status: "processing", stage: "delivering" })), "done,done,done,done,active");
  assert.equal(states(snapshot({ status: "completed" })), "done,done,done,done,done");
  assert.equal(
    states(snapshot({ status: "failed", stage: "analysing", upload: { offset: 1000, length: 1000 } })),
    "done,done,done,failed,pending",
  );
  assert.equal(currentStep(snapshot({ status: "failed", stage: null, upload: { offset: 1000, length: 1000 } })), "extraction");
  assert.equal(currentStep(snapshot({ status: "failed", stage: null, upload: { offset: 10, length: 1000 } })), "upload");
});

test("rooms merge by name, lines largest first, bars scale to the largest room", () => {
  const inventory = result().inventory;
  const groups = groupRooms(inventory.rooms);
  assert.deepEqual(groups.map((g) => g.room), ["Salon", "Chambre"]);
  assert.deepEqual(groups[0].lines.map((l) => l.key), ["canape_3_places", "fauteuil", "table_basse"]);
  assert.ok(Math.abs(groups[0].subtotalM3 - 3.2) < 1e-9);
  assert.deepEqual(groups[0].notes, ["fenêtre étroite"]);
  const bars = roomBars(inventory);
  assert.equal(bars[0].scale, 1);
  assert.ok(Math.abs(bars[1].scale - 0.45 / 3.2) < 1e-9);
  assert.ok(Math.abs(bars[0].share + bars[1].share - 1) < 1e-9);
  assert.deepEqual(roomBars({ ...inventory, rooms: [] }), []);
});

test("messages: French by default, placeholders filled, warnings and errors localised", () => {
  assert.equal(pickLocale(null), "fr");
  assert.equal(pickLocale("de"), "fr");
  assert.equal(pickLocale("en"), "en");
  assert.equal(t("fr", "action.retry"), "Réessayer");
  assert.equal(t("en", "upload.eta", { eta: "5 s" }), "5 s left");
  assert.equal(t("fr", "result.items", {}), "{count} objets");
  assert.match(errorText("fr", "model_unavailable"), /indisponible/);
  assert.match(warningText("en", "too_dark", "dark"), /Dark video/);
  assert.match(warningText("fr", "unknown_item", "piano"), /\(piano\)$/);
  assert.equal(uploadErrorText("fr", 415), "Ce fichier n'est pas une vidéo lisible.");
  assert.match(uploadErrorText("en", 0), /connection was lost/);
  assert.match(uploadErrorText("fr", 500), /code 500/);
});

test("recording picks a container the origin reads", () => {
  assert.equal(pickRecordingType((type) => type === "video/webm"), "video/webm");
  assert.equal(pickRecordingType(() => false), null);
  // Fragmented MP4 where the browser offers it (read front to back as it arrives), else WebM.
  assert.equal(pickRecordingType(() => true), "video/mp4;codecs=avc1,mp4a");
  assert.equal(pickRecordingType((type) => type.startsWith("video/webm")), "video/webm;codecs=vp9,opus");
  assert.equal(recordingFilename(new Date(2026, 10, 26, 7, 5, 9), "video/mp4"), "dodolens-2026-11-26-070509.mp4");
});

test("long-poll answers: bare snapshot or snapshot with events", () => {
  const bare = parsePoll(snapshot({ seq: 3 }));
  assert.equal(bare.length, 1);
  assert.equal(bare[0].type, "snapshot");
  const wrapped = parsePoll({
    snapshot: snapshot({ seq: 5 }),
    events: [{ type: "event", seq: 5, event: { type: "stage", stage: "probing" } }],
  });
  assert.deepEqual(wrapped.map((m) => m.type), ["snapshot", "event"]);
  assert.deepEqual(parsePoll(null), []);
});

test("session handle and fingerprint", () => {
  const handle = `${"f".repeat(64)}.${"A_-b".repeat(10)}xyz`;
  assert.equal(sessionHandleFromUrl(`http://127.0.0.1:8787/api/dodo-lens/uploads/${handle}`), handle);
  assert.equal(sessionHandleFromUrl(`/api/dodo-lens/uploads/${handle}/`), handle);
  const file = new File([new Uint8Array(10)], "a.mp4", { type: "video/mp4", lastModified: 5 });
  const same = new File([new Uint8Array(10)], "a.mp4", { type: "video/mp4", lastModified: 5 });
  const bigger = new File([new Uint8Array(11)], "a.mp4", { type: "video/mp4", lastModified: 5 });
  assert.equal(fingerprintOf(file, "/e"), fingerprintOf(same, "/e"));
  assert.notEqual(fingerprintOf(file, "/e"), fingerprintOf(bigger, "/e"));
  assert.ok(fingerprintOf(file, "/e").startsWith("dodolens-v1|"));
});

test("the CSV has stable columns, quotes what needs it and its m³ and kg columns sum to the totals", async () => {
  const { CSV_COLUMNS, inventoryCsv } = await import("../src/cube-sheet.js");
  const inventory = result().inventory;
  inventory.rooms[0].lines[0].label = 'Table "basse", ronde';
  inventory.rooms[0].lines[0].flags = ["fragile", "disassembly"];
  const csv = inventoryCsv(inventory, "Marge de chargement (10 %)");
  const rows = csv.trimEnd().split("\r\n");
  assert.equal(rows[0], CSV_COLUMNS.join(","));
  assert.equal(rows[0], "room,item,quantity,unit_m3,m3,kg,flags,source");
  assert.equal(rows[1], 'Salon,"Table ""basse"", ronde",1,0.4,0.4,10,fragile;disassembly,seen');
  assert.equal(rows.length, 1 + 4 + 1, "header, one row per line, the margin");
  const cells = rows.slice(1).map((row) => row.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/));
  const m3 = cells.reduce((sum, row) => sum + Number(row[4]), 0);
  const kg = cells.reduce((sum, row) => sum + Number(row[5]), 0);
  assert.ok(Math.abs(m3 - inventory.total_m3) < 1e-9, `${m3} vs ${inventory.total_m3}`);
  assert.equal(kg, inventory.total_weight_kg);
  assert.equal(cells[cells.length - 1][7], "margin");
});
