/**
 * The shared Rust rules the page runs, compiled to wasm (crate web-wasm, built by
 * scripts/build-web-wasm): applying the customer's edits, searching the catalogue, checking the
 * contact. The edge runs the same functions on confirmation, so the totals on screen are the
 * ones the mover gets; there is no TypeScript copy of any rule.
 */
import init, { apply_edits, search_catalogue, validate_contact } from "../wasm/dodolens.js";
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
