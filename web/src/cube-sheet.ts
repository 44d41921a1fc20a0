/**
 * The mover's cube sheet from an inventory: the CSV download (stable columns, one row per line
 * plus the loading margin, so the m³ column sums to the total) and the printable sheet (a header
 * with the totals and the move, one table per room, flagged items highlighted; the print
 * stylesheet shows only this).
 */
import type { Contact, Inventory, ItemFlag } from "./generated/protocol.js";
import { formatVolume } from "./format.js";
import { t, type Locale } from "./i18n.js";

/** The CSV's columns, in this order, forever: movers' imports depend on it. */
export const CSV_COLUMNS = ["room", "item", "quantity", "unit_m3", "m3", "kg", "flags", "source"] as const;

/** RFC 4180: quoted when needed, quotes doubled, CRLF line ends. */
function field(value: string | number): string {
  const text = typeof value === "number" ? number(value) : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A dot decimal without float noise (0.6000000000000001 → 0.6). */
function number(value: number): string {
  return String(Math.round(value * 1e6) / 1e6);
}

export function inventoryCsv(inventory: Inventory, marginLabel: string): string {
  const rows: (string | number)[][] = [[...CSV_COLUMNS]];
  for (const room of inventory.rooms) {
    for (const line of room.lines) {
      rows.push([
        room.room,
        line.label,
        line.quantity,
        line.unit_volume_m3,
        line.volume_m3,
        line.weight_kg,
        line.flags.join(";"),
        line.source,
      ]);
    }
  }
  rows.push(["", marginLabel, "", "", inventory.margin_m3, 0, "", "margin"]);
  return rows.map((row) => row.map(field).join(",")).join("\r\n") + "\r\n";
}

export function formatWeight(locale: Locale, kg: number): string {
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(kg)}\u00a0kg`;
}

export function flagText(locale: Locale, flags: readonly ItemFlag[]): string {
  return flags.map((flag) => t(locale, `flag.${flag}`)).join(", ");
}

function cell(tag: "td" | "th", text: string, className?: string): HTMLElement {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

/** Fills `container` with the printable sheet. */
export function renderCubeSheet(
  container: HTMLElement,
  inventory: Inventory,
  contact: Contact | null,
  locale: Locale,
  confirmed: boolean,
): void {
  const header = document.createElement("header");
  const title = document.createElement("h2");
  title.textContent = t(locale, "sheet.title");
  const facts = document.createElement("dl");
  const fact = (key: Parameters<typeof t>[1], value: string) => {
    const row = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = t(locale, key);
    const dd = document.createElement("dd");
    dd.textContent = value;
    row.append(dt, dd);
    facts.append(row);
  };
  fact("sheet.total", formatVolume(locale, inventory.total_m3));
  fact("sheet.weight", formatWeight(locale, inventory.total_weight_kg));
  fact("sheet.items", String(inventory.item_count));
  fact("sheet.status", t(locale, confirmed ? "sheet.confirmed" : "sheet.draft"));
  if (contact) {
    fact("contact.name", contact.name);
    fact("contact.moveDate", contact.move_date);
    fact("sheet.route", `${contact.from_postcode} → ${contact.to_postcode}`);
    const reach = [contact.phone, contact.email].filter(Boolean).join(" · ");
    if (reach) fact("sheet.reach", reach);
  }
  header.append(title, facts);
  const tables = inventory.rooms.map((room) => {
    const table = document.createElement("table");
    const caption = document.createElement("caption");
    caption.textContent = `${room.room} — ${formatVolume(locale, room.subtotal_m3)} · ${formatWeight(locale, room.weight_kg)}`;
    const head = document.createElement("tr");
    for (const key of ["col.item", "col.qty", "col.unit", "col.volume", "col.weight", "col.flags", "col.source"] as const) {
      head.append(cell("th", t(locale, key)));
    }
    const thead = document.createElement("thead");
    thead.append(head);
    const body = document.createElement("tbody");
    for (const line of room.lines) {
      const row = document.createElement("tr");
      if (line.flags.length) row.className = "flagged";
      row.append(
        cell("td", line.label),
        cell("td", String(line.quantity)),
        cell("td", formatVolume(locale, line.unit_volume_m3)),
        cell("td", formatVolume(locale, line.volume_m3)),
        cell("td", formatWeight(locale, line.weight_kg)),
        cell("td", flagText(locale, line.flags)),
        cell("td", t(locale, `source.${line.source}`)),
      );
      body.append(row);
    }
    table.append(caption, thead, body);
    return table;
  });
  const margin = document.createElement("p");
  margin.textContent = `${t(locale, "sheet.margin")} ${formatVolume(locale, inventory.margin_m3)}`;
  container.replaceChildren(header, ...tables, margin);
}
