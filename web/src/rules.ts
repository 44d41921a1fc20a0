/**
 * The shared Rust rules the page runs, compiled to wasm (crate web-wasm, built by
 * scripts/build-web-wasm): applying the customer's edits, searching the catalogue, checking the
 * contact, the recorder's bitrate, backlog and frame-rate steps (shared::recording) and what it
 * keeps for a reload (shared::recording_buffer). The edge runs the
 * same review functions on confirmation, so the totals on screen are the ones the mover gets;
 * there is no TypeScript copy of any rule.
 */
import init, {
  Pacer,
  apply_edits,
  recording_backlog_seconds,
  recording_bitrate,
  recording_pieces,
  recording_released,
  recording_resume,
  search_catalogue,
  validate_contact,
} from "../wasm/dodolens.js";
import type { Contact, ContactField, Edit, Inventory, ItemFlag } from "./generated/protocol.js";

export interface CatalogueMatch {
  key: string;
  label: string;
  volume_m3: number;
  weight_kg: number;
  flags: ItemFlag[];
}

export type ContactCheck = { contact: Contact } | { fields: ContactField[] };

let ready: Promise<unknown> | null = null;

/** Loads the module once (dodolens_bg.wasm next to app.js). */
export function loadRules(): Promise<unknown> {
  ready ??= init({ module_or_path: new URL("dodolens_bg.wasm", import.meta.url) });
  return ready;
}

/** The inventory after `edits`; throws (with the refused edit's index) on an invalid list. */
export function applyEdits(base: Inventory, edits: readonly Edit[], locale: string): Inventory {
  return JSON.parse(apply_edits(JSON.stringify(base), JSON.stringify(edits), locale)) as Inventory;
}

export function searchCatalogue(query: string, locale: string, limit = 8): CatalogueMatch[] {
  return JSON.parse(search_catalogue(query, locale, limit)) as CatalogueMatch[];
}

export function validateContact(contact: Contact, now = Date.now()): ContactCheck {
  return JSON.parse(validate_contact(JSON.stringify(contact), now)) as ContactCheck;
}

/** A kept chunk of a recording: bytes `[offset, offset + len)`. */
export interface Span {
  offset: number;
  len: number;
}

/** Why kept chunks cannot finish an upload (shared::recording_buffer::Refusal). */
export type ResumeRefusal =
  | { reason: "empty" }
  | { reason: "released"; kept_from: number; server: number }
  | { reason: "short"; kept_to: number; server: number }
  | { reason: "gap"; at: number };

export type ResumeCheck = { resume: { from: number; length: number } } | { refused: ResumeRefusal };

/** A part of a kept chunk: `take` bytes from `skip` into the chunk stored at `offset`. */
export interface Piece {
  offset: number;
  skip: number;
  take: number;
}

/** The offsets of the kept chunks (in order) the server's acknowledgement of `acknowledged` bytes releases. */
export function releasedChunks(spans: readonly Span[], acknowledged: number): number[] {
  return JSON.parse(recording_released(JSON.stringify(spans), acknowledged)) as number[];
}

/** Whether the kept chunks finish an upload the server holds `server` bytes of. */
export function resumeFrom(spans: readonly Span[], server: number): ResumeCheck {
  return JSON.parse(recording_resume(JSON.stringify(spans), server)) as ResumeCheck;
}

/** The parts of the kept chunks that make up `[start, end)`. */
export function piecesOf(spans: readonly Span[], start: number, end: number): Piece[] {
  return JSON.parse(recording_pieces(JSON.stringify(spans), start, end)) as Piece[];
}

/** The video bitrate cap for a recording of `height` lines. */
export function recordingBitrate(height: number): number {
  return recording_bitrate(height);
}

/** How far the upload lags behind the camera, in seconds of video at `bitsPerSecond`. */
export function backlogSeconds(recorded: number, uploaded: number, bitsPerSecond: number): number {
  return recording_backlog_seconds(recorded, uploaded, bitsPerSecond);
}

/** Says when to lower the recording's frame rate: `observe` returns the new rate, if any. */
export { Pacer };
