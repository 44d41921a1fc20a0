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
    queue: null,
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
            { id: 1, key: "table_basse", label: "Table basse", quantity: 1, unit_volume_m3: 0.4, volume_m3: 0.4, unit_weight_kg: 10, weight_kg: 10, flags: [], source: "seen", confidence: 0.9, frames: [1] },
            { id: 2, key: "canape_3_places", label: "Canapé 3 places", quantity: 1, unit_volume_m3: 2, volume_m3: 2, unit_weight_kg: 10, weight_kg: 10, flags: [], source: "seen", confidence: 0.95, frames: [0, 1] },
          ],
          subtotal_m3: 2.4,
          weight_kg: 20,
          notes: [],
        },
        {
          room: "Chambre",
          lines: [
            { id: 3, key: "carton_livres", label: "Carton livres", quantity: 15, unit_volume_m3: 0.03, volume_m3: 0.45, unit_weight_kg: 10, weight_kg: 150, flags: [], source: "said", confidence: null, frames: [] },
          ],
          subtotal_m3: 0.45,
          weight_kg: 150,
          notes: ["le lit reste"],
        },
        {
          room: "salon ",
          lines: [
            { id: 4, key: "fauteuil", label: "Fauteuil", quantity: 1, unit_volume_m3: 0.8, volume_m3: 0.8, unit_weight_kg: 10, weight_kg: 10, flags: [], source: "seen", confidence: 0.8, frames: [3] },
          ],
          subtotal_m3: 0.8,
          weight_kg: 10,
          notes: ["fenêtre étroite"],
        },
      ],
      subtotal_m3: 3.65,
      margin_ratio: 0.1,
      margin_m3: 0.365,
      total_m3: 4.015,
      total_weight_kg: 180,
      item_count: 18,
      flagged: [],
      warnings: [],
    },
    media: { duration_s: 12, width: 1280, height: 720, rotation: 0, has_audio: true, frames_analysed: 8, frame_times_s: [0, 1.5, 3, 4.5, 6, 7.5, 9, 10.5] },
    cost: { input_tokens: 1, output_tokens: 1, audio_seconds: 12, eur: 0.01 },
    vision_model: "sim",
    transcription_model: "sim",
    analyser: "openai",
    simulated: true,
    processing_ms: 1200,
  };
}
