/**
 * DOM glue of the review: the editable result, the catalogue search and free items, undo, the
 * contact form and the confirmation, the CSV download and the printable cube sheet. The numbers
 * all come from {@link Review} (the shared rules in wasm).
 */
import type { DodoLensClient } from "./client.js";
import { DodoLensError } from "./client.js";
import type { AnalysisResult, Contact, ContactField, Edit } from "./generated/protocol.js";
import { $ } from "./dom.js";
import { formatVolume } from "./format.js";
import { formatWeight, inventoryCsv, renderCubeSheet } from "./cube-sheet.js";
import { t, type Locale, type MessageKey } from "./i18n.js";
import { renderResultView, type ReviewActions } from "./result-view.js";
import { Review } from "./review.js";
import { searchCatalogue, validateContact } from "./rules.js";

interface Current {
  handle: string;
  result: AnalysisResult;
  review: Review;
}

const FIELDS: readonly ContactField[] = ["name", "email", "phone", "reach", "move_date", "from_postcode", "to_postcode"];

export class ReviewPage {
  private current: Current | null = null;
  private statusKey: { key: MessageKey; params?: Record<string, string> } | null = null;

  constructor(
    private readonly client: DodoLensClient,
    private readonly locale: () => Locale,
    private readonly announce: (text: string) => void,
  ) {
    $("undo").addEventListener("click", () => this.change(() => this.review()?.undo() ?? false));
    $<HTMLInputElement>("add-search").addEventListener("input", () => this.renderSearch());
    $("free-add").addEventListener("click", () => this.addFree());
    $<HTMLFormElement>("contact").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.confirm();
    });
    $("csv").addEventListener("click", () => this.downloadCsv());
    $("print").addEventListener("click", () => window.print());
  }

  /** Shows `result` for review; a result already under review keeps its edits. */
  show(handle: string, result: AnalysisResult, sessionLocale: string): void {
    if (this.current?.handle !== handle) {
      this.current = { handle, result, review: new Review(result.inventory, sessionLocale) };
      this.statusKey = null;
    }
    this.render();
  }

  clear(): void {
    this.current = null;
  }

  render(): void {
    const current = this.current;
    if (!current) return;
    const locale = this.locale();
    const inventory = current.review.current;
    renderResultView(current.result, inventory, locale, this.actions());
    $<HTMLButtonElement>("undo").disabled = current.review.edits.length === 0;
    $("room-names").replaceChildren(
      ...current.review.rooms().map((room) => Object.assign(document.createElement("option"), { value: room })),
    );
    const room = $<HTMLInputElement>("add-room");
    if (!room.value) room.value = current.review.rooms()[0] ?? "";
    this.renderSearch();
    this.renderStatus();
    renderCubeSheet($("cubesheet"), inventory, this.contactOrNull(), locale, current.review.confirmed !== null);
  }

  private review(): Review | null {
    return this.current?.review ?? null;
  }

  private actions(): ReviewActions {
    const edit = (e: Edit) => this.change(() => this.review()?.edit(e) ?? false);
    return {
      setQuantity: (line, quantity) => edit({ type: "set_quantity", line, quantity }),
      remove: (line) => {
        edit({ type: "remove", line });
        $("undo").focus();
      },
      move: (line, room) => edit({ type: "move", line, room }),
      rename: (room, to) => edit({ type: "rename_room", room, to }),
    };
  }

  /** Runs an edit; on success re-renders, announces the totals and withdraws a confirmation. */
  private change(run: () => boolean): void {
    const current = this.current;
    if (!current) return;
    const wasConfirmed = current.review.confirmed !== null;
    const ok = run();
    const error = $("review-error");
    error.hidden = ok;
    error.textContent = ok ? "" : t(this.locale(), "review.refused");
    if (ok && wasConfirmed) {
      current.review.confirmed = null;
      this.statusKey = { key: "confirm.cleared" };
      void this.client.unconfirm(current.handle).catch(() => undefined);
    }
    this.render();
    if (ok) {
      const inventory = current.review.current;
      const locale = this.locale();
      this.announce(
        t(locale, "review.totals", {
          total: formatVolume(locale, inventory.total_m3),
          weight: formatWeight(locale, inventory.total_weight_kg),
          count: String(inventory.item_count),
        }),
      );
    }
  }

  private renderSearch(): void {
    const review = this.review();
    const query = $<HTMLInputElement>("add-search").value;
    const locale = this.locale();
    const matches = review && query.trim() ? searchCatalogue(query, review.locale, 8) : [];
    $("add-count").textContent = query.trim() ? t(locale, "add.count", { count: matches.length }) : "";
    $("add-results").replaceChildren(
      ...matches.map((match) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "result";
        button.dataset.key = match.key;
        button.textContent = `${match.label} · ${formatVolume(locale, match.volume_m3)} · ${formatWeight(locale, match.weight_kg)}`;
        button.setAttribute("aria-label", t(locale, "add.add", { item: match.label }));
        button.addEventListener("click", () => this.addItem(match.key));
        item.append(button);
        return item;
      }),
    );
  }

  private target(): { room: string; quantity: number } {
    const room = $<HTMLInputElement>("add-room").value.trim() || this.review()?.rooms()[0] || t(this.locale(), "add.room");
    const quantity = Math.max(1, Math.min(200, Math.floor(Number($<HTMLInputElement>("add-qty").value) || 1)));
    return { room, quantity };
  }

  private addItem(key: string): void {
    const review = this.review();
    if (!review) return;
    const { room, quantity } = this.target();
    this.change(() => review.edit({ type: "add_item", line: review.nextLineId(), room, key, quantity }));
    $<HTMLInputElement>("add-search").value = "";
    this.renderSearch();
    $("add-search").focus();
  }

  private addFree(): void {
    const review = this.review();
    const label = $<HTMLInputElement>("free-label").value.trim();
    const volume = Number($<HTMLInputElement>("free-volume").value);
    const weightText = $<HTMLInputElement>("free-weight").value.trim();
    if (!review || !label || !(volume > 0)) return;
    const { room, quantity } = this.target();
    this.change(() =>
      review.edit({
        type: "add_free",
        line: review.nextLineId(),
        room,
        label,
        unit_volume_m3: volume,
        unit_weight_kg: weightText ? Number(weightText) : null,
        quantity,
      }),
    );
  }

  private contactForm(): Contact {
    const value = (id: string) => $<HTMLInputElement>(id).value;
    return {
      name: value("c-name"),
      email: value("c-email") || null,
      phone: value("c-phone") || null,
      move_date: value("c-date"),
      from_postcode: value("c-from"),
      to_postcode: value("c-to"),
    };
  }

  private contactOrNull(): Contact | null {
    const check = validateContact(this.contactForm());
    return "contact" in check ? check.contact : null;
  }

  private showFieldErrors(fields: readonly ContactField[]): void {
    const locale = this.locale();
    for (const field of FIELDS) {
      const error = $(`e-${field}`);
      const wrong = fields.includes(field);
      error.hidden = !wrong;
      error.textContent = wrong ? t(locale, `contact.error.${field}`) : "";
      const input = document.querySelector<HTMLInputElement>(`#contact [name="${field}"]`);
      if (input) input.setAttribute("aria-invalid", String(wrong || (field === "email" && fields.includes("reach"))));
    }
    const first = fields[0] === "reach" ? "email" : fields[0];
    document.querySelector<HTMLInputElement>(`#contact [name="${first}"]`)?.focus();
  }

  private async confirm(): Promise<void> {
    const current = this.current;
    if (!current) return;
    const check = validateContact(this.contactForm());
    if ("fields" in check) return this.showFieldErrors(check.fields);
    this.showFieldErrors([]);
    const button = $<HTMLButtonElement>("confirm-button");
    button.disabled = true;
    this.statusKey = { key: "confirm.sending" };
    this.renderStatus();
    try {
      const confirmed = await this.client.confirm(current.handle, {
        edits: current.review.edits,
        contact: check.contact,
      });
      current.review.confirmed = confirmed;
      const locale = this.locale();
      this.statusKey = {
        key: "confirm.done",
        params: {
          total: formatVolume(locale, confirmed.inventory.total_m3),
          weight: formatWeight(locale, confirmed.inventory.total_weight_kg),
        },
      };
    } catch (error) {
      this.statusKey = { key: "confirm.failed" };
      if (error instanceof DodoLensError && error.fields.length) this.showFieldErrors(error.fields);
    } finally {
      button.disabled = false;
    }
    this.render();
    $("confirm-status").focus();
  }

  private renderStatus(): void {
    const status = $("confirm-status");
    status.hidden = !this.statusKey;
    status.tabIndex = -1;
    status.dataset.state = this.review()?.confirmed ? "confirmed" : (this.statusKey?.key ?? "");
    status.textContent = this.statusKey ? t(this.locale(), this.statusKey.key, this.statusKey.params) : "";
  }

  private downloadCsv(): void {
    const current = this.current;
    if (!current) return;
    const inventory = current.review.current;
    const locale = this.locale();
    const margin = `${t(locale, "result.margin", { percent: String(Math.round(inventory.margin_ratio * 100)) + " %" })}`;
    const blob = new Blob([inventoryCsv(inventory, margin)], { type: "text/csv;charset=utf-8" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `dodolens-inventaire-${current.handle.slice(0, 8)}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 0);
  }
}
