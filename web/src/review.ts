/**
 * The customer's review of an inventory: the model's inventory, the list of edits made so far,
 * and the inventory they give (computed by the shared rules in wasm, never here). Undo drops the
 * last edit; typing a quantity replaces the previous quantity edit of the same line, so one
 * correction is one step. A confirmation holds until the next edit.
 */
import type { Confirmed, Edit, Inventory } from "./generated/protocol.js";
import { applyEdits } from "./rules.js";

export class Review {
  readonly edits: Edit[] = [];
  current: Inventory;
  confirmed: Confirmed | null = null;

  constructor(
    readonly base: Inventory,
    /** The session's locale: labels of added items match the model's. */
    readonly locale: string,
  ) {
    this.current = applyEdits(base, [], locale);
  }

  /** Applies `edit`; false (and nothing changes) when the rules refuse it. */
  edit(edit: Edit): boolean {
    const last = this.edits[this.edits.length - 1];
    const replaces = edit.type === "set_quantity" && last?.type === "set_quantity" && last.line === edit.line;
    const next = replaces ? [...this.edits.slice(0, -1), edit] : [...this.edits, edit];
    try {
      this.current = applyEdits(this.base, next, this.locale);
    } catch {
      return false;
    }
    this.edits.splice(0, this.edits.length, ...next);
    return true;
  }

  undo(): boolean {
    if (!this.edits.length) return false;
    this.current = applyEdits(this.base, this.edits.slice(0, -1), this.locale);
    this.edits.pop();
    return true;
  }

  /** An id no line has (ids are the model's, then the customer's additions). */
  nextLineId(): number {
    const ids = [...this.base.rooms, ...this.current.rooms].flatMap((room) => room.lines.map((line) => line.id));
    const added = this.edits.flatMap((edit) => ("line" in edit ? [edit.line] : []));
    return Math.max(0, ...ids, ...added) + 1;
  }

  rooms(): string[] {
    return this.current.rooms.map((room) => room.room);
  }
}
