//! HMAC-SHA256 signatures for edge ↔ origin requests.
//!
//! Both directions cross the public internet in production, and neither side can use the
//! other's identity provider, so they share one secret. The signature covers a canonical string
//! rather than raw headers because proxies reorder and re-case headers; it includes the content
//! length (a truncated or padded video is rejected), a timestamp (a captured request cannot be
//! replayed after [`MAX_SKEW_SECS`]) and a metadata field: the job metadata for a forwarded video,
//! whose body is streamed and cannot be hashed before sending, or the SHA-256 of the body for
//! small JSON events. Verification compares in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// Unix seconds, as sent in [`HEADER_TIMESTAMP`].
pub const HEADER_TIMESTAMP: &str = "x-dodolens-timestamp";
/// Lowercase hex HMAC-SHA256 of the canonical string.
pub const HEADER_SIGNATURE: &str = "x-dodolens-signature";
/// The signed metadata field (base64 JSON job metadata, or the body's SHA-256 hex).
pub const HEADER_METADATA: &str = "x-dodolens-metadata";

/// How far a request's timestamp may be from the verifier's clock, either way.
pub const MAX_SKEW_SECS: u64 = 300;

const VERSION: &str = "DODOLENS-HMAC-SHA256-V1";

/// The parts of a request the signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParts<'a> {
    pub method: &'a str,
    /// Path only, no scheme, host or query: the host differs behind proxies.
    pub path: &'a str,
    pub timestamp: u64,
    pub content_length: u64,
    pub metadata: &'a str,
}

impl SignedParts<'_> {
    /// One field per line; none of the fields may contain a newline, so the encoding is
    /// unambiguous.
    pub fn canonical(&self) -> String {
        format!(
            "{VERSION}\n{}\n{}\n{}\n{}\n{}",
            self.method.to_ascii_uppercase(),
            self.path,
            self.timestamp,
            self.content_length,
            self.metadata
        )
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing signature headers")]
    Missing,
    #[error("malformed signature header")]
    Malformed,
    #[error("request timestamp outside the allowed window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
    #[error("signing secret is empty")]
    EmptySecret,
}

/// Lowercase hex signature of `parts` with `secret`.
pub fn sign(secret: &[u8], parts: &SignedParts<'_>) -> Result<String, SignatureError> {
    Ok(hex::encode(mac(secret, parts)?.finalize().into_bytes()))
}

