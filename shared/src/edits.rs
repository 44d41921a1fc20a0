//! The customer's corrections to the model's inventory, as data.
//!
//! No model inventory is exact, so before the mover quotes, the customer changes quantities,
//! removes and adds items, moves lines between rooms and renames rooms. Each change is an
//! [`Edit`]; [`apply`] replays the list over the inventory the model produced and recomputes
//! everything with fusion's rules (volumes and weights unit × quantity, nothing rounded, rooms and
//! totals summed in order, quantities capped at [`MAX_QUANTITY`], a free item's volume clamped
//! like a model estimate). The page runs this very function (compiled to wasm) to show totals as
//! the customer types, and the edge runs it again on confirmation, so the browser's numbers are
//! never trusted and never differ.
//!
//! Edits are reversible: [`undo`] gives, for a list, the edits that take the inventory back to
//! where it was (the page's "Annuler" and the property tests use it). To make that exact, nothing
//! is ever deleted from the working model: a removed line is hidden, a room emptied by moves
//! stays in place (invisible) so a line moved back returns where it was, and lines keep their
//! original order whatever room they are in.
//!
//! Each line keeps where it came from: `seen`/`said` while untouched, `corrected` once its
//! quantity differs from the model's, `added` for the customer's own lines.

use crate::catalogue::{self, normalise};
use crate::fusion::{
    self, inventory_line, room_inventory, summarise, LineFacts, MAX_OTHER_VOLUME_M3, MAX_QUANTITY,
};
use crate::protocol::{Edit, Inventory, InventoryLine, ItemSource, Warning};
use thiserror::Error;

/// More edits than this in one review is not a person typing.
pub const MAX_EDITS: usize = 2000;
/// Longest room name or free item label, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// Largest weight accepted for one free item.
pub const MAX_FREE_WEIGHT_KG: f64 = 1000.0;

/// Why an edit list cannot be applied. The page never produces these; a hand-made request gets
/// them as a 422 from the edge.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EditError {
    #[error("edit {index}: no line {line}")]
    UnknownLine { index: usize, line: u32 },
    #[error("edit {index}: line {line} already exists")]
    DuplicateLine { index: usize, line: u32 },
    #[error("edit {index}: {key:?} is not a catalogue key")]
    UnknownItem { index: usize, key: String },
    #[error("edit {index}: no room {room:?}")]
    UnknownRoom { index: usize, room: String },
    #[error("edit {index}: a room named {room:?} already has items")]
    RoomTaken { index: usize, room: String },
    #[error("edit {index}: a name is empty or longer than {MAX_NAME_CHARS} characters")]
    BadName { index: usize },
    #[error("more than {MAX_EDITS} edits")]
    TooMany,
}

/// The inventory after `edits`, in `locale` for the labels of added catalogue items.
pub fn apply(base: &Inventory, edits: &[Edit], locale: &str) -> Result<Inventory, EditError> {
    let mut model = Model::new(base);
    model.run(edits, locale)?;
    Ok(model.inventory())
}

/// The edits that undo `edits` (to be applied after them), newest first.
pub fn undo(base: &Inventory, edits: &[Edit], locale: &str) -> Result<Vec<Edit>, EditError> {
    let mut model = Model::new(base);
    let mut inverses = model.run(edits, locale)?;
    inverses.reverse();
    Ok(inverses)
}

/// A line of the working model. `quantity` 0 or `removed` hides it; nothing is deleted.
struct Slot {
    line: InventoryLine,
    room: usize,
    removed: bool,
    /// The model's quantity, `None` for a line the customer added.
    model_quantity: Option<u32>,
}

struct Room {
    key: String,
    name: String,
    notes: Vec<String>,
}

struct Model {
    rooms: Vec<Room>,
    slots: Vec<Slot>,
    margin_ratio: f64,
    warnings: Vec<Warning>,
}

impl Model {
    fn new(base: &Inventory) -> Model {
        let mut model = Model {
            rooms: Vec::with_capacity(base.rooms.len()),
            slots: Vec::new(),
            margin_ratio: base.margin_ratio,
            warnings: base.warnings.clone(),
        };
        for room in &base.rooms {
            let index = model.rooms.len();
            model.rooms.push(Room {
                key: normalise(&room.room),
                name: room.room.clone(),
                notes: room.notes.clone(),
            });
            for line in &room.lines {
                model.slots.push(Slot {
                    line: line.clone(),
                    room: index,
                    removed: false,
                    model_quantity: Some(line.quantity),
                });
            }
        }
        model
    }

