//! Fusion of what the camera saw and what the narration said into the inventory.
//!
//! SKELETON: signatures are the contract; bodies are being written.

use crate::protocol::{Inventory, MediaFacts, VisionResult, VoiceDirectives};

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
    /// Room name used for additions that name no room ("non classé" / "unassigned").
    pub locale: String,
}

/// Builds the inventory. Never negative, never NaN; absurd quantities or volumes are clamped
/// with a warning.
pub fn fuse(input: &FusionInput) -> Inventory {
    todo!("{input:?}")
}
