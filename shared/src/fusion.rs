//! Fusion of what the camera saw and what the narration said into the inventory.
//!
//! The models only recognise; this module decides. It is a pure function of its input so that
//! the same video analysis always gives the same quote, and so every rule is tested natively:
//!
//! * volumes come from the [`catalogue`]; a model estimate is used only for `other` items (and
//!   for keys the catalogue does not know), clamped and flagged with an `unknown_item` warning;
//! * voice directives are applied in the order they were said, after the vision: `add` puts
//!   lines marked [`ItemSource::Said`] in the named room (or the locale's "unassigned" room),
//!   `exclude` removes items ("le frigo reste") from the named room, else wherever they are,
//!   never below zero, and `note` keeps a remark with its room;
//! * model output is untrusted: absurd quantities are capped at [`MAX_QUANTITY`], non-finite or
//!   negative numbers become 0, so a total is never negative, NaN or infinite, and every
//!   correction leaves a `clamped` warning the mover can see;
//! * nothing is rounded: each room's subtotal is the sum of its lines, the subtotal the sum of
//!   the rooms, and the total `subtotal + margin`, so the numbers a client displays add up.
//!
//! Rooms keep the order they first appear in; lines follow the catalogue's order, so two runs
//! over the same input produce byte-identical JSON.

use crate::catalogue::{self, CatalogueItem, OTHER_KEY};
use crate::protocol::{
    Directive, DirectiveAction, FlaggedItem, Inventory, InventoryLine, ItemFlag, ItemSource,
    MediaFacts, RoomInventory, VisionItem, VisionResult, VoiceDirectives, Warning, WarningCode,
};

/// Per line. More than this of one item in one room is a model miscount, not a household.
pub const MAX_QUANTITY: u32 = 200;
/// Largest volume accepted for one `other` item (a grand piano is about 3 m³).
pub const MAX_OTHER_VOLUME_M3: f64 = 10.0;
/// Volume assumed for an `other` item the model gave no estimate for: a medium piece of
/// furniture, so an unknown item is not silently left out of the quote.
pub const DEFAULT_OTHER_VOLUME_M3: f64 = 0.5;
/// Movers add 10–15 %; more than this is a configuration error.
pub const MAX_MARGIN_RATIO: f64 = 0.5;
/// Below this, a walk-through cannot have covered a home.
pub const MIN_DURATION_S: f64 = 5.0;
/// Mean luma (0–255) below which frames are too dark to recognise furniture.
pub const MIN_MEAN_LUMA: f64 = 40.0;
/// Sharpness score (0–1) below which frames are too blurred to count items reliably.
pub const MIN_SHARPNESS: f64 = 0.3;
/// Fewer analysed frames than this cannot cover several rooms.
pub const MIN_FRAMES: u32 = 4;

/// Everything fusion needs; all of it is data, so fusion is deterministic.
#[derive(Clone, Debug, PartialEq)]
pub struct FusionInput {
    pub vision: VisionResult,
    pub directives: VoiceDirectives,
    pub media: MediaFacts,
    /// Quality signals from extraction (mean luma 0–255, sharpness score 0–1).
    pub mean_luma: Option<f64>,
    pub sharpness: Option<f64>,
    /// Whether a transcript was produced with any words in it.
    pub narrated: bool,
    /// Loading margin, e.g. 0.10.
    pub margin_ratio: f64,
    /// Locale of labels, room names and warnings: `en*` is English, anything else French.
    pub locale: String,
}

/// Builds the inventory. Never negative, never NaN; absurd quantities or volumes are clamped
/// with a warning.
pub fn fuse(input: &FusionInput) -> Inventory {
    let mut fusion = Fusion {
        lang: Lang::of(&input.locale),
        rooms: Vec::new(),
        warnings: Vec::new(),
    };
    fusion.check_media(input);
    for room in &input.vision.rooms {
        let index = fusion.room(Some(&room.name));
        for item in &room.items {
            fusion.add_seen(index, item);
        }
    }
    for directive in &input.directives.directives {
        match directive.action {
            DirectiveAction::Add => fusion.add_said(directive),
            DirectiveAction::Exclude => fusion.exclude(directive),
            DirectiveAction::Note => fusion.note(directive),
        }
    }
    let margin_ratio = fusion.margin_ratio(input.margin_ratio);
    fusion.finish(margin_ratio)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lang {
    Fr,
    En,
}

impl Lang {
    fn of(locale: &str) -> Lang {
        if catalogue::is_english(locale) {
            Lang::En
        } else {
            Lang::Fr
        }
    }

    fn locale(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    fn unassigned(self) -> &'static str {
        match self {
            Lang::Fr => "Non classé",
            Lang::En => "Unassigned",
        }
    }

    fn unidentified(self) -> &'static str {
        match self {
            Lang::Fr => "Objet non identifié",
            Lang::En => "Unidentified item",
        }
    }
}

/// What a line is: a catalogue item, or an `other` item known by its normalised label.
#[derive(Clone, Debug)]
pub(crate) enum Identity {
    Catalogue(&'static CatalogueItem),
    Other(String),
}

impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        match (self, other) {
            (Identity::Catalogue(a), Identity::Catalogue(b)) => a.key == b.key,
            (Identity::Other(a), Identity::Other(b)) => a == b,
            _ => false,
        }
    }
}

impl Identity {
    /// A catalogue key wins; a key the catalogue lacks (or `other`) is still recognised when its
    /// label is a catalogue name ("other" + "frigo" is the fridge).
    fn of(key: &str, label: &str) -> Identity {
        let key = key.trim();
        let by_key = if key.eq_ignore_ascii_case(OTHER_KEY) {
            None
        } else {
            catalogue::lookup(key)
        };
        match by_key.or_else(|| catalogue::lookup(label)) {
            Some(item) => Identity::Catalogue(item),
            None => Identity::Other(catalogue::normalise(&other_label(key, label, Lang::Fr))),
        }
    }

    fn key(&self) -> &'static str {
        match self {
            Identity::Catalogue(item) => item.key,
            Identity::Other(_) => OTHER_KEY,
        }
    }

    /// Catalogue order first, `other` items after every catalogue item.
    fn order(&self) -> usize {
        match self {
            Identity::Catalogue(item) => catalogue::position(item),
            Identity::Other(_) => usize::MAX,
        }
    }
}

/// The label shown for an item the catalogue lacks: the model's label, else its key, else a
/// generic name. The generic name only depends on `lang` for display, never for matching.
fn other_label(key: &str, label: &str, lang: Lang) -> String {
    let label = collapse(label);
    if !label.is_empty() {
        return label;
    }
    let key = collapse(&key.replace('_', " "));
    if !key.is_empty() && !key.eq_ignore_ascii_case(OTHER_KEY) {
        return key;
    }
    lang.unidentified().to_string()
}

