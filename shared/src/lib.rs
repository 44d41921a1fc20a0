//! DodoLens shared crate: the protocol and every decision that can be made without I/O.
//!
//! The edge (wasm32) and the origin (native) are thin: they read requests, call into this crate
//! and perform the effects it returns. Keeping the rules here means they are tested natively with
//! `cargo test -p dodolens-shared`, and both sides agree by construction.

pub mod admission;
pub mod answer;
pub mod audio_cut;
pub mod capability;
pub mod catalogue;
pub mod coco;
pub mod edits;
pub mod frame_pick;
pub mod frame_plan;
pub mod fusion;
pub mod handoff;
pub mod lifecycle;
pub mod narration;
pub mod protocol;
pub mod recording;
pub mod recording_buffer;
pub mod rooms;
pub mod sightings;
pub mod signing;
pub mod stream_range;
pub mod tus;
pub mod video_digest;
