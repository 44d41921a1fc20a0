//! HMAC-SHA256 signatures for every request one DodoLens party sends another.
//!
//! The edge and the origin cross the public internet and cannot use each other's identity
//! provider, so they share a key; the origin also signs the mover's webhook, with a different
//! key the mover holds. The signature covers a canonical string rather than raw headers because
//! proxies reorder and re-case headers. The string starts with the request's [`Purpose`]: a
//! signature made for one use (a webhook delivery, say) never verifies as another (an origin
//! event), even if a key were reused. It also covers the content length (a truncated or padded
//! body is rejected), a timestamp (a captured request cannot be replayed after
//! [`MAX_SKEW_SECS`]), a metadata field (the job metadata for a forwarded video, the SHA-256 of
//! the body for small JSON requests) and any extra signed headers (e.g. the video's digest).
//!
//! A [`Keyring`] signs with its current key and also accepts a second one, so keys rotate
//! without downtime (the procedure is in docs/SECURITY.md). Verification compares in constant
//! time and only accepts the exact lowercase hex a signer produces.

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

const VERSION: &str = "DODOLENS-HMAC-SHA256-V2";
/// Hex characters of a SHA-256 MAC.
const SIGNATURE_HEX_LEN: usize = 64;

/// What a signed request is for. The verifier picks it from the route it serves, never from
/// the request, so a signature is only good for the one kind of request it was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Edge → origin: a video to analyse (`POST /v1/jobs/{id}`).
    Forward,
    /// Origin → edge: a stage, progress or final event.
    OriginEvent,
    /// Origin → the mover's webhook receiver (signed with the webhook key).
    Webhook,
    /// Edge → origin: stop a job (`DELETE /v1/jobs/{id}`).
    Cancel,
    /// Edge → origin: the confirmed inventory and contact, for the sinks.
    Handoff,
    /// Edge → origin: a range of a video still being received (`POST /v1/jobs/{id}/stream`).
    Stream,
}

impl Purpose {
    pub const ALL: [Purpose; 6] = [
        Purpose::Forward,
        Purpose::OriginEvent,
        Purpose::Webhook,
        Purpose::Cancel,
        Purpose::Handoff,
        Purpose::Stream,
    ];

    /// The purpose's line in the canonical string.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::Forward => "forward",
            Purpose::OriginEvent => "origin-event",
            Purpose::Webhook => "webhook",
            Purpose::Cancel => "cancel",
            Purpose::Handoff => "handoff",
            Purpose::Stream => "stream",
        }
    }
}

/// The parts of a request the signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParts<'a> {
    pub purpose: Purpose,
    /// Compared exactly: HTTP methods are case-sensitive.
    pub method: &'a str,
    /// Path only, no scheme, host or query: the host differs behind proxies.
    pub path: &'a str,
    pub timestamp: u64,
    pub content_length: u64,
    pub metadata: &'a str,
    /// Further signed headers as `(lowercase name, value)`, in the order both sides agree on.
    pub extra: &'a [(&'a str, &'a str)],
}

impl<'a> SignedParts<'a> {
    /// Parts without extra headers.
    pub fn new(
        purpose: Purpose,
        method: &'a str,
        path: &'a str,
        timestamp: u64,
        content_length: u64,
        metadata: &'a str,
    ) -> Self {
        SignedParts {
            purpose,
            method,
            path,
            timestamp,
            content_length,
            metadata,
            extra: &[],
        }
    }

    /// One field per line, extra headers as `name:value`; no field may contain a newline (and
    /// no extra name a colon), so the encoding is unambiguous.
    pub fn canonical(&self) -> String {
        let mut out = format!(
            "{VERSION}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.purpose.label(),
            self.method,
            self.path,
            self.timestamp,
            self.content_length,
            self.metadata
        );
        for (name, value) in self.extra {
            out.push('\n');
            out.push_str(name);
            out.push(':');
            out.push_str(value);
        }
        out
    }