/// Checks `signature_hex` against `parts`, and the timestamp against `now_secs`.
pub fn verify(
    secret: &[u8],
    parts: &SignedParts<'_>,
    signature_hex: &str,
    now_secs: u64,
) -> Result<(), SignatureError> {
    check_fresh(parts.timestamp, now_secs)?;
    let given = hex::decode(signature_hex.trim()).map_err(|_| SignatureError::Malformed)?;
    let expected = mac(secret, parts)?.finalize().into_bytes();
    if given.len() == expected.len() && bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The timestamp check alone, so a verifier can refuse a stale request before reading its body.
pub fn check_fresh(timestamp: u64, now_secs: u64) -> Result<(), SignatureError> {
    if timestamp.abs_diff(now_secs) > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// Lowercase hex SHA-256, the metadata field for requests whose body is small enough to hash.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Parses the timestamp header.
pub fn parse_timestamp(value: Option<&str>) -> Result<u64, SignatureError> {
    value
        .ok_or(SignatureError::Missing)?
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)
}

fn mac(secret: &[u8], parts: &SignedParts<'_>) -> Result<HmacSha256, SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::EmptySecret);
    }
    if [parts.method, parts.path, parts.metadata]
        .iter()
        .any(|f| f.contains('\n'))
    {
        return Err(SignatureError::Malformed);
    }
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| SignatureError::EmptySecret)?;
    mac.update(parts.canonical().as_bytes());
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"test-secret-0123456789";

    fn parts(meta: &str) -> SignedParts<'_> {
        SignedParts {
            method: "POST",
            path: "/v1/jobs/abc",
            timestamp: 1_700_000_000,
            content_length: 42,
            metadata: meta,
        }
    }

    #[test]
    fn sign_then_verify() {
        let p = parts("meta");
        let sig = sign(SECRET, &p).unwrap();
        assert_eq!(sig.len(), 64);
        assert_eq!(verify(SECRET, &p, &sig, 1_700_000_100), Ok(()));
    }

    #[test]
    fn known_vector_is_stable() {
        // Pinned so a change to the canonical string is a deliberate protocol change.
        let p = parts("meta");
        assert_eq!(
            p.canonical(),
            "DODOLENS-HMAC-SHA256-V1\nPOST\n/v1/jobs/abc\n1700000000\n42\nmeta"
        );
    }

    #[test]
    fn stale_and_future_timestamps_fail() {
        let p = parts("m");
        let sig = sign(SECRET, &p).unwrap();
        assert_eq!(
            verify(SECRET, &p, &sig, 1_700_000_000 + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, &p, &sig, 1_700_000_000 - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(verify(SECRET, &p, &sig, 1_700_000_000 + 300), Ok(()));
    }

    #[test]
    fn wrong_secret_and_garbage_fail() {
        let p = parts("m");
        let sig = sign(SECRET, &p).unwrap();
        assert_eq!(
            verify(b"other", &p, &sig, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &p, "zz", 1_700_000_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, &p, "", 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(sign(b"", &p), Err(SignatureError::EmptySecret));
    }

    #[test]
    fn newline_injection_is_refused() {
        let p = parts("a\nb");
        assert_eq!(sign(SECRET, &p), Err(SignatureError::Malformed));
    }

    #[test]
    fn timestamp_header_parsing() {
        assert_eq!(parse_timestamp(None), Err(SignatureError::Missing));
        assert_eq!(parse_timestamp(Some("x")), Err(SignatureError::Malformed));
        assert_eq!(parse_timestamp(Some(" 12 ")), Ok(12));
    }

    proptest! {
        /// Flipping any byte of any signed field, or of the signature, breaks verification.
        #[test]
        fn any_flipped_byte_fails(meta in "[a-zA-Z0-9+/=]{0,64}", field in 0usize..4, pos in 0usize..64, bit in 0u8..7) {
            let p = parts(&meta);
            let sig = sign(SECRET, &p).unwrap();
            let flip = |s: &str| -> String {
                let mut b = s.as_bytes().to_vec();
                if b.is_empty() { b.push(b'x') } else { let i = pos % b.len(); b[i] ^= 1 << bit; }
                String::from_utf8_lossy(&b).into_owned()
            };
            let (method, path, metadata, signature) = match field {
                0 => (flip(p.method), p.path.to_string(), meta.clone(), sig.clone()),
                1 => (p.method.to_string(), flip(p.path), meta.clone(), sig.clone()),
                2 => (p.method.to_string(), p.path.to_string(), flip(&meta), sig.clone()),
                _ => (p.method.to_string(), p.path.to_string(), meta.clone(), flip(&sig)),
            };
            let q = SignedParts { method: &method, path: &path, metadata: &metadata, ..p.clone() };
            // Methods compare case-insensitively by design: a flip that only changes case is the
            // same request.
            prop_assume!(!(field == 0 && method.eq_ignore_ascii_case(p.method)));
            // Hex is case-insensitive too.
            prop_assume!(!(field == 3 && signature.eq_ignore_ascii_case(&sig)));
            prop_assert!(verify(SECRET, &q, &signature, p.timestamp).is_err());
        }

        #[test]
        fn changed_length_or_time_fails(delta in 1u64..1_000_000) {
            let p = parts("m");
            let sig = sign(SECRET, &p).unwrap();
            let longer = SignedParts { content_length: p.content_length + delta, ..p.clone() };
            prop_assert_eq!(verify(SECRET, &longer, &sig, p.timestamp), Err(SignatureError::Mismatch));
            let later = SignedParts { timestamp: p.timestamp + delta % 300 + 1, ..p.clone() };
            prop_assert_eq!(verify(SECRET, &later, &sig, p.timestamp), Err(SignatureError::Mismatch));
        }
    }
}
