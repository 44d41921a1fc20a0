//! The deterministic volume catalogue.
//!
//! SKELETON: signatures are the contract; the data and bodies are being written.

use serde::Serialize;

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Furniture,
    Appliance,
    Box,
    Electronics,
    Decor,
    Outdoor,
    Other,
}

/// One item movers quote. `key` is stable: it is part of the vision model's JSON schema.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct CatalogueItem {
    pub key: &'static str,
    pub label_fr: &'static str,
    pub label_en: &'static str,
    pub aliases: &'static [&'static str],
    pub volume_m3: f64,
    pub category: Category,
    /// Where the item usually stands ("salon", "cuisine"…), in French.
    pub usual_room: &'static str,
    /// Where the volume comes from (a public French movers' table).
    pub source: &'static str,
}

/// Every item, in a stable order.
pub fn items() -> &'static [CatalogueItem] {
    todo!()
}

/// Every key, plus `other`, for the vision schema's enum.
pub fn schema_keys() -> Vec<&'static str> {
    todo!()
}

/// By key or alias (French or English), ignoring case, accents and surrounding spaces.
pub fn lookup(name: &str) -> Option<&'static CatalogueItem> {
    todo!("{name}")
}