    /// Applies every edit in order; returns the inverse of each, in the same order.
    fn run(&mut self, edits: &[Edit], locale: &str) -> Result<Vec<Edit>, EditError> {
        if edits.len() > MAX_EDITS {
            return Err(EditError::TooMany);
        }
        edits
            .iter()
            .enumerate()
            .map(|(index, edit)| self.edit(index, edit, locale))
            .collect()
    }

    fn edit(&mut self, index: usize, edit: &Edit, locale: &str) -> Result<Edit, EditError> {
        match edit {
            &Edit::SetQuantity { line, quantity } => {
                let slot = self.slot(index, line)?;
                let before = slot.line.quantity;
                slot.line.quantity = quantity.min(MAX_QUANTITY);
                Ok(Edit::SetQuantity {
                    line,
                    quantity: before,
                })
            }
            &Edit::Remove { line } => self.set_removed(index, line, true),
            &Edit::Restore { line } => self.set_removed(index, line, false),
            Edit::AddItem {
                line,
                room,
                key,
                quantity,
            } => {
                let item = catalogue::items()
                    .iter()
                    .find(|item| item.key == key)
                    .ok_or_else(|| EditError::UnknownItem {
                        index,
                        key: key.clone(),
                    })?;
                let facts = LineFacts {
                    id: *line,
                    key: item.key.to_string(),
                    label: item.label(locale).to_string(),
                    quantity: *quantity,
                    unit_volume_m3: item.volume_m3,
                    unit_weight_kg: item.weight_kg,
                    flags: item.flags.to_vec(),
                    source: ItemSource::Added,
                    confidence: None,
                    frames: Vec::new(),
                };
                self.add(index, room, facts)
            }
            Edit::AddFree {
                line,
                room,
                label,
                unit_volume_m3,
                unit_weight_kg,
                quantity,
            } => {
                let label = name(index, label)?;
                let volume = clamp(*unit_volume_m3, MAX_OTHER_VOLUME_M3);
                let weight = match unit_weight_kg {
                    Some(kg) => clamp(*kg, MAX_FREE_WEIGHT_KG),
                    None => volume * catalogue::KG_PER_M3,
                };
                let facts = LineFacts {
                    id: *line,
                    key: catalogue::OTHER_KEY.to_string(),
                    label,
                    quantity: *quantity,
                    unit_volume_m3: volume,
                    unit_weight_kg: weight,
                    flags: Vec::new(),
                    source: ItemSource::Added,
                    confidence: None,
                    frames: Vec::new(),
                };
                self.add(index, room, facts)
            }
            Edit::Move { line, room } => {
                let target = self.room(index, room)?;
                let slot = self.slot(index, *line)?;
                let from = std::mem::replace(&mut slot.room, target);
                Ok(Edit::Move {
                    line: *line,
                    room: self.rooms[from].name.clone(),
                })
            }
            Edit::RenameRoom { room, to } => self.rename(index, room, to),
        }
    }

    fn slot(&mut self, index: usize, line: u32) -> Result<&mut Slot, EditError> {
        self.slots
            .iter_mut()
            .find(|slot| slot.line.id == line)
            .ok_or(EditError::UnknownLine { index, line })
    }

    fn set_removed(&mut self, index: usize, line: u32, removed: bool) -> Result<Edit, EditError> {
        let slot = self.slot(index, line)?;
        let before = std::mem::replace(&mut slot.removed, removed);
        Ok(if before {
            Edit::Remove { line }
        } else {
            Edit::Restore { line }
        })
    }

    fn add(&mut self, index: usize, room: &str, mut facts: LineFacts) -> Result<Edit, EditError> {
        let line = facts.id;
        if self.slots.iter().any(|slot| slot.line.id == line) {
            return Err(EditError::DuplicateLine { index, line });
        }
        let room = self.room(index, room)?;
        facts.quantity = facts.quantity.min(MAX_QUANTITY);
        self.slots.push(Slot {
            line: inventory_line(facts),
            room,
            removed: false,
            model_quantity: None,
        });
        Ok(Edit::Remove { line })
    }