struct Line {
    identity: Identity,
    label: String,
    quantity: u32,
    unit_volume_m3: f64,
    unit_weight_kg: f64,
    flags: &'static [ItemFlag],
    source: ItemSource,
    confidence: Option<f64>,
    frames: Vec<u32>,
}

struct Room {
    /// Normalised name: "Salon", " salon " and "le salon" are one room.
    key: String,
    name: String,
    lines: Vec<Line>,
    notes: Vec<String>,
}

struct Fusion {
    lang: Lang,
    rooms: Vec<Room>,
    warnings: Vec<Warning>,
}

impl Fusion {
    fn warn(&mut self, code: WarningCode, fr: String, en: String) {
        let message = match self.lang {
            Lang::Fr => fr,
            Lang::En => en,
        };
        if !self
            .warnings
            .iter()
            .any(|w| w.code == code && w.message == message)
        {
            self.warnings.push(Warning { code, message });
        }
    }

    /// The index of a room, created at the end if new. No name means the unassigned room.
    fn room(&mut self, name: Option<&str>) -> usize {
        let (key, display) = self.room_names(name);
        if let Some(index) = self.rooms.iter().position(|room| room.key == key) {
            return index;
        }
        self.rooms.push(Room {
            key,
            name: display,
            lines: Vec::new(),
            notes: Vec::new(),
        });
        self.rooms.len() - 1
    }

    fn find_room(&self, name: &str) -> Option<usize> {
        let (key, _) = self.room_names(Some(name));
        self.rooms.iter().position(|room| room.key == key)
    }

    fn room_names(&self, name: Option<&str>) -> (String, String) {
        let display = collapse(name.unwrap_or_default());
        let key = catalogue::normalise(&display);
        if key.is_empty() {
            let unassigned = self.lang.unassigned();
            (catalogue::normalise(unassigned), unassigned.to_string())
        } else {
            (key, capitalise(&display))
        }
    }

    /// Warnings about the recording itself, first in the list: they explain the rest.
    fn check_media(&mut self, input: &FusionInput) {
        let media = &input.media;
        let duration = if media.duration_s.is_finite() {
            media.duration_s.max(0.0)
        } else {
            0.0
        };
        if duration < MIN_DURATION_S {
            self.warn(
                WarningCode::TooShort,
                format!(
                    "Vidéo très courte ({duration:.1} s) : l'inventaire risque d'être incomplet."
                ),
                format!("Very short video ({duration:.1} s): the inventory may be incomplete."),
            );
        }
        if input
            .mean_luma
            .is_some_and(|luma| luma.is_finite() && luma < MIN_MEAN_LUMA)
        {
            self.warn(
                WarningCode::TooDark,
                "Vidéo sombre : des objets ont pu être manqués ; filmez avec plus de lumière."
                    .into(),
                "Dark video: some items may have been missed; film with more light.".into(),
            );
        }
        if input
            .sharpness
            .is_some_and(|sharpness| sharpness.is_finite() && sharpness < MIN_SHARPNESS)
        {
            self.warn(
                WarningCode::Blurry,
                "Images floues : filmez plus lentement pour un inventaire plus fiable.".into(),
                "Blurry frames: film more slowly for a more reliable inventory.".into(),
            );
        }
        if !media.has_audio {
            self.warn(
                WarningCode::NoAudio,
                "Pas de son : les consignes orales (objets qui restent, cartons) n'ont pas été prises en compte.".into(),
                "No audio: spoken instructions (items staying, boxes) were not taken into account.".into(),
            );
        } else if !input.narrated {
            self.warn(
                WarningCode::NoNarration,
                "Aucune parole détectée : l'inventaire repose sur l'image seule.".into(),
                "No speech detected: the inventory relies on the video only.".into(),
            );
        }
        if media.frames_analysed < MIN_FRAMES {
            let frames = media.frames_analysed;
            self.warn(
                WarningCode::FewFrames,
                format!(
                    "Seulement {frames} image(s) analysée(s) : l'inventaire risque d'être incomplet."
                ),
                format!("Only {frames} frame(s) analysed: the inventory may be incomplete."),
            );
        }
    }

    fn add_seen(&mut self, room: usize, item: &VisionItem) {
        let Some(quantity) = self.quantity(item.quantity, &item.key, &item.label) else {
            return;
        };
        let (identity, label, unit_volume_m3) =
            self.resolve(&item.key, &item.label, item.estimated_volume_m3);
        let (unit_weight_kg, flags) = facts(&identity, unit_volume_m3);
        let confidence = item
            .confidence
            .is_finite()
            .then(|| item.confidence.clamp(0.0, 1.0));
        self.push(
            room,
            Line {
                identity,
                label,
                quantity,
                unit_volume_m3,
                unit_weight_kg,
                flags,
                source: ItemSource::Seen,
                confidence,
                frames: item.frames.clone(),
            },
        );
    }

    fn add_said(&mut self, directive: &Directive) {
        let asked = directive.quantity.unwrap_or(1);
        let Some(quantity) = self.quantity(asked, &directive.key, &directive.label) else {
            return;
        };
        let (identity, label, unit_volume_m3) = self.resolve(
            &directive.key,
            &directive.label,
            directive.estimated_volume_m3,
        );
        let (unit_weight_kg, flags) = facts(&identity, unit_volume_m3);
        let room = self.room(directive.room.as_deref());
        self.push(
            room,
            Line {
                identity,
                label,
                quantity,
                unit_volume_m3,
                unit_weight_kg,
                flags,
                source: ItemSource::Said,
                confidence: None,
                frames: Vec::new(),
            },
        );
    }

    /// Removes `quantity` (all when `None`) of the item: from the named room when it holds the
    /// item, otherwise from every room in order. A room the model names slightly differently
    /// ("cuisine" vs "coin cuisine") must not make "le frigo reste" a no-op.
    fn exclude(&mut self, directive: &Directive) {
        let mut remaining = directive.quantity;
        if remaining == Some(0) {
            return;
        }
        let target = Identity::of(&directive.key, &directive.label);
        let named = directive
            .room
            .as_deref()
            .and_then(|name| self.find_room(name))
            .filter(|&index| {
                self.rooms[index]
                    .lines
                    .iter()
                    .any(|line| line.identity == target)
            });
        let rooms: Vec<usize> = match named {
            Some(index) => vec![index],
            None => (0..self.rooms.len()).collect(),
        };
        for index in rooms {
            let room = &mut self.rooms[index];
            for line in room.lines.iter_mut().filter(|line| line.identity == target) {
                match remaining.as_mut() {
                    None => line.quantity = 0,
                    Some(left) => {
                        let taken = (*left).min(line.quantity);
                        line.quantity -= taken;
                        *left -= taken;
                    }
                }
            }
            room.lines.retain(|line| line.quantity > 0);
        }
    }

