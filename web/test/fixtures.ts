import type { AnalysisResult, Snapshot } from "../src/generated/protocol.js";

export function snapshot(overrides: Partial<Snapshot> = {}): Snapshot {
  return {
    session_id: "a".repeat(64),
    status: "uploading",
    seq: 1,
    upload: { offset: 0, length: 1000 },
    meta: { filename: "salon.mp4", filetype: "video/mp4", locale: "fr" },
    stage: null,
    progress: null,
    result: null,
    error: null,
    expires_at: null,
    ...overrides,
  };
}

export function result(): AnalysisResult {
  return {
    inventory: {
      rooms: [
        {
          room: "Salon",
          lines: [
            { key: "table_basse", label: "Table basse", quantity: 1, unit_volume_m3: 0.4, volume_m3: 0.4, source: "seen", confidence: 0.9, frames: [1] },
            { key: "canape_3_places", label: "Canapé 3 places", quantity: 1, unit_volume_m3: 2, volume_m3: 2, source: "seen", confidence: 0.95, frames: [0, 1] },
          ],
          subtotal_m3: 2.4,
          notes: [],
        },
        {
          room: "Chambre",
          lines: [
            { key: "carton_livres", label: "Carton livres", quantity: 15, unit_volume_m3: 0.03, volume_m3: 0.45, source: "said", confidence: null, frames: [] },
          ],
          subtotal_m3: 0.45,
          notes: ["le lit reste"],
        },
        {
          room: "salon ",
          lines: [
            { key: "fauteuil", label: "Fauteuil", quantity: 1, unit_volume_m3: 0.8, volume_m3: 0.8, source: "seen", confidence: 0.8, frames: [3] },
          ],
          subtotal_m3: 0.8,
          notes: ["fenêtre étroite"],
        },
      ],
      subtotal_m3: 3.65,
      margin_ratio: 0.1,
      margin_m3: 0.365,
      total_m3: 4.015,
      item_count: 18,
      warnings: [],
    },
    media: { duration_s: 12, width: 1280, height: 720, rotation: 0, has_audio: true, frames_analysed: 8 },
    cost: { input_tokens: 1, output_tokens: 1, audio_seconds: 12, eur: 0.01 },
    vision_model: "sim",
    transcription_model: "sim",
    simulated: true,
    processing_ms: 1200,
  };
}