    /// The room with this name, created at the end when new.
    fn room(&mut self, index: usize, room: &str) -> Result<usize, EditError> {
        if let Some(found) = self.find_room(&normalise(room)) {
            return Ok(found);
        }
        let display = name(index, room)?;
        let key = normalise(&display);
        self.rooms.push(Room {
            key,
            name: display,
            notes: Vec::new(),
        });
        Ok(self.rooms.len() - 1)
    }

    fn find_room(&self, key: &str) -> Option<usize> {
        self.rooms.iter().position(|room| room.key == key)
    }

    /// Renames a room. A name another room shows is refused (merging could not be undone); a
    /// name only an emptied, invisible room holds is swapped with it, so renaming back restores
    /// both.
    fn rename(&mut self, index: usize, room: &str, to: &str) -> Result<Edit, EditError> {
        let from = self
            .find_room(&normalise(room))
            .ok_or_else(|| EditError::UnknownRoom {
                index,
                room: room.to_string(),
            })?;
        let key = normalise(to);
        let previous = self.rooms[from].name.clone();
        let existing = self.find_room(&key);
        // A name some room already has is known to be valid (it may come from the model).
        let display = match existing {
            Some(_) if !key.is_empty() => fusion::capitalise(&collapse(to)),
            _ => name(index, to)?,
        };
        match existing {
            Some(other) if other != from => {
                if self.visible(other) {
                    return Err(EditError::RoomTaken {
                        index,
                        room: display,
                    });
                }
                let (a, b) = (from.min(other), from.max(other));
                let (left, right) = self.rooms.split_at_mut(b);
                std::mem::swap(&mut left[a].key, &mut right[0].key);
                std::mem::swap(&mut left[a].name, &mut right[0].name);
            }
            _ => {
                let target = &mut self.rooms[from];
                target.key = key;
                target.name = display;
            }
        }
        Ok(Edit::RenameRoom {
            room: self.rooms[from].name.clone(),
            to: previous,
        })
    }

    fn shown(slot: &Slot) -> bool {
        !slot.removed && slot.line.quantity > 0
    }

    fn visible(&self, room: usize) -> bool {
        !self.rooms[room].notes.is_empty()
            || self
                .slots
                .iter()
                .any(|slot| slot.room == room && Model::shown(slot))
    }

    fn inventory(self) -> Inventory {
        let mut rooms = Vec::new();
        for (index, room) in self.rooms.into_iter().enumerate() {
            let lines: Vec<InventoryLine> = self
                .slots
                .iter()
                .filter(|slot| slot.room == index && Model::shown(slot))
                .map(line_of)
                .collect();
            if lines.is_empty() && room.notes.is_empty() {
                continue;
            }
            rooms.push(room_inventory(room.name, lines, room.notes));
        }
        summarise(rooms, self.margin_ratio, self.warnings)
    }
}

/// The line as shown: totals for its current quantity, and `corrected` once that differs from
/// the model's.
fn line_of(slot: &Slot) -> InventoryLine {
    let line = &slot.line;
    let source = match slot.model_quantity {
        Some(quantity) if quantity != line.quantity => ItemSource::Corrected,
        _ => line.source,
    };
    inventory_line(LineFacts {
        id: line.id,
        key: line.key.clone(),
        label: line.label.clone(),
        quantity: line.quantity,
        unit_volume_m3: line.unit_volume_m3,
        unit_weight_kg: line.unit_weight_kg,
        flags: line.flags.clone(),
        source,
        confidence: line.confidence,
        frames: line.frames.clone(),
    })
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A new room name or label as shown: inner whitespace collapsed, first letter capitalised.
fn name(index: usize, text: &str) -> Result<String, EditError> {
    let collapsed = collapse(text);
    if collapsed.is_empty()
        || collapsed.chars().count() > MAX_NAME_CHARS
        || normalise(&collapsed).is_empty()
    {
        return Err(EditError::BadName { index });
    }
    Ok(fusion::capitalise(&collapsed))
}

/// Non-finite or negative becomes 0, above `max` becomes `max` (as for model estimates).
fn clamp(value: f64, max: f64) -> f64 {
    if value.is_finite() {
        value.clamp(0.0, max) + 0.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests;
