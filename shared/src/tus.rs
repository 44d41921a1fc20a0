//! tus 1.0.0 rules (https://tus.io/protocols/resumable-upload), as pure functions.
//!
//! SKELETON: signatures are the contract the edge codes against; bodies are being written.

use crate::protocol::{Millis, UploadMeta};
use thiserror::Error;

pub const TUS_VERSION: &str = "1.0.0";
pub const TUS_EXTENSIONS: &str = "creation,creation-with-upload,expiration,termination,checksum";
pub const TUS_CHECKSUM_ALGORITHMS: &str = "sha1";
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// Rows in the Durable Object's SQLite hold at most this many bytes.
pub const ROW_BYTES: usize = 1024 * 1024;

/// Every way a tus request can be refused; [`TusError::status`] is the HTTP code.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum TusError {
    #[error("Tus-Resumable header missing or unsupported (this server speaks {TUS_VERSION})")]
    UnsupportedVersion,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("Upload-Offset {got} does not match the current offset {expected}")]
    OffsetMismatch { expected: u64, got: u64 },
    #[error("upload exceeds the maximum size of {max} bytes")]
    TooLarge { max: u64 },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("unknown upload")]
    NotFound,
    #[error("upload expired or purged")]
    Gone,
    #[error("checksum mismatch")]
    ChecksumMismatch,
}

impl TusError {
    /// 412, 400, 409, 413, 415, 404, 410 or 460.
    pub fn status(&self) -> u16 {
        todo!()
    }
}

/// `Tus-Resumable` must be exactly 1.0.0 on every request but OPTIONS (412 otherwise).
pub fn check_version(header: Option<&str>) -> Result<(), TusError> {
    todo!("{header:?}")
}

/// `Upload-Length` for creation: a non-negative integer ≤ `max` (400 / 413).
/// `Upload-Defer-Length` is not supported (400).
pub fn parse_upload_length(header: Option<&str>, max: u64) -> Result<u64, TusError> {
    todo!("{header:?} {max}")
}

/// `Upload-Offset` on PATCH: a non-negative integer (400).
pub fn parse_upload_offset(header: Option<&str>) -> Result<u64, TusError> {
    todo!("{header:?}")
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs. Requires `filetype` = `video/*`
/// (415 otherwise); `filename` optional; `locale` defaults to `fr`; unknown keys ignored.
pub fn parse_metadata(header: Option<&str>) -> Result<UploadMeta, TusError> {
    todo!("{header:?}")
}

/// PATCH bodies (and creation-with-upload bodies) must be `application/offset+octet-stream` (415).
pub fn check_content_type(header: Option<&str>) -> Result<(), TusError> {
    todo!("{header:?}")
}

/// A parsed `Upload-Checksum` (only `sha1` is supported; others are 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub sha1: [u8; 20],
}

impl Checksum {
    /// `None` when the header is absent.
    pub fn parse(header: Option<&str>) -> Result<Option<Checksum>, TusError> {
        todo!("{header:?}")
    }

    /// 460 when `body` does not hash to the declared value.
    pub fn verify(&self, body: &[u8]) -> Result<(), TusError> {
        todo!("{}", body.len())
    }
}

/// Decides a PATCH: the claimed offset must equal the stored one (409), the request must fit
/// in `max_request` bytes (413) and not pass `length` (413). Returns the new offset.
pub fn plan_patch(
    stored_offset: u64,
    length: u64,
    claimed_offset: u64,
    body_len: u64,
    max_request: u64,
) -> Result<u64, TusError> {
    todo!("{stored_offset} {length} {claimed_offset} {body_len} {max_request}")
}

/// Byte ranges of `body_len` split into rows of at most [`ROW_BYTES`].
pub fn row_ranges(body_len: usize) -> Vec<std::ops::Range<usize>> {
    todo!("{body_len}")
}

/// Session ids are Durable Object unique ids: exactly 64 lowercase hex digits. Anything else is
/// 404 without touching storage.
pub fn is_valid_session_id(id: &str) -> bool {
    todo!("{id}")
}

/// `Upload-Expires` value: an RFC 9110 HTTP-date, e.g. `Wed, 25 Jun 2025 16:00:00 GMT`.
pub fn http_date(at: Millis) -> String {
    todo!("{at}")
}

/// Headers for an OPTIONS response (204): Tus-Version, Tus-Extension, Tus-Max-Size,
/// Tus-Checksum-Algorithm, plus CORS preflight headers.
pub fn options_headers(max_size: u64) -> Vec<(&'static str, String)> {
    todo!("{max_size}")
}

/// CORS headers every tus response carries so a browser can read Location, Upload-Offset,
/// Upload-Length, Upload-Expires and Tus-* (Access-Control-Expose-Headers).
pub fn cors_headers() -> Vec<(&'static str, String)> {
    todo!()
}