    fn note(&mut self, directive: &Directive) {
        let text = directive
            .note
            .as_deref()
            .map(collapse)
            .filter(|note| !note.is_empty())
            .unwrap_or_else(|| collapse(&directive.label));
        if text.is_empty() {
            return;
        }
        let room = self.room(directive.room.as_deref());
        let notes = &mut self.rooms[room].notes;
        if !notes.contains(&text) {
            notes.push(text);
        }
    }

    /// `None` for zero (nothing to count); capped at [`MAX_QUANTITY`] with a warning.
    fn quantity(&mut self, quantity: u32, key: &str, label: &str) -> Option<u32> {
        if quantity == 0 {
            return None;
        }
        if quantity > MAX_QUANTITY {
            let name = display_name(key, label, self.lang);
            self.warn_capped(&name, quantity);
            return Some(MAX_QUANTITY);
        }
        Some(quantity)
    }

    fn warn_capped(&mut self, name: &str, quantity: u32) {
        self.warn(
            WarningCode::Clamped,
            format!("Quantité de « {name} » ramenée de {quantity} à {MAX_QUANTITY}."),
            format!("Quantity of “{name}” capped from {quantity} to {MAX_QUANTITY}."),
        );
    }

    /// The line's identity, label in the locale and unit volume.
    fn resolve(
        &mut self,
        key: &str,
        label: &str,
        estimate: Option<f64>,
    ) -> (Identity, String, f64) {
        match Identity::of(key, label) {
            Identity::Catalogue(item) => (
                Identity::Catalogue(item),
                item.label(self.lang.locale()).to_string(),
                item.volume_m3,
            ),
            other => {
                let label = other_label(key, label, self.lang);
                let volume = self.other_volume(&label, estimate);
                (other, label, volume)
            }
        }
    }

    fn other_volume(&mut self, label: &str, estimate: Option<f64>) -> f64 {
        let Some(estimate) = estimate else {
            let fallback = DEFAULT_OTHER_VOLUME_M3;
            self.warn(
                WarningCode::UnknownItem,
                format!("« {label} » n'est pas au catalogue et n'a pas d'estimation : {fallback} m³ retenu, à vérifier."),
                format!("“{label}” is not in the catalogue and has no estimate: {fallback} m³ assumed, please check."),
            );
            return fallback;
        };
        let volume = if !estimate.is_finite() || estimate < 0.0 {
            self.warn(
                WarningCode::Clamped,
                format!("Volume invalide pour « {label} » ({estimate}) : 0 m³ retenu."),
                format!("Invalid volume for “{label}” ({estimate}): 0 m³ used."),
            );
            0.0
        } else if estimate > MAX_OTHER_VOLUME_M3 {
            self.warn(
                WarningCode::Clamped,
                format!("Volume de « {label} » ramené de {estimate} à {MAX_OTHER_VOLUME_M3} m³."),
                format!("Volume of “{label}” capped from {estimate} to {MAX_OTHER_VOLUME_M3} m³."),
            );
            MAX_OTHER_VOLUME_M3
        } else {
            // `+ 0.0` turns a -0.0 estimate into 0.0.
            estimate + 0.0
        };
        self.warn(
            WarningCode::UnknownItem,
            format!(
                "« {label} » n'est pas au catalogue : volume estimé {volume:.2} m³, à vérifier."
            ),
            format!(
                "“{label}” is not in the catalogue: estimated volume {volume:.2} m³, please check."
            ),
        );
        volume
    }

    /// Merges with the room's line for the same item, source and unit volume (a model may list
    /// the same chair twice); otherwise appends.
    fn push(&mut self, room: usize, line: Line) {
        let lines = &mut self.rooms[room].lines;
        let Some(existing) = lines.iter_mut().find(|existing| {
            existing.identity == line.identity
                && existing.source == line.source
                && existing.unit_volume_m3.to_bits() == line.unit_volume_m3.to_bits()
        }) else {
            lines.push(line);
            return;
        };
        let sum = existing.quantity.saturating_add(line.quantity);
        existing.quantity = sum.min(MAX_QUANTITY);
        existing.confidence = match (existing.confidence, line.confidence) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        existing.frames.extend(line.frames);
        if sum > MAX_QUANTITY {
            let name = existing.label.clone();
            self.warn_capped(&name, sum);
        }
    }

    fn margin_ratio(&mut self, ratio: f64) -> f64 {
        let clamped = if ratio.is_finite() {
            ratio.clamp(0.0, MAX_MARGIN_RATIO)
        } else {
            0.0
        };
        if clamped != ratio {
            let percent = clamped * 100.0;
            self.warn(
                WarningCode::Clamped,
                format!("Marge de chargement {ratio} hors de 0–0,5 : {percent} % appliqués."),
                format!("Loading margin {ratio} outside 0–0.5: {percent} % applied."),
            );
        }
        clamped + 0.0
    }

    fn finish(self, margin_ratio: f64) -> Inventory {
        let mut rooms = Vec::with_capacity(self.rooms.len());
        let mut next_id = 0u32;
        for room in self.rooms {
            if room.lines.is_empty() && room.notes.is_empty() {
                continue;
            }
            let mut lines = room.lines;
            lines.sort_by(|a, b| {
                a.identity
                    .order()
                    .cmp(&b.identity.order())
                    .then_with(|| a.label.cmp(&b.label))
                    .then_with(|| source_rank(a.source).cmp(&source_rank(b.source)))
                    .then_with(|| a.unit_volume_m3.total_cmp(&b.unit_volume_m3))
            });
            let lines: Vec<InventoryLine> = lines
                .into_iter()
                .map(|mut line| {
                    line.frames.sort_unstable();
                    line.frames.dedup();
                    next_id += 1;
                    inventory_line(LineFacts {
                        id: next_id,
                        key: line.identity.key().to_string(),
                        label: line.label,
                        quantity: line.quantity,
                        unit_volume_m3: line.unit_volume_m3,
                        unit_weight_kg: line.unit_weight_kg,
                        flags: line.flags.to_vec(),
                        source: line.source,
                        confidence: line.confidence,
                        frames: line.frames,
                    })
                })
                .collect();
            rooms.push(room_inventory(room.name, lines, room.notes));
        }
        summarise(rooms, margin_ratio, self.warnings)
    }
}