    fn is_well_formed(&self) -> bool {
        let fields = [self.method, self.path, self.metadata];
        !fields.iter().any(|f| f.contains('\n'))
            && self.extra.iter().all(|(name, value)| {
                !name.is_empty() && !name.contains([':', '\n']) && !value.contains('\n')
            })
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

/// The keys of one trust relationship: signs with `current`, accepts `current` or `other`.
///
/// `other` is the second key of a rollover: first the next key (every party learns to accept
/// it before anyone signs with it), then the old one (accepted while the last old-signed
/// requests drain). Keys never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    current: Vec<u8>,
    other: Option<Vec<u8>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &"<redacted>")
            .field("other", &self.other.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Keyring {
    /// An empty `other` counts as none; an empty `current` is refused.
    pub fn new(
        current: impl Into<Vec<u8>>,
        other: Option<Vec<u8>>,
    ) -> Result<Self, SignatureError> {
        let current = current.into();
        if current.is_empty() {
            return Err(SignatureError::EmptySecret);
        }
        Ok(Keyring {
            current,
            other: other.filter(|k| !k.is_empty()),
        })
    }

    /// Whether `key` is one this ring accepts (used to refuse a configuration that reuses a key
    /// across trust relationships).
    pub fn holds(&self, key: &[u8]) -> bool {
        self.current == key || self.other.as_deref() == Some(key)
    }

    pub fn sign(&self, parts: &SignedParts<'_>) -> Result<String, SignatureError> {
        sign(&self.current, parts)
    }

    /// Accepts a signature by either key; the timestamp is checked against `now_secs` first.
    pub fn verify(
        &self,
        parts: &SignedParts<'_>,
        signature_hex: &str,
        now_secs: u64,
    ) -> Result<(), SignatureError> {
        match verify(&self.current, parts, signature_hex, now_secs) {
            Err(SignatureError::Mismatch) => match &self.other {
                Some(other) => verify(other, parts, signature_hex, now_secs),
                None => Err(SignatureError::Mismatch),
            },
            result => result,
        }
    }
}

/// Lowercase hex signature of `parts` with `secret`.
pub fn sign(secret: &[u8], parts: &SignedParts<'_>) -> Result<String, SignatureError> {
    Ok(hex::encode(mac(secret, parts)?.finalize().into_bytes()))
}

/// Checks `signature_hex` (exactly the lowercase hex [`sign`] produces) against `parts`, and the
/// timestamp against `now_secs`.
pub fn verify(
    secret: &[u8],
    parts: &SignedParts<'_>,
    signature_hex: &str,
    now_secs: u64,
) -> Result<(), SignatureError> {
    check_fresh(parts.timestamp, now_secs)?;
    let well_formed = signature_hex.len() == SIGNATURE_HEX_LEN
        && signature_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(SignatureError::Malformed);
    }
    let given = hex::decode(signature_hex).map_err(|_| SignatureError::Malformed)?;
    let expected = mac(secret, parts)?.finalize().into_bytes();
    if bool::from(given.ct_eq(&expected)) {
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
    if !parts.is_well_formed() {
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
    const T: u64 = 1_700_000_000;

    fn parts(meta: &str) -> SignedParts<'_> {
        SignedParts::new(Purpose::Forward, "POST", "/v1/jobs/abc", T, 42, meta)
    }

    #[test]
    fn sign_then_verify() {
        let p = parts("meta");
        let sig = sign(SECRET, &p).unwrap();
        assert_eq!(sig.len(), 64);
        assert_eq!(verify(SECRET, &p, &sig, T + 100), Ok(()));
    }

    #[test]
    fn known_vector_is_stable() {
        // Pinned so a change to the canonical string is a deliberate protocol change (the edge
        // tests compute it independently in JavaScript).
        let extra = [("x-dodolens-video-sha256", "ab12")];
        let p = SignedParts {
            extra: &extra,
            ..parts("meta")
        };
        assert_eq!(
            p.canonical(),
            "DODOLENS-HMAC-SHA256-V2\nforward\nPOST\n/v1/jobs/abc\n1700000000\n42\nmeta\n\
             x-dodolens-video-sha256:ab12"
        );
        assert_eq!(
            sign(b"k", &parts("m")).unwrap(),
            "d68d2ac794180cdc1a74ec0ad55d5ce6e8ea537d2a340bf5f27a22ee317faa37"
        );
    }

    #[test]
    fn stale_and_future_timestamps_fail() {
        let p = parts("m");
        let sig = sign(SECRET, &p).unwrap();
        assert_eq!(
            verify(SECRET, &p, &sig, T + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, &p, &sig, T - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(verify(SECRET, &p, &sig, T + 300), Ok(()));
    }

    #[test]
    fn wrong_secret_and_garbage_fail() {
        let p = parts("m");
        let sig = sign(SECRET, &p).unwrap();
        assert_eq!(verify(b"other", &p, &sig, T), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, &p, "zz", T), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, &p, "", T), Err(SignatureError::Malformed));
        assert_eq!(
            verify(SECRET, &p, &sig.to_ascii_uppercase(), T),
            Err(SignatureError::Malformed),
            "only the exact form a signer produces"
        );
        assert_eq!(
            verify(SECRET, &p, &format!(" {sig}"), T),
            Err(SignatureError::Malformed)
        );
        assert_eq!(sign(b"", &p), Err(SignatureError::EmptySecret));
    }

    #[test]
    fn newline_and_colon_injection_is_refused() {
        assert_eq!(sign(SECRET, &parts("a\nb")), Err(SignatureError::Malformed));
        for extra in [
            [("a:b", "v")],
            [("a\nb", "v")],
            [("a", "v\nw")],
            [("", "v")],
        ] {
            let p = SignedParts {
                extra: &extra,
                ..parts("m")
            };
            assert_eq!(sign(SECRET, &p), Err(SignatureError::Malformed));
        }
    }

    #[test]
    fn timestamp_header_parsing() {
        assert_eq!(parse_timestamp(None), Err(SignatureError::Missing));
        assert_eq!(parse_timestamp(Some("x")), Err(SignatureError::Malformed));
        assert_eq!(parse_timestamp(Some(" 12 ")), Ok(12));
    }

    #[test]
    fn keyring_signs_with_current_and_accepts_both_during_a_rollover() {
        let old = Keyring::new(b"old-key".to_vec(), None).unwrap();
        // Step 1 of a rotation: still signing with the old key, already accepting the new one.
        let accepting = Keyring::new(b"old-key".to_vec(), Some(b"new-key".to_vec())).unwrap();
        // Step 2: signing with the new key, still accepting the old one.
        let rotated = Keyring::new(b"new-key".to_vec(), Some(b"old-key".to_vec())).unwrap();
        let new = Keyring::new(b"new-key".to_vec(), None).unwrap();
        let p = parts("m");
        let by_old = old.sign(&p).unwrap();
        let by_new = rotated.sign(&p).unwrap();
        assert_eq!(by_new, new.sign(&p).unwrap());
        for ring in [&old, &accepting, &rotated] {
            assert_eq!(ring.verify(&p, &by_old, T), Ok(()));
        }
        for ring in [&accepting, &rotated, &new] {
            assert_eq!(ring.verify(&p, &by_new, T), Ok(()));
        }
        assert_eq!(old.verify(&p, &by_new, T), Err(SignatureError::Mismatch));
        assert_eq!(new.verify(&p, &by_old, T), Err(SignatureError::Mismatch));
        assert_eq!(
            rotated.verify(&p, &by_old, T + 301),
            Err(SignatureError::Stale)
        );
        assert!(rotated.holds(b"old-key") && rotated.holds(b"new-key") && !new.holds(b"old-key"));
        assert_eq!(
            Keyring::new(Vec::new(), None),
            Err(SignatureError::EmptySecret)
        );
        assert_eq!(
            Keyring::new(b"k".to_vec(), Some(Vec::new())).unwrap(),
            Keyring::new(b"k".to_vec(), None).unwrap()
        );
        assert!(!format!("{rotated:?}").contains("key"));
    }

    /// A signed request as independent fields, so a single bit can be flipped in any of them.
    #[derive(Clone, Debug)]
    struct Request {
        purpose: Purpose,
        method: Vec<u8>,
        path: Vec<u8>,
        timestamp: u64,
        content_length: u64,
        metadata: Vec<u8>,
        extra_value: Vec<u8>,
        signature: Vec<u8>,
    }

    const EXTRA_NAME: &str = "x-dodolens-video-sha256";

    impl Request {
        fn signed(key: &[u8], purpose: Purpose, meta: &str, extra: &str) -> Request {
            let mut r = Request {
                purpose,
                method: b"POST".to_vec(),
                path: b"/v1/jobs/abc".to_vec(),
                timestamp: T,
                content_length: 42,
                metadata: meta.as_bytes().to_vec(),
                extra_value: extra.as_bytes().to_vec(),
                signature: Vec::new(),
            };
            r.signature = r.with_parts(|p| sign(key, p)).unwrap().into_bytes();
            r
        }

        fn with_parts<T>(&self, f: impl FnOnce(&SignedParts<'_>) -> T) -> T {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let (method, path, metadata) =
                (text(&self.method), text(&self.path), text(&self.metadata));
            let value = text(&self.extra_value);
            let extra = [(EXTRA_NAME, value.as_str())];
            f(&SignedParts {
                purpose: self.purpose,
                method: &method,
                path: &path,
                timestamp: self.timestamp,
                content_length: self.content_length,
                metadata: &metadata,
                extra: &extra,
            })
        }

        fn verify(&self, ring: &Keyring) -> Result<(), SignatureError> {
            let signature = String::from_utf8_lossy(&self.signature).into_owned();
            self.with_parts(|p| ring.verify(p, &signature, T))
        }

        /// Flips bit `bit` of byte `pos` of field `field` (numbers: bit `bit` of the u64).
        fn flip(&mut self, field: usize, pos: usize, bit: u32) {
            let flip_byte = |bytes: &mut Vec<u8>| {
                if bytes.is_empty() {
                    bytes.push(1 << (bit % 8));
                } else {
                    let i = pos % bytes.len();
                    bytes[i] ^= 1 << (bit % 8);
                }
            };
            match field {
                0 => flip_byte(&mut self.method),
                1 => flip_byte(&mut self.path),
                2 => flip_byte(&mut self.metadata),
                3 => flip_byte(&mut self.extra_value),
                4 => self.timestamp ^= 1 << (bit % 64),
                5 => self.content_length ^= 1 << (bit % 64),
                6 => {
                    let others: Vec<Purpose> = Purpose::ALL
                        .into_iter()
                        .filter(|p| *p != self.purpose)
                        .collect();
                    self.purpose = others[pos % others.len()];
                }
                _ => flip_byte(&mut self.signature),
            }
        }
    }

    fn purpose() -> impl Strategy<Value = Purpose> {
        (0usize..Purpose::ALL.len()).prop_map(|i| Purpose::ALL[i])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Flipping any single bit of any signed field, or of the signature, breaks verification.
        #[test]
        fn any_flipped_bit_fails(
            purpose in purpose(),
            meta in "[a-zA-Z0-9+/=]{0,64}",
            extra in "[0-9a-f]{0,64}",
            field in 0usize..8,
            pos in 0usize..128,
            bit in 0u32..64,
        ) {
            let ring = Keyring::new(SECRET.to_vec(), None).unwrap();
            let request = Request::signed(SECRET, purpose, &meta, &extra);
            prop_assert_eq!(request.verify(&ring), Ok(()));
            let mut tampered = request.clone();
            tampered.flip(field, pos, bit);
            prop_assert!(tampered.verify(&ring).is_err(), "{:?} verified", tampered);
        }

        /// A signature made for one purpose never verifies for another, with either key of a
        /// rollover; and a key outside the ring (the webhook key) verifies nothing.
        #[test]
        fn a_signature_is_good_for_one_purpose_and_one_ring(
            signed_for in purpose(),
            checked_for in purpose(),
            meta in "[a-zA-Z0-9+/=]{0,64}",
        ) {
            let ring = Keyring::new(b"edge-origin-new".to_vec(), Some(b"edge-origin-old".to_vec())).unwrap();
            for key in [&b"edge-origin-new"[..], b"edge-origin-old", b"webhook-key"] {
                let request = Request::signed(key, signed_for, &meta, "");
                let mut replayed = request.clone();
                replayed.purpose = checked_for;
                let accepted = replayed.verify(&ring).is_ok();
                prop_assert_eq!(accepted, signed_for == checked_for && ring.holds(key));
            }
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
