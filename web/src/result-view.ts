/**
 * The result section as the customer reviews it: totals (m³, kg, items; announced politely as
 * they change), the m³-per-room chart (CSS bars), the warnings, the flagged items, and one table
 * per room whose lines can be corrected: quantity, move to another room, remove; rooms can be
 * renamed. Everything shown is the inventory the shared rules computed from the edits; this
 * module only draws it and reports what the customer did.
 */
import type { AnalysisResult, Inventory, InventoryLine, RoomInventory } from "./generated/protocol.js";
import { $ } from "./dom.js";
import { flagText, formatWeight } from "./cube-sheet.js";
import { formatPercent, formatVolume } from "./format.js";
import { t, warningText, type Locale } from "./i18n.js";
import { roomBars } from "./inventory.js";

export interface ReviewActions {
  setQuantity(line: number, quantity: number): void;
  remove(line: number): void;
  move(line: number, room: string): void;
  rename(room: string, to: string): void;
}

/** Fills the result section from `inventory` (the reviewed one) in `locale`. */
export function renderResultView(
  result: AnalysisResult,
  inventory: Inventory,
  locale: Locale,
  actions: ReviewActions,
): void {
  const focused = (document.activeElement as HTMLElement | null)?.dataset?.focus;
  $("total").textContent = formatVolume(locale, inventory.total_m3);
  $("subtotal").textContent = formatVolume(locale, inventory.subtotal_m3);
  $("margin-label").textContent = t(locale, "result.margin", { percent: formatPercent(locale, inventory.margin_ratio) });
  $("margin").textContent = formatVolume(locale, inventory.margin_m3);
  $("total-kg").textContent = formatWeight(locale, inventory.total_weight_kg);
  $("item-count").textContent = t(locale, "result.items", { count: inventory.item_count });

  $("chart").replaceChildren(
    ...roomBars(inventory).map((bar) => {
      const item = document.createElement("li");
      const room = span("room", bar.room);
      const track = span("track", "");
      track.setAttribute("aria-hidden", "true");
      const fill = span("barfill", "");
      fill.style.display = "block";
      fill.style.width = `${(bar.scale * 100).toFixed(1)}%`;
      track.append(fill);
      item.append(room, track, span("value", formatVolume(locale, bar.volumeM3)));
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

  $("flagged").hidden = inventory.flagged.length === 0;
  $("flagged-list").replaceChildren(
    ...inventory.flagged.map((flagged) => {
      const item = document.createElement("li");
      item.textContent = `${flagged.quantity} × ${flagged.label} (${flagged.room}) — ${flagText(locale, flagged.flags)}`;
      return item;
    }),
  );

  const rooms = inventory.rooms.map((room) => room.room);
  $("rooms").replaceChildren(...inventory.rooms.map((room) => roomBlock(room, rooms, locale, actions)));
  $("simulated").hidden = !result.simulated || warnings.some((w) => w.code === "simulated");
  $("analyser").textContent = t(locale, result.analyser === "local" ? "result.analyser.local" : "result.analyser.openai");
  if (focused) restoreFocus(focused);
}

/** Focuses the re-rendered element the customer was on, caret at the end of a text field. */
function restoreFocus(key: string): void {
  const element = document.querySelector<HTMLElement>(`[data-focus="${CSS.escape(key)}"]`);
  element?.focus();
  if (element instanceof HTMLInputElement && element.type === "text") {
    element.setSelectionRange(element.value.length, element.value.length);
  }
}

function span(className: string, text: string): HTMLSpanElement {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function button(text: string, label: string, focus: string, onClick: () => void): HTMLButtonElement {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "link";
  element.textContent = text;
  element.setAttribute("aria-label", label);
  element.dataset.focus = focus;
  element.addEventListener("click", onClick);
  return element;
}

function roomBlock(room: RoomInventory, rooms: string[], locale: Locale, actions: ReviewActions): HTMLElement {
  const block = document.createElement("section");
  block.className = "room-block";
  block.dataset.room = room.room;
  const heading = document.createElement("h3");
  const name = span("name", room.room);
  const rename = button(t(locale, "review.rename"), t(locale, "review.renameLabel", { room: room.room }), `rename-${room.room}`, () =>
    startRename(heading, room.room, locale, actions),
  );
  const subtotal = span("subtotal", `${formatVolume(locale, room.subtotal_m3)} · ${formatWeight(locale, room.weight_kg)}`);
  heading.append(name, rename, subtotal);

  const table = document.createElement("table");
  const caption = document.createElement("caption");
  caption.className = "visually-hidden";
  caption.textContent = `${room.room} — ${formatVolume(locale, room.subtotal_m3)}`;
  const columns = document.createElement("colgroup");
  for (const col of ["item", "qty", "volume", "actions"]) {
    const element = document.createElement("col");
    element.className = `c-${col}`;
    columns.append(element);
  }
  const head = document.createElement("thead");
  const headRow = document.createElement("tr");
  for (const key of ["col.item", "col.qty", "col.volume", "col.actions"] as const) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = t(locale, key);
    headRow.append(th);
  }
  head.append(headRow);
  const body = document.createElement("tbody");
  for (const line of room.lines) body.append(lineRow(line, room.room, rooms, locale, actions));
  table.append(caption, columns, head, body);
  block.append(heading, table);
  if (room.notes.length) {
    const notes = document.createElement("ul");
    notes.className = "notes";
    notes.setAttribute("aria-label", t(locale, "result.notes"));
    for (const note of room.notes) {
      const item = document.createElement("li");
      item.textContent = note;
      notes.append(item);
    }
    block.append(notes);
  }
  return block;
}

function lineRow(line: InventoryLine, room: string, rooms: string[], locale: Locale, actions: ReviewActions): HTMLElement {
  const row = document.createElement("tr");
  row.dataset.key = line.key;
  row.dataset.line = String(line.id);
  if (line.flags.length) row.classList.add("flagged");
  const item = document.createElement("th");
  item.scope = "row";
  item.className = "item";
  const detail = `${formatVolume(locale, line.unit_volume_m3)} · ${formatWeight(locale, line.weight_kg)}`;
  const source = span(`source ${line.source}`, t(locale, `source.${line.source}`));
  source.title = t(locale, `source.${line.source}Long`);
  item.append(span("label", line.label), span("detail", detail));
  if (line.flags.length) item.append(span("flags", flagText(locale, line.flags)));
  item.append(source);

  const quantity = document.createElement("td");
  const input = document.createElement("input");
  // Text, not number: the caret can be put back at the end after a re-render while typing.
  input.type = "text";
  input.className = "qty";
  input.inputMode = "numeric";
  input.pattern = "[0-9]*";
  input.maxLength = 3;
  input.value = String(line.quantity);
  input.dataset.focus = `qty-${line.id}`;
  input.setAttribute("aria-label", t(locale, "review.quantityLabel", { item: line.label }));
  input.addEventListener("input", () => {
    const value = Number(input.value);
    if (input.value !== "" && Number.isInteger(value) && value > 0) actions.setQuantity(line.id, value); // capped by the rules
  });
  input.addEventListener("change", () => {
    if (input.value !== "" && Number(input.value) === 0) actions.setQuantity(line.id, 0);
  });
  quantity.append(input);

  const volume = document.createElement("td");
  volume.className = "volume";
  volume.textContent = formatVolume(locale, line.volume_m3).replace(/\u00a0m³$/, "");

  const tools = document.createElement("td");
  tools.className = "tools";
  const move = document.createElement("select");
  move.className = "move";
  move.dataset.focus = `move-${line.id}`;
  move.setAttribute("aria-label", t(locale, "review.moveLabel", { item: line.label }));
  for (const name of rooms) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    option.selected = name === room;
    move.append(option);
  }
  move.addEventListener("change", () => actions.move(line.id, move.value));
  const remove = button("✕", t(locale, "review.removeLabel", { item: line.label }), `remove-${line.id}`, () =>
    actions.remove(line.id),
  );
  remove.classList.add("remove");
  tools.append(move, remove);
  row.append(item, quantity, volume, tools);
  return row;
}

/** Turns a room heading into a name field: Enter renames, Escape or leaving cancels. */
function startRename(heading: HTMLElement, room: string, locale: Locale, actions: ReviewActions): void {
  const field = document.createElement("input");
  field.type = "text";
  field.className = "rename";
  field.value = room;
  field.maxLength = 80;
  field.setAttribute("aria-label", t(locale, "review.renameLabel", { room }));
  let done = false;
  const finish = (commit: boolean) => {
    if (done) return;
    done = true;
    const to = field.value.trim();
    if (commit && to && to !== room) actions.rename(room, to);
    else heading.replaceChildren(...saved);
  };
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter") finish(true);
    if (event.key === "Escape") finish(false);
  });
  field.addEventListener("blur", () => finish(true));
  const saved = [...heading.childNodes];
  heading.replaceChildren(field);
  field.focus();
  field.select();
}
