//! The edge's signed requests to the origin — a job, a cancel, a hand-off — checked in one
//! place, from the headers alone, so each route refuses an unsigned or stale request before it
//! reads a byte of body.
//!
//! The route, not the request, names the [`Purpose`]: a signature made for one kind of request
//! never opens another.

use axum::http::HeaderMap;
use dodolens_shared::signing::{
    self, Keyring, Purpose, SignatureError, SignedParts, HEADER_METADATA, HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
};

use crate::intake::{header, now_secs};

/// What the route expects a request to be signed for.
pub struct Expected<'a> {
    pub purpose: Purpose,
    pub method: &'a str,
    pub path: &'a str,
    pub content_length: u64,
    /// Extra signed headers, by name (a missing one signs as empty, so it cannot verify).
    pub extra: &'a [&'a str],
}

/// Checks the timestamp, metadata and signature headers against `expected` with `keys`;
/// returns the signed metadata (job metadata, or the SHA-256 hex of the body).
pub fn verify<'h>(
    keys: &Keyring,
    headers: &'h HeaderMap,
    expected: &Expected<'_>,
) -> Result<&'h str, SignatureError> {
    let timestamp = signing::parse_timestamp(header(headers, HEADER_TIMESTAMP))?;
    let metadata = header(headers, HEADER_METADATA).ok_or(SignatureError::Missing)?;
    let signature = header(headers, HEADER_SIGNATURE).ok_or(SignatureError::Missing)?;
    let extra: Vec<(&str, &str)> = expected
        .extra
        .iter()
        .map(|&name| (name, header(headers, name).unwrap_or_default()))
        .collect();
    let parts = SignedParts {
        extra: &extra,
        ..SignedParts::new(
            expected.purpose,
            expected.method,
            expected.path,
            timestamp,
            expected.content_length,
            metadata,
        )
    };
    keys.verify(&parts, signature, now_secs())?;
    Ok(metadata)
}