/// Everything a line is before its totals are computed.
pub(crate) struct LineFacts {
    pub id: u32,
    pub key: String,
    pub label: String,
    pub quantity: u32,
    pub unit_volume_m3: f64,
    pub unit_weight_kg: f64,
    pub flags: Vec<ItemFlag>,
    pub source: ItemSource,
    pub confidence: Option<f64>,
    pub frames: Vec<u32>,
}

/// A line with its volume and weight: unit × quantity, nothing rounded.
pub(crate) fn inventory_line(facts: LineFacts) -> InventoryLine {
    let quantity = f64::from(facts.quantity);
    InventoryLine {
        id: facts.id,
        key: facts.key,
        label: facts.label,
        quantity: facts.quantity,
        unit_volume_m3: facts.unit_volume_m3,
        volume_m3: facts.unit_volume_m3 * quantity,
        unit_weight_kg: facts.unit_weight_kg,
        weight_kg: facts.unit_weight_kg * quantity,
        flags: facts.flags,
        source: facts.source,
        confidence: facts.confidence,
        frames: facts.frames,
    }
}

/// A room whose subtotals are the sums of its lines, in order.
pub(crate) fn room_inventory(
    room: String,
    lines: Vec<InventoryLine>,
    notes: Vec<String>,
) -> RoomInventory {
    RoomInventory {
        room,
        subtotal_m3: lines.iter().fold(0.0, |sum, line| sum + line.volume_m3),
        weight_kg: lines.iter().fold(0.0, |sum, line| sum + line.weight_kg),
        lines,
        notes,
    }
}

/// The inventory's totals from its rooms, the same way for fusion and for customer edits: the
/// subtotal is the sum of the rooms, the total `subtotal + margin`, the item count the sum of
/// quantities, and every flagged line is listed.
pub(crate) fn summarise(
    rooms: Vec<RoomInventory>,
    margin_ratio: f64,
    warnings: Vec<Warning>,
) -> Inventory {
    let subtotal_m3 = rooms.iter().fold(0.0, |sum, room| sum + room.subtotal_m3);
    let total_weight_kg = rooms.iter().fold(0.0, |sum, room| sum + room.weight_kg);
    let lines = || {
        rooms
            .iter()
            .flat_map(|room| room.lines.iter().map(move |l| (room, l)))
    };
    let item_count = lines().fold(0u32, |n, (_, line)| n.saturating_add(line.quantity));
    let flagged = lines()
        .filter(|(_, line)| !line.flags.is_empty())
        .map(|(room, line)| FlaggedItem {
            line: line.id,
            room: room.room.clone(),
            label: line.label.clone(),
            quantity: line.quantity,
            flags: line.flags.clone(),
        })
        .collect();
    let margin_m3 = subtotal_m3 * margin_ratio;
    Inventory {
        rooms,
        subtotal_m3,
        margin_ratio,
        margin_m3,
        total_m3: subtotal_m3 + margin_m3,
        total_weight_kg,
        item_count,
        flagged,
        warnings,
    }
}

/// Weight and flags of one item: the catalogue's, or for an item it lacks an estimate from the
/// volume ([`catalogue::KG_PER_M3`]) and no flag.
pub(crate) fn facts(identity: &Identity, unit_volume_m3: f64) -> (f64, &'static [ItemFlag]) {
    match identity {
        Identity::Catalogue(item) => (item.weight_kg, item.flags),
        Identity::Other(_) => (unit_volume_m3 * catalogue::KG_PER_M3, &[]),
    }
}

fn source_rank(source: ItemSource) -> u8 {
    match source {
        ItemSource::Seen => 0,
        ItemSource::Said => 1,
        ItemSource::Corrected => 2,
        ItemSource::Added => 3,
    }
}

/// The name a warning uses for an item: the catalogue label when known.
fn display_name(key: &str, label: &str, lang: Lang) -> String {
    match Identity::of(key, label) {
        Identity::Catalogue(item) => item.label(lang.locale()).to_string(),
        Identity::Other(_) => other_label(key, label, lang),
    }
}

