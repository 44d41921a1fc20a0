/**
 * The result section: total, subtotal and loading margin, the m³-per-room chart (CSS bars, no
 * chart library), the warnings, and one table per room with where each line came from.
 */
import type { AnalysisResult } from "./generated/protocol.js";
import { $ } from "./dom.js";
import { formatPercent, formatVolume } from "./format.js";
import { t, warningText, type Locale } from "./i18n.js";
import { groupRooms, roomBars, type RoomGroup } from "./inventory.js";

/** Fills the result section (totals, chart, warnings, one table per room) in `locale`. */
export function renderResultView(result: AnalysisResult, locale: Locale): void {
  const inventory = result.inventory;
  $("total").textContent = formatVolume(locale, inventory.total_m3);
  $("subtotal").textContent = formatVolume(locale, inventory.subtotal_m3);
  $("margin-label").textContent = t(locale, "result.margin", { percent: formatPercent(locale, inventory.margin_ratio) });
  $("margin").textContent = formatVolume(locale, inventory.margin_m3);
  $("item-count").textContent = t(locale, "result.items", { count: inventory.item_count });

  $("chart").replaceChildren(
    ...roomBars(inventory).map((bar) => {
      const item = document.createElement("li");
      const room = document.createElement("span");
      room.className = "room";
      room.textContent = bar.room;
      const track = document.createElement("span");
      track.className = "track";
      track.setAttribute("aria-hidden", "true");
      const fill = document.createElement("span");
      fill.className = "barfill";
      fill.style.display = "block";
      fill.style.width = `${(bar.scale * 100).toFixed(1)}%`;
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = formatVolume(locale, bar.volumeM3);
      item.append(room, track, value);
      return item;
    }),
  );

  const warnings = inventory.warnings;
  $("warnings").hidden = warnings.length === 0;
  $("warning-list").replaceChildren(
    ...warnings.map((warning) => {
      const item = document.createElement("li");
      item.dataset.code = warning.code;
      item.textContent = warningText(locale, warning.code, warning.message);
      return item;
    }),
  );

  $("rooms").replaceChildren(...groupRooms(inventory.rooms).map((group) => roomBlock(group, locale)));
  $("simulated").hidden = !result.simulated || warnings.some((w) => w.code === "simulated");
}

function roomBlock(group: RoomGroup, locale: Locale): HTMLElement {
  const block = document.createElement("section");
  block.className = "room-block";
  block.dataset.room = group.room;
  const heading = document.createElement("h3");
  const name = document.createElement("span");
  name.textContent = group.room;
  const subtotal = document.createElement("span");
  subtotal.textContent = formatVolume(locale, group.subtotalM3);
  heading.append(name, subtotal);
  const table = document.createElement("table");
  const caption = document.createElement("caption");
  caption.className = "visually-hidden";
  caption.textContent = `${group.room} — ${formatVolume(locale, group.subtotalM3)}`;
  const columns = document.createElement("colgroup");
  for (const name of ["item", "qty", "unit", "volume", "source"]) {
    const col = document.createElement("col");
    col.className = `c-${name}`;
    columns.append(col);
  }
  const head = document.createElement("thead");
  const headRow = document.createElement("tr");
  for (const key of ["col.item", "col.qty", "col.unit", "col.volume", "col.source"] as const) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = t(locale, key);
    headRow.append(th);
  }
  head.append(headRow);
  const body = document.createElement("tbody");
  for (const line of group.lines) {
    const row = document.createElement("tr");
    row.dataset.key = line.key;
    const cells = [
      line.label,
      String(line.quantity),
      formatVolume(locale, line.unit_volume_m3).replace(/\u00a0m³$/, ""),
      formatVolume(locale, line.volume_m3).replace(/\u00a0m³$/, ""),
    ];
    cells.forEach((text, i) => {
      const cell = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) {
        (cell as HTMLTableCellElement).scope = "row";
        cell.className = "item";
      }
      cell.textContent = text;
      row.append(cell);
    });
    const source = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = `source ${line.source}`;
    badge.textContent = t(locale, line.source === "seen" ? "source.seen" : "source.said");
    badge.title = t(locale, line.source === "seen" ? "source.seenLong" : "source.saidLong");
    source.append(badge);
    row.append(source);
    body.append(row);
  }
  table.append(caption, columns, head, body);
  block.append(heading, table);
  if (group.notes.length) {
    const notes = document.createElement("ul");
    notes.className = "notes";
    notes.setAttribute("aria-label", t(locale, "result.notes"));
    for (const note of group.notes) {
      const item = document.createElement("li");
      item.textContent = note;
      notes.append(item);
    }
    block.append(notes);
  }
  return block;
}
