//! `dodolens-shared`'s rules for the browser, through wasm-bindgen.
//!
//! The page must show exactly the totals the edge will compute on confirmation, so it runs the
//! same Rust: [`apply_edits`] is `shared::edits::apply`, [`search_catalogue`] is
//! `shared::catalogue::search`, [`validate_contact`] is `shared::handoff::validate`. The
//! recorder's buffer follows `shared::recording_buffer` ([`recording_released`],
//! [`recording_resume`], [`recording_pieces`]), its bitrate, backlog and frame-rate steps
//! `shared::recording` ([`recording_bitrate`], [`recording_backlog_seconds`], [`Pacer`]). Values cross
//! the boundary as JSON strings (the types are the generated `protocol.ts` ones), which keeps the
//! bundle small: no serde-wasm-bindgen, no JS glue beyond strings. Built by
//! `scripts/build-web-wasm` into `web/wasm/`.

use dodolens_shared::recording;
use dodolens_shared::recording_buffer::{self, Span};
use dodolens_shared::{catalogue, edits, handoff, protocol::Contact, protocol::Edit};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// The inventory (JSON) after the edit list (JSON), or an error naming the refused edit.
#[wasm_bindgen]
pub fn apply_edits(inventory: &str, edits: &str, locale: &str) -> Result<String, JsError> {
    let (inventory, edits) = parse(inventory, edits)?;
    let edited = edits::apply(&inventory, &edits, locale)?;
    Ok(serde_json::to_string(&edited)?)
}

/// The edits (JSON) that undo the list, newest first.
#[wasm_bindgen]
pub fn undo_edits(inventory: &str, edits: &str, locale: &str) -> Result<String, JsError> {
    let (inventory, edits) = parse(inventory, edits)?;
    Ok(serde_json::to_string(&edits::undo(
        &inventory, &edits, locale,
    )?)?)
}

fn parse(
    inventory: &str,
    edits: &str,
) -> Result<(dodolens_shared::protocol::Inventory, Vec<Edit>), JsError> {
    Ok((
        serde_json::from_str(inventory)?,
        serde_json::from_str(edits)?,
    ))
}

#[derive(Serialize)]
struct Found {
    key: &'static str,
    label: &'static str,
    volume_m3: f64,
    weight_kg: f64,
    flags: &'static [dodolens_shared::protocol::ItemFlag],
}

/// Catalogue items matching `query`, best first: `[{key, label, volume_m3, weight_kg, flags}]`.
#[wasm_bindgen]
pub fn search_catalogue(query: &str, locale: &str, limit: usize) -> String {
    let found: Vec<Found> = catalogue::search(query, locale, limit)
        .into_iter()
        .map(|item| Found {
            key: item.key,
            label: item.label(locale),
            volume_m3: item.volume_m3,
            weight_kg: item.weight_kg,
            flags: item.flags,
        })
        .collect();
    serde_json::to_string(&found).unwrap_or_else(|_| "[]".into())
}

/// `{"contact": Contact}` when valid (normalised), else `{"fields": [ContactField…]}`.
#[wasm_bindgen]
pub fn validate_contact(contact: &str, now_ms: f64) -> Result<String, JsError> {
    let contact: Contact = serde_json::from_str(contact)?;
    let answer = match handoff::validate(&contact, now_ms.max(0.0) as u64) {
        Ok(contact) => serde_json::json!({ "contact": contact }),
        Err(fields) => serde_json::json!({ "fields": fields }),
    };
    Ok(answer.to_string())
}

/// The offsets (JSON array) of the kept chunks (JSON `[{offset, len}]`, in order) that the
/// server's acknowledgement of `acknowledged` bytes releases.
#[wasm_bindgen]
pub fn recording_released(spans: &str, acknowledged: f64) -> Result<String, JsError> {
    let spans: Vec<Span> = serde_json::from_str(spans)?;
    let offsets = recording_buffer::released(&spans, acknowledged.max(0.0) as u64);
    Ok(serde_json::to_string(&offsets)?)
}

/// `{"resume": {from, length}}` when the kept chunks finish an upload the server holds
/// `server` bytes of, else `{"refused": {reason, …}}`.
#[wasm_bindgen]
pub fn recording_resume(spans: &str, server: f64) -> Result<String, JsError> {
    let spans: Vec<Span> = serde_json::from_str(spans)?;
    let answer = match recording_buffer::resume(&spans, server.max(0.0) as u64) {
        Ok(resume) => serde_json::json!({ "resume": resume }),
        Err(refusal) => serde_json::json!({ "refused": refusal }),
    };
    Ok(answer.to_string())
}

/// The parts (`[{offset, skip, take}]`) of the kept chunks that make up `[start, end)`.
#[wasm_bindgen]
pub fn recording_pieces(spans: &str, start: f64, end: f64) -> Result<String, JsError> {
    let spans: Vec<Span> = serde_json::from_str(spans)?;
    let pieces = recording_buffer::pieces(&spans, start.max(0.0) as u64, end.max(0.0) as u64);
    Ok(serde_json::to_string(&pieces)?)
}

/// The video bitrate cap for a recording of `height` lines.
#[wasm_bindgen]
pub fn recording_bitrate(height: u32) -> u32 {
    recording::bitrate_for_height(height)
}

/// How far the upload lags behind the camera, in seconds of video.
#[wasm_bindgen]
pub fn recording_backlog_seconds(recorded: f64, uploaded: f64, bits_per_second: u32) -> f64 {
    recording::backlog_seconds(
        recorded.max(0.0) as u64,
        uploaded.max(0.0) as u64,
        bits_per_second,
    )
}

/// `shared::recording::Pacer`: says when to lower the recording's frame rate.
#[wasm_bindgen]
#[derive(Default)]
pub struct Pacer(recording::Pacer);

#[wasm_bindgen]
impl Pacer {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Pacer {
        Pacer::default()
    }

    /// The lower frame rate to switch to now, if the backlog has grown long enough.
    pub fn observe(&mut self, now_ms: f64, backlog_s: f64) -> Option<u32> {
        self.0.observe(now_ms.max(0.0) as u64, backlog_s)
    }
}
