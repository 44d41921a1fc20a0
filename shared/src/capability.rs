//! The browser's capability for one session, and the public reference other systems may see.
//!
//! The Durable Object id names a session but is not a secret (Cloudflare documents it as random,
//! not as confidential). So creation also draws a separate random token (256 bits, from the
//! runtime's CSPRNG) and every browser route names the session by its *handle*
//! `{id}.{token}`, a single URL path segment. Putting it in the path is what lets any standard
//! tus client work unmodified: the `Location` of the creation answer is the upload URL with the
//! handle in it, and the client sends that URL back on every HEAD, PATCH and DELETE; the
//! WebSocket and the JSON routes carry the same segment.
//!
//! The object stores only the token's SHA-256, and compares digests in constant time, so neither
//! a copy of its storage nor a timing side channel gives the token away. A wrong or missing token
//! is answered exactly like an unknown session (404).
//!
//! Systems outside the trust boundary (the mover's CRM, webhooks) get a [`public_reference`]: a
//! short one-way digest of the id that identifies the session in a conversation ("dossier
//! DL-7K3M9QX2") and opens nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::tus::is_valid_session_id;

/// Random bytes in a token: 256 bits.
pub const TOKEN_BYTES: usize = 32;
/// Length of the base64url (unpadded) text of a token.
pub const TOKEN_CHARS: usize = 43;
/// Separates the id from the token inside a handle (never produced by base64url or hex).
pub const SEPARATOR: char = '.';

/// A session named by its id and the capability token, as parsed from a URL segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle<'a> {
    pub id: &'a str,
    pub token: &'a str,
}

impl<'a> Handle<'a> {
    /// `{64 hex id}.{43 base64url token}`; anything else names no session.
    pub fn parse(segment: &'a str) -> Option<Handle<'a>> {
        let (id, token) = segment.split_once(SEPARATOR)?;
        (is_valid_session_id(id) && is_well_formed_token(token)).then_some(Handle { id, token })
    }
}

/// The URL segment for a session.
pub fn handle(id: &str, token: &str) -> String {
    format!("{id}{SEPARATOR}{token}")
}

/// The text form of freshly drawn random bytes.
pub fn encode_token(random: &[u8; TOKEN_BYTES]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

fn is_well_formed_token(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the object stores instead of the token: its SHA-256, lowercase hex.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` is the one whose digest was stored; constant time in the compared bytes.
pub fn token_matches(token: &str, stored_digest: &str) -> bool {
    let presented = token_digest(token);
    presented.len() == stored_digest.len()
        && bool::from(presented.as_bytes().ct_eq(stored_digest.as_bytes()))
}

/// Crockford's base32 alphabet: no I, L, O or U, so a reference read over the phone survives.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A short, non-secret reference for a session (`DL-` and 8 base32 characters, 40 bits), derived
/// one-way from the id: enough to tell sessions apart in a CRM, useless to reach one.
pub fn public_reference(session_id: &str) -> String {
    let digest = Sha256::digest(format!("dodolens-public-reference-v1\n{session_id}").as_bytes());
    let bits = digest[..5]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let text: String = (0..8)
        .rev()
        .map(|i| CROCKFORD[((bits >> (i * 5)) & 31) as usize] as char)
        .collect();
    format!("DL-{text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id() -> String {
        "0123456789abcdef".repeat(4)
    }

    #[test]
    fn a_handle_is_the_id_then_the_token() {
        let token = encode_token(&[7u8; TOKEN_BYTES]);
        assert_eq!(token.len(), TOKEN_CHARS);
        let text = handle(&id(), &token);
        assert_eq!(
            Handle::parse(&text),
            Some(Handle {
                id: &id(),
                token: &token
            })
        );
    }

    #[test]
    fn malformed_handles_name_nothing() {
        let token = encode_token(&[1u8; TOKEN_BYTES]);
        for bad in [
            id(),
            format!("{}.", id()),
            format!(".{token}"),
            format!("{}.{}", id(), &token[1..]),
            format!("{}.{token}x", id()),
            format!("{}.{}", id(), token.replace(|_| true, "=")),
            format!("{}.{token}", id().to_uppercase()),
            format!("{}.{}.{token}", id(), token),
            format!("{}.{}", id(), "+".repeat(TOKEN_CHARS)),
        ] {
            assert_eq!(Handle::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn only_the_stored_token_matches() {
        let token = encode_token(&[9u8; TOKEN_BYTES]);
        let stored = token_digest(&token);
        assert_ne!(stored, token, "the token itself is never stored");
        assert!(token_matches(&token, &stored));
        assert!(!token_matches(&encode_token(&[8u8; TOKEN_BYTES]), &stored));
        assert!(!token_matches("", &stored));
        assert!(!token_matches(&token, ""));
    }

    #[test]
    fn public_references_are_short_stable_and_not_the_id() {
        let reference = public_reference(&id());
        assert_eq!(reference, public_reference(&id()));
        assert_eq!(reference.len(), 11);
        assert!(reference.starts_with("DL-"));
        assert!(reference[3..].bytes().all(|b| CROCKFORD.contains(&b)));
        assert!(!id().to_uppercase().contains(&reference[3..]));
        assert_ne!(reference, public_reference(&"f".repeat(64)));
    }

    proptest! {
        #[test]
        fn any_changed_token_byte_is_refused(random in prop::array::uniform32(any::<u8>()), pos in 0usize..TOKEN_CHARS, to in "[A-Za-z0-9_-]") {
            let token = encode_token(&random);
            let stored = token_digest(&token);
            let mut other = token.clone().into_bytes();
            other[pos] = to.as_bytes()[0];
            let other = String::from_utf8(other).unwrap();
            prop_assume!(other != token);
            prop_assert!(Handle::parse(&handle(&id(), &other)).is_some());
            prop_assert!(!token_matches(&other, &stored));
        }
    }
}