/// Trims and collapses inner whitespace.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::VisionRoom;
    use proptest::prelude::*;

    fn seen(key: &str, quantity: u32) -> VisionItem {
        VisionItem {
            key: key.into(),
            label: String::new(),
            quantity,
            estimated_volume_m3: None,
            confidence: 0.9,
            frames: vec![0],
        }
    }

    fn room(name: &str, items: Vec<VisionItem>) -> VisionRoom {
        VisionRoom {
            name: name.into(),
            items,
        }
    }

    fn directive(
        action: DirectiveAction,
        key: &str,
        quantity: Option<u32>,
        room: Option<&str>,
    ) -> Directive {
        Directive {
            action,
            key: key.into(),
            label: String::new(),
            quantity,
            room: room.map(Into::into),
            estimated_volume_m3: None,
            note: None,
        }
    }

    /// A well-filmed, narrated video: no media warning.
    fn input(rooms: Vec<VisionRoom>, directives: Vec<Directive>) -> FusionInput {
        FusionInput {
            vision: VisionResult { rooms },
            directives: VoiceDirectives { directives },
            media: MediaFacts {
                duration_s: 60.0,
                width: 1920,
                height: 1080,
                rotation: 0,
                has_audio: true,
                frames_analysed: 16,
                frame_times_s: Vec::new(),
            },
            mean_luma: Some(120.0),
            sharpness: Some(0.8),
            narrated: true,
            margin_ratio: 0.1,
            locale: "fr".into(),
        }
    }

    fn codes(inventory: &Inventory) -> Vec<WarningCode> {
        inventory.warnings.iter().map(|w| w.code).collect()
    }

    fn line<'a>(inventory: &'a Inventory, room: &str, key: &str) -> Option<&'a InventoryLine> {
        inventory
            .rooms
            .iter()
            .find(|r| r.room == room)
            .and_then(|r| r.lines.iter().find(|l| l.key == key))
    }

    #[test]
    fn catalogue_volumes_times_quantities_with_margin() {
        let inventory = fuse(&input(
            vec![room(
                "salon",
                vec![seen("sofa_3_seats", 1), seen("armchair", 2)],
            )],
            vec![],
        ));
        assert_eq!(inventory.rooms.len(), 1);
        let salon = &inventory.rooms[0];
        assert_eq!(salon.room, "Salon");
        assert_eq!(salon.subtotal_m3, 2.0 + 2.0 * 0.8);
        assert_eq!(inventory.subtotal_m3, salon.subtotal_m3);
        assert_eq!(inventory.margin_ratio, 0.1);
        assert_eq!(inventory.margin_m3, inventory.subtotal_m3 * 0.1);
        assert_eq!(
            inventory.total_m3,
            inventory.subtotal_m3 + inventory.margin_m3
        );
        assert_eq!(inventory.item_count, 3);
        assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
        let armchair = line(&inventory, "Salon", "armchair").unwrap();
        assert_eq!((armchair.unit_volume_m3, armchair.volume_m3), (0.8, 1.6));
        assert_eq!(armchair.label, "Fauteuil");
        assert_eq!(armchair.source, ItemSource::Seen);
    }

    #[test]
    fn le_frigo_reste_excludes_the_fridge() {
        let inventory = fuse(&input(
            vec![room("cuisine", vec![seen("fridge", 1), seen("oven", 1)])],
            vec![directive(DirectiveAction::Exclude, "fridge", None, None)],
        ));
        assert!(line(&inventory, "Cuisine", "fridge").is_none());
        assert!(line(&inventory, "Cuisine", "oven").is_some());
        assert_eq!(inventory.subtotal_m3, 0.5);
        assert_eq!(inventory.item_count, 1);
    }

    #[test]
    fn exclusion_by_french_alias_in_an_other_key() {
        let mut frigo = directive(DirectiveAction::Exclude, "other", None, Some("cuisine"));
        frigo.label = "le frigo".into();
        let inventory = fuse(&input(
            vec![room("Cuisine", vec![seen("fridge", 1)])],
            vec![frigo],
        ));
        assert!(inventory.rooms.is_empty(), "{:?}", inventory.rooms);
        assert_eq!(inventory.total_m3, 0.0);
    }

    #[test]
    fn quinze_cartons_de_livres_dans_le_placard() {
        let inventory = fuse(&input(
            vec![room("chambre", vec![seen("double_bed", 1)])],
            vec![directive(
                DirectiveAction::Add,
                "box_books",
                Some(15),
                Some("placard"),
            )],
        ));
        assert_eq!(inventory.rooms.len(), 2);
        assert_eq!(inventory.rooms[1].room, "Placard");
        let boxes = line(&inventory, "Placard", "box_books").unwrap();
        assert_eq!(boxes.quantity, 15);
        assert_eq!(boxes.source, ItemSource::Said);
        assert_eq!(boxes.confidence, None);
        assert_eq!(boxes.volume_m3, 15.0 * 0.03);
        assert_eq!(inventory.subtotal_m3, 2.5 + 15.0 * 0.03);
        assert_eq!(inventory.item_count, 16);
    }

    #[test]
    fn additions_without_room_go_to_the_unassigned_room_of_the_locale() {
        let add = directive(DirectiveAction::Add, "cartons", Some(3), None);
        let mut fr = input(vec![], vec![add.clone()]);
        assert_eq!(fuse(&fr).rooms[0].room, "Non classé");
        assert_eq!(fuse(&fr).rooms[0].lines[0].key, "box_standard");
        fr.locale = "en-US".into();
        let en = fuse(&fr);
        assert_eq!(en.rooms[0].room, "Unassigned");
        assert_eq!(en.rooms[0].lines[0].label, "Standard box");
        let blank_room = directive(DirectiveAction::Add, "chair", None, Some("   "));
        let inventory = fuse(&input(vec![], vec![add, blank_room]));
        assert_eq!(inventory.rooms.len(), 1);
        assert_eq!(inventory.item_count, 4);
    }

    #[test]
    fn catalogue_volume_wins_over_the_model_estimate() {
        let mut sofa = seen("sofa_2_seats", 1);
        sofa.estimated_volume_m3 = Some(9.0);
        let inventory = fuse(&input(vec![room("salon", vec![sofa])], vec![]));
        assert_eq!(inventory.subtotal_m3, 1.5);
        assert!(inventory.warnings.is_empty());
    }

    #[test]
    fn other_items_use_the_estimate_with_a_warning() {
        let mut statue = seen("other", 1);
        statue.label = "Statue en bronze".into();
        statue.estimated_volume_m3 = Some(3.0);
        let inventory = fuse(&input(vec![room("salon", vec![statue])], vec![]));
        let line = line(&inventory, "Salon", "other").unwrap();
        assert_eq!(
            (line.label.as_str(), line.volume_m3),
            ("Statue en bronze", 3.0)
        );
        // Weighed from its volume, with no flag: the catalogue knows nothing about it.
        assert_eq!(line.unit_weight_kg, 3.0 * catalogue::KG_PER_M3);
        assert!(line.flags.is_empty());
        assert_eq!(codes(&inventory), vec![WarningCode::UnknownItem]);
        assert!(inventory.warnings[0].message.contains("Statue en bronze"));
    }

    #[test]
    fn unknown_keys_are_treated_like_other() {
        let mut jukebox = seen("jukebox_vintage", 2);
        jukebox.estimated_volume_m3 = Some(0.7);
        let inventory = fuse(&input(vec![room("salon", vec![jukebox])], vec![]));
        let line = &inventory.rooms[0].lines[0];
        assert_eq!(line.key, "other");
        assert_eq!(line.label, "jukebox vintage");
        assert_eq!(line.volume_m3, 1.4);
        assert_eq!(codes(&inventory), vec![WarningCode::UnknownItem]);
    }

    #[test]
    fn other_with_a_catalogue_label_is_the_catalogue_item() {
        let mut fridge = seen("other", 1);
        fridge.label = "Réfrigérateur américain".into();
        fridge.estimated_volume_m3 = Some(0.1);
        let inventory = fuse(&input(vec![room("cuisine", vec![fridge])], vec![]));
        assert_eq!(inventory.rooms[0].lines[0].key, "fridge_american");
        assert_eq!(inventory.subtotal_m3, 2.0);
        assert!(inventory.warnings.is_empty());
    }

    #[test]
    fn absurd_other_volumes_are_clamped_and_nan_is_zero() {
        let mut nan = seen("other", 1);
        nan.label = "bidule".into();
        nan.estimated_volume_m3 = Some(f64::NAN);
        let mut huge = seen("other", 1);
        huge.label = "hangar".into();
        huge.estimated_volume_m3 = Some(1e12);
        let mut negative = seen("other", 1);
        negative.label = "trou noir".into();
        negative.estimated_volume_m3 = Some(-4.0);
        let mut missing = seen("other", 1);
        missing.label = "truc".into();
        let inventory = fuse(&input(
            vec![room("garage", vec![nan, huge, negative, missing])],
            vec![],
        ));
        let volume = |label: &str| {
            inventory.rooms[0]
                .lines
                .iter()
                .find(|l| l.label == label)
                .unwrap()
                .volume_m3
        };
        assert_eq!(volume("bidule"), 0.0);
        assert_eq!(volume("hangar"), MAX_OTHER_VOLUME_M3);
        assert_eq!(volume("trou noir"), 0.0);
        assert_eq!(volume("truc"), DEFAULT_OTHER_VOLUME_M3);
        assert_eq!(
            inventory.subtotal_m3,
            MAX_OTHER_VOLUME_M3 + DEFAULT_OTHER_VOLUME_M3
        );
        let clamped = codes(&inventory)
            .iter()
            .filter(|c| **c == WarningCode::Clamped)
            .count();
        assert_eq!(clamped, 3);
        assert!(inventory.total_m3.is_finite());
    }

    #[test]
    fn absurd_quantities_are_capped_with_a_warning() {
        let inventory = fuse(&input(
            vec![room("salon", vec![seen("chair", 5000)])],
            vec![directive(
                DirectiveAction::Add,
                "box_standard",
                Some(u32::MAX),
                None,
            )],
        ));
        assert_eq!(
            line(&inventory, "Salon", "chair").unwrap().quantity,
            MAX_QUANTITY
        );
        assert_eq!(
            line(&inventory, "Non classé", "box_standard")
                .unwrap()
                .quantity,
            MAX_QUANTITY
        );
        assert_eq!(
            codes(&inventory),
            vec![WarningCode::Clamped, WarningCode::Clamped]
        );
        assert!(inventory.warnings[0].message.contains("Chaise"));
        assert_eq!(inventory.item_count, 2 * MAX_QUANTITY);
    }

    #[test]
    fn duplicates_in_a_room_merge_and_stay_capped() {
        let mut a = seen("chair", 4);
        a.frames = vec![3, 1];
        a.confidence = 0.5;
        let mut b = seen("chair", 2);
        b.frames = vec![1, 2];
        b.confidence = 0.8;
        let inventory = fuse(&input(vec![room("salon", vec![a, b])], vec![]));
        let chairs = line(&inventory, "Salon", "chair").unwrap();
        assert_eq!(inventory.rooms[0].lines.len(), 1);
        assert_eq!((chairs.quantity, chairs.confidence), (6, Some(0.8)));
        assert_eq!(chairs.frames, vec![1, 2, 3]);

        let many = fuse(&input(
            vec![
                room("salon", vec![seen("chair", 150)]),
                room("SALON", vec![seen("chair", 150)]),
            ],
            vec![],
        ));
        assert_eq!(
            line(&many, "Salon", "chair").unwrap().quantity,
            MAX_QUANTITY
        );
        assert_eq!(codes(&many), vec![WarningCode::Clamped]);
    }

    #[test]
    fn partial_exclusions_never_go_below_zero() {
        let rooms = vec![room("salle à manger", vec![seen("chair", 6)])];
        let two = fuse(&input(
            rooms.clone(),
            vec![directive(
                DirectiveAction::Exclude,
                "chaises",
                Some(2),
                None,
            )],
        ));
        assert_eq!(line(&two, "Salle à manger", "chair").unwrap().quantity, 4);
        assert_eq!(two.subtotal_m3, 4.0 * 0.3);
        let ten = fuse(&input(
            rooms,
            vec![directive(DirectiveAction::Exclude, "chair", Some(10), None)],
        ));
        assert!(ten.rooms.is_empty());
        assert_eq!((ten.subtotal_m3, ten.item_count), (0.0, 0));
    }

    #[test]
    fn exclusion_in_a_named_room_spares_the_others() {
        let rooms = vec![
            room("salon", vec![seen("armchair", 2)]),
            room("chambre", vec![seen("armchair", 1)]),
        ];
        let named = fuse(&input(
            rooms.clone(),
            vec![directive(
                DirectiveAction::Exclude,
                "armchair",
                None,
                Some(" Chambre "),
            )],
        ));
        assert_eq!(line(&named, "Salon", "armchair").unwrap().quantity, 2);
        assert!(named.rooms.iter().all(|r| r.room != "Chambre"));

        let everywhere = fuse(&input(
            rooms.clone(),
            vec![directive(
                DirectiveAction::Exclude,
                "armchair",
                Some(3),
                None,
            )],
        ));
        assert!(everywhere.rooms.is_empty());

        let unknown_room = fuse(&input(
            rooms,
            vec![directive(
                DirectiveAction::Exclude,
                "armchair",
                Some(1),
                Some("grenier"),
            )],
        ));
        assert_eq!(
            line(&unknown_room, "Salon", "armchair").unwrap().quantity,
            1
        );
        assert_eq!(
            line(&unknown_room, "Chambre", "armchair").unwrap().quantity,
            1
        );
    }

    #[test]
    fn exclusion_of_something_absent_changes_nothing() {
        let base = input(vec![room("salon", vec![seen("tv_stand", 1)])], vec![]);
        let mut with = base.clone();
        with.directives
            .directives
            .push(directive(DirectiveAction::Exclude, "piano", None, None));
        assert_eq!(fuse(&with), fuse(&base));
    }

    #[test]
    fn rooms_merge_by_normalised_name_in_first_appearance_order() {
        let inventory = fuse(&input(
            vec![
                room("  cuisine ", vec![seen("oven", 1)]),
                room("Salon", vec![seen("armchair", 1)]),
                room("CUISINE", vec![seen("microwave", 1)]),
                room("la cuisine", vec![seen("fridge", 1)]),
                room("entrée", vec![]),
            ],
            vec![directive(
                DirectiveAction::Add,
                "chair",
                Some(2),
                Some("salon"),
            )],
        ));
        let names: Vec<&str> = inventory.rooms.iter().map(|r| r.room.as_str()).collect();
        assert_eq!(names, vec!["Cuisine", "Salon"]);
        let cuisine: Vec<&str> = inventory.rooms[0]
            .lines
            .iter()
            .map(|l| l.key.as_str())
            .collect();
        assert_eq!(cuisine, vec!["fridge", "oven", "microwave"]);
    }

    #[test]
    fn seen_and_said_lines_stay_apart_in_catalogue_order() {
        let inventory = fuse(&input(
            vec![room(
                "salon",
                vec![seen("box_standard", 4), seen("sofa_3_seats", 1)],
            )],
            vec![directive(
                DirectiveAction::Add,
                "box_standard",
                Some(10),
                Some("Salon"),
            )],
        ));
        let lines = &inventory.rooms[0].lines;
        let shape: Vec<(&str, ItemSource, u32)> = lines
            .iter()
            .map(|l| (l.key.as_str(), l.source, l.quantity))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("sofa_3_seats", ItemSource::Seen, 1),
                ("box_standard", ItemSource::Seen, 4),
                ("box_standard", ItemSource::Said, 10),
            ]
        );
    }

    #[test]
    fn notes_attach_to_their_room_once() {
        let mut note = directive(DirectiveAction::Note, "", None, Some("cave"));
        note.note = Some("  accès   par l'escalier  ".into());
        let mut unassigned = directive(DirectiveAction::Note, "", None, None);
        unassigned.label = "Piano au 3e sans ascenseur".into();
        let inventory = fuse(&input(
            vec![room("cave", vec![seen("bicycle", 1)])],
            vec![note.clone(), note, unassigned],
        ));
        assert_eq!(
            inventory.rooms[0].notes,
            vec!["accès par l'escalier".to_string()]
        );
        assert_eq!(inventory.rooms[1].room, "Non classé");
        assert!(inventory.rooms[1].lines.is_empty());
        assert_eq!(
            inventory.rooms[1].notes,
            vec!["Piano au 3e sans ascenseur".to_string()]
        );
    }

    #[test]
    fn margin_ratio_is_clamped() {
        let rooms = vec![room("salon", vec![seen("sofa_3_seats", 1)])];
        let mut high = input(rooms.clone(), vec![]);
        high.margin_ratio = 0.9;
        let inventory = fuse(&high);
        assert_eq!(
            (
                inventory.margin_ratio,
                inventory.margin_m3,
                inventory.total_m3
            ),
            (0.5, 1.0, 3.0)
        );
        assert_eq!(codes(&inventory), vec![WarningCode::Clamped]);
        high.margin_ratio = f64::NAN;
        let inventory = fuse(&high);
        assert_eq!((inventory.margin_ratio, inventory.total_m3), (0.0, 2.0));
        high.margin_ratio = -0.2;
        assert_eq!(fuse(&high).margin_m3, 0.0);
    }

    #[test]
    fn media_warnings_in_order_and_in_the_locale() {
        let mut bad = input(vec![], vec![]);
        bad.media.duration_s = 3.0;
        bad.media.frames_analysed = 2;
        bad.mean_luma = Some(12.0);
        bad.sharpness = Some(0.05);
        bad.media.has_audio = false;
        bad.narrated = false;
        let inventory = fuse(&bad);
        assert_eq!(
            codes(&inventory),
            vec![
                WarningCode::TooShort,
                WarningCode::TooDark,
                WarningCode::Blurry,
                WarningCode::NoAudio,
                WarningCode::FewFrames,
            ]
        );
        assert!(inventory.warnings[0]
            .message
            .contains("Vidéo très courte (3.0 s)"));
        bad.locale = "en".into();
        assert!(fuse(&bad).warnings[0]
            .message
            .starts_with("Very short video"));
    }

    #[test]
    fn silent_video_with_audio_warns_no_narration() {
        let mut silent = input(vec![], vec![]);
        silent.narrated = false;
        assert_eq!(codes(&fuse(&silent)), vec![WarningCode::NoNarration]);
        silent.mean_luma = None;
        silent.sharpness = Some(f64::NAN);
        silent.media.duration_s = f64::NAN;
        assert_eq!(
            codes(&fuse(&silent)),
            vec![WarningCode::TooShort, WarningCode::NoNarration]
        );
    }

    #[test]
    fn empty_input_gives_an_empty_finite_inventory() {
        let inventory = fuse(&input(vec![], vec![]));
        assert!(inventory.rooms.is_empty());
        assert_eq!(
            (
                inventory.subtotal_m3,
                inventory.total_m3,
                inventory.item_count
            ),
            (0.0, 0.0, 0)
        );
        let json = serde_json::to_string(&inventory).unwrap();
        assert!(!json.contains("-0.0"), "{json}");
    }

    #[test]
    fn confidence_is_bounded_and_nan_dropped() {
        let mut sure = seen("chair", 1);
        sure.confidence = 7.0;
        let mut unsure = seen("armchair", 1);
        unsure.confidence = f64::NAN;
        let inventory = fuse(&input(vec![room("salon", vec![sure, unsure])], vec![]));
        assert_eq!(
            line(&inventory, "Salon", "chair").unwrap().confidence,
            Some(1.0)
        );
        assert_eq!(
            line(&inventory, "Salon", "armchair").unwrap().confidence,
            None
        );
    }

    #[test]
    fn zero_quantities_add_nothing() {
        let inventory = fuse(&input(
            vec![room("salon", vec![seen("chair", 0)])],
            vec![
                directive(DirectiveAction::Add, "chair", Some(0), Some("cuisine")),
                directive(DirectiveAction::Exclude, "chair", Some(0), None),
            ],
        ));
        assert!(inventory.rooms.is_empty());
        assert!(inventory.warnings.is_empty());
    }

    // Property tests: arbitrary, partly hostile model output.

    fn any_key() -> impl Strategy<Value = String> {
        let keys: Vec<String> = catalogue::schema_keys()
            .into_iter()
            .map(String::from)
            .collect();
        prop_oneof![
            4 => proptest::sample::select(keys),
            1 => Just("other".to_string()),
            1 => "[a-z_]{0,10}",
        ]
    }

    fn any_volume() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            (-5.0..50.0f64).prop_map(Some),
            Just(Some(f64::NAN)),
            Just(Some(f64::INFINITY)),
            Just(Some(f64::NEG_INFINITY)),
            Just(Some(-0.0)),
        ]
    }

    fn any_quantity() -> impl Strategy<Value = u32> {
        prop_oneof![4 => 0..8u32, 1 => 0..1000u32, 1 => Just(u32::MAX)]
    }

    fn any_room() -> impl Strategy<Value = String> {
        proptest::sample::select(vec![
            "salon",
            " Salon ",
            "CUISINE",
            "chambre 1",
            "",
            "placard",
            "la cave",
        ])
        .prop_map(String::from)
    }

    fn any_label() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), Just("frigo".to_string()), "\\PC{0,12}"]
    }

    fn any_item() -> impl Strategy<Value = VisionItem> {
        (
            any_key(),
            any_label(),
            any_quantity(),
            any_volume(),
            -1.0..2.0f64,
            proptest::collection::vec(0..40u32, 0..4),
        )
            .prop_map(
                |(key, label, quantity, estimated_volume_m3, confidence, frames)| VisionItem {
                    key,
                    label,
                    quantity,
                    estimated_volume_m3,
                    confidence,
                    frames,
                },
            )
    }

    fn any_directive() -> impl Strategy<Value = Directive> {
        let action = proptest::sample::select(vec![
            DirectiveAction::Add,
            DirectiveAction::Exclude,
            DirectiveAction::Note,
        ]);
        (
            action,
            any_key(),
            any_label(),
            proptest::option::of(any_quantity()),
            proptest::option::of(any_room()),
            any_volume(),
            proptest::option::of("\\PC{0,10}"),
        )
            .prop_map(
                |(action, key, label, quantity, room, estimated_volume_m3, note)| Directive {
                    action,
                    key,
                    label,
                    quantity,
                    room,
                    estimated_volume_m3,
                    note,
                },
            )
    }

    fn any_input() -> impl Strategy<Value = FusionInput> {
        let rooms = proptest::collection::vec(
            (any_room(), proptest::collection::vec(any_item(), 0..6))
                .prop_map(|(name, items)| VisionRoom { name, items }),
            0..5,
        );
        (
            rooms,
            proptest::collection::vec(any_directive(), 0..8),
            prop_oneof![0.0..300.0f64, Just(f64::NAN)],
            any::<bool>(),
            0..20u32,
            proptest::option::of(0.0..255.0f64),
            proptest::option::of(0.0..1.0f64),
            any::<bool>(),
            prop_oneof![-1.0..1.0f64, Just(0.1), Just(f64::NAN), Just(f64::INFINITY)],
            proptest::sample::select(vec!["fr", "en", "en-GB", ""]),
        )
            .prop_map(
                |(
                    rooms,
                    directives,
                    duration_s,
                    has_audio,
                    frames_analysed,
                    mean_luma,
                    sharpness,
                    narrated,
                    margin_ratio,
                    locale,
                )| {
                    FusionInput {
                        vision: VisionResult { rooms },
                        directives: VoiceDirectives { directives },
                        media: MediaFacts {
                            duration_s,
                            width: 1280,
                            height: 720,
                            rotation: 0,
                            has_audio,
                            frames_analysed,
                            frame_times_s: Vec::new(),
                        },
                        mean_luma,
                        sharpness,
                        narrated,
                        margin_ratio,
                        locale: locale.to_string(),
                    }
                },
            )
    }

    fn lines(inventory: &Inventory) -> impl Iterator<Item = &InventoryLine> {
        inventory.rooms.iter().flat_map(|room| room.lines.iter())
    }

    proptest! {
        #[test]
        fn total_is_the_sum_of_lines_plus_margin(input in any_input()) {
            let inventory = fuse(&input);
            let lines_sum = lines(&inventory).fold(0.0, |sum, line| sum + line.volume_m3);
            prop_assert!((inventory.total_m3 - (lines_sum + inventory.margin_m3)).abs() <= 1e-9);
            prop_assert_eq!(inventory.total_m3, inventory.subtotal_m3 + inventory.margin_m3);
            prop_assert_eq!(inventory.margin_m3, inventory.subtotal_m3 * inventory.margin_ratio);
            prop_assert!((0.0..=MAX_MARGIN_RATIO).contains(&inventory.margin_ratio));
            let rooms_sum = inventory.rooms.iter().fold(0.0, |sum, room| sum + room.subtotal_m3);
            prop_assert_eq!(inventory.subtotal_m3, rooms_sum);
            for room in &inventory.rooms {
                let sum = room.lines.iter().fold(0.0, |sum, line| sum + line.volume_m3);
                prop_assert_eq!(room.subtotal_m3, sum);
            }
            let count = lines(&inventory).map(|line| line.quantity).sum::<u32>();
            prop_assert_eq!(inventory.item_count, count);
        }

        #[test]
        fn output_is_finite_non_negative_and_bounded(input in any_input()) {
            let inventory = fuse(&input);
            for value in [inventory.subtotal_m3, inventory.margin_m3, inventory.total_m3] {
                prop_assert!(value.is_finite() && value >= 0.0 && value.is_sign_positive());
            }
            for room in &inventory.rooms {
                prop_assert!(room.subtotal_m3.is_finite() && room.subtotal_m3.is_sign_positive());
                prop_assert!(!room.room.is_empty());
                prop_assert!(!room.lines.is_empty() || !room.notes.is_empty());
            }
            for line in lines(&inventory) {
                prop_assert!((1..=MAX_QUANTITY).contains(&line.quantity));
                prop_assert!(line.unit_volume_m3.is_finite() && line.unit_volume_m3.is_sign_positive());
                prop_assert!(line.unit_volume_m3 <= MAX_OTHER_VOLUME_M3);
                prop_assert_eq!(line.volume_m3, line.unit_volume_m3 * f64::from(line.quantity));
                prop_assert!(line.confidence.is_none_or(|c| (0.0..=1.0).contains(&c)));
            }
        }

        #[test]
        fn fuse_is_deterministic(input in any_input()) {
            let first = fuse(&input);
            let second = fuse(&input.clone());
            prop_assert_eq!(serde_json::to_string(&first).unwrap(), serde_json::to_string(&second).unwrap());
            prop_assert_eq!(first, second);
        }

        #[test]
        fn an_exclusion_never_adds_and_never_goes_negative(
            input in any_input(),
            key in any_key(),
            quantity in proptest::option::of(any_quantity()),
            room in proptest::option::of(any_room()),
        ) {
            let before = fuse(&input);
            let mut excluded = input.clone();
            excluded.directives.directives.push(directive(DirectiveAction::Exclude, &key, quantity, None));
            excluded.directives.directives.last_mut().unwrap().room = room;
            let after = fuse(&excluded);
            prop_assert!(after.subtotal_m3 <= before.subtotal_m3 + 1e-9);
            prop_assert!(after.item_count <= before.item_count);
            let removed = before.item_count - after.item_count;
            if let Some(quantity) = quantity {
                prop_assert!(removed <= quantity);
            }
            for line in lines(&after) {
                prop_assert!(line.quantity > 0 && line.volume_m3 >= 0.0);
            }
        }

        #[test]
        fn excluding_all_of_a_catalogue_item_removes_every_line(input in any_input(), index in 0..catalogue::items().len()) {
            let key = catalogue::items()[index].key;
            let mut excluded = input.clone();
            excluded.directives.directives.push(directive(DirectiveAction::Exclude, key, None, None));
            let after = fuse(&excluded);
            prop_assert!(lines(&after).all(|line| line.key != key));
        }
    }
}
