/**
 * The inventory as the page shows it: rooms merged by name (the model may name the same room twice
 * across frames, "Salon" and "salon "), lines largest first, and one bar per room for the chart.
 */
import type { Inventory, InventoryLine, RoomInventory } from "./generated/protocol.js";

export interface RoomGroup {
  room: string;
  lines: InventoryLine[];
  subtotalM3: number;
  notes: string[];
}

export interface RoomBar {
  room: string;
  volumeM3: number;
  /** Bar length relative to the largest room, 0–1. */
  scale: number;
  /** Share of the subtotal, 0–1. */
  share: number;
}

function roomKey(name: string): string {
  return name.trim().toLocaleLowerCase();
}

export function groupRooms(rooms: readonly RoomInventory[]): RoomGroup[] {
  const groups = new Map<string, RoomGroup>();
  for (const room of rooms) {
    const key = roomKey(room.room);
    const group = groups.get(key);
    if (group) {
      group.lines.push(...room.lines);
      group.subtotalM3 += room.subtotal_m3;
      group.notes.push(...room.notes);
    } else {
      groups.set(key, {
        room: room.room.trim(),
        lines: [...room.lines],
        subtotalM3: room.subtotal_m3,
        notes: [...room.notes],
      });
    }
  }
  for (const group of groups.values()) {
    group.lines.sort((a, b) => b.volume_m3 - a.volume_m3 || a.label.localeCompare(b.label));
  }
  return [...groups.values()];
}

export function roomBars(inventory: Inventory): RoomBar[] {
  const groups = groupRooms(inventory.rooms);
  const largest = Math.max(0, ...groups.map((g) => g.subtotalM3));
  const total = groups.reduce((sum, g) => sum + g.subtotalM3, 0);
  return groups.map((g) => ({
    room: g.room,
    volumeM3: g.subtotalM3,
    scale: largest > 0 ? g.subtotalM3 / largest : 0,
    share: total > 0 ? g.subtotalM3 / total : 0,
  }));
}
