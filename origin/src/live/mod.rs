//! Live capture on the origin: a recording forwarded in ranges while the edge still receives
//! it, extracted and transcribed as it arrives, so at the stop only the last audio segment,
//! one vision call and the directives remain (issue 13 §3–§4; wire rules in docs/PROTOCOL.md).
//!
//! [`route`] answers the ranges and the finishing forward; [`registry`] holds this replica's
//! live jobs and drops them (idle, newer attempt, cancel); [`job`] is one live job and the
//! finished [`Recording`] the pipeline extracts; [`decoder`] is its ffmpeg, fed on stdin;
//! [`segments`] transcribes the audio while it goes on; [`wav`] wraps a segment's PCM.

mod decoder;
mod job;
mod registry;
mod route;
mod segments;
pub(crate) mod wav;

pub use job::Recording;
pub use registry::Registry;
pub(crate) use route::finish;
pub use route::post_stream;
