//! The SHA-256 of an uploaded video, computed as its bytes are written, across PATCHes and
//! object restarts.
//!
//! The edge forwards the video to the origin as a stream, so it cannot hash the body before
//! signing it. Instead it hashes every chunk row as it stores it and signs the digest; the
//! origin hashes what it receives into its memfd and refuses a mismatch. Between two PATCHes the
//! Durable Object may be evicted, and a standard hasher's state cannot be saved, so this is
//! SHA-256 written on top of the raw compression function (`sha2::compress256`) with a state
//! that serialises: the eight chaining words, the byte count and the < 64 bytes not yet
//! compressed. The state is committed together with the upload offset, so it always covers
//! exactly the committed bytes. The result is the plain SHA-256 of the file (`sha256sum`
//! agrees), so the origin needs nothing but a standard hasher.

use serde::{Deserialize, Serialize};
use sha2::digest::generic_array::GenericArray;

/// The forward's header carrying the digest (lowercase hex); it is one of the signed headers.
pub const HEADER: &str = "x-dodolens-video-sha256";

/// A digest as sent in [`HEADER`]: exactly 64 lowercase hex digits.
pub fn parse_hex(value: &str) -> Option<[u8; 32]> {
    let value = value.trim();
    if value.len() != 64
        || !value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    hex::decode(value).ok()?.try_into().ok()
}

const BLOCK: usize = 64;
/// SHA-256's initial chaining value (FIPS 180-4 §5.3.3).
const INITIAL: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// A resumable SHA-256 over the bytes written so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoDigest {
    state: [u32; 8],
    /// Bytes hashed so far (compressed plus pending).
    length: u64,
    /// The tail not yet compressed, always shorter than a block; hex in storage.
    #[serde(with = "hex_bytes")]
    pending: Vec<u8>,
}

impl Default for VideoDigest {
    fn default() -> Self {
        VideoDigest {
            state: INITIAL,
            length: 0,
            pending: Vec::new(),
        }
    }
}

impl VideoDigest {
    pub fn new() -> VideoDigest {
        VideoDigest::default()
    }

    /// Bytes covered.
    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.length += bytes.len() as u64;
        if !self.pending.is_empty() {
            let take = (BLOCK - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < BLOCK {
                return;
            }
            let block = std::mem::take(&mut self.pending);
            compress(&mut self.state, &block);
        }
        let whole = bytes.len() - bytes.len() % BLOCK;
        compress(&mut self.state, &bytes[..whole]);
        self.pending.extend_from_slice(&bytes[whole..]);
    }

    /// The SHA-256 of everything written, as lowercase hex; the state itself is unchanged.
    pub fn hex(&self) -> String {
        hex::encode(self.finish())
    }

    pub fn finish(&self) -> [u8; 32] {
        let mut state = self.state;
        let mut tail = self.pending.clone();
        tail.push(0x80);
        while tail.len() % BLOCK != BLOCK - 8 {
            tail.push(0);
        }
        tail.extend_from_slice(&(self.length * 8).to_be_bytes());
        compress(&mut state, &tail);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// Compresses `bytes`, a whole number of blocks.
fn compress(state: &mut [u32; 8], bytes: &[u8]) {
    debug_assert_eq!(bytes.len() % BLOCK, 0);
    for block in bytes.chunks_exact(BLOCK) {
        sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
    }
}

mod hex_bytes {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text).map_err(D::Error::custom)?;
        if bytes.len() >= super::BLOCK {
            return Err(D::Error::custom("pending tail longer than a block"));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn known_vectors() {
        assert_eq!(
            VideoDigest::new().hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut abc = VideoDigest::new();
        abc.update(b"abc");
        assert_eq!(
            abc.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn header_values_are_64_lowercase_hex() {
        let digest = VideoDigest::new();
        assert_eq!(parse_hex(&digest.hex()), Some(digest.finish()));
        assert_eq!(parse_hex(&digest.hex().to_uppercase()), None);
        assert_eq!(parse_hex(&digest.hex()[1..]), None);
        assert_eq!(parse_hex(""), None);
    }

    #[test]
    fn a_corrupt_stored_tail_is_refused() {
        let json = serde_json::to_string(&VideoDigest::new()).unwrap();
        let bad = json.replace(
            "\"pending\":\"\"",
            &format!("\"pending\":\"{}\"", "00".repeat(64)),
        );
        assert!(serde_json::from_str::<VideoDigest>(&bad).is_err());
    }

    proptest! {
        /// Written in pieces, saved and restored between any of them, it is the file's SHA-256.
        #[test]
        fn pieces_and_restarts_give_the_plain_sha256(
            data in prop::collection::vec(any::<u8>(), 0..2000),
            cuts in prop::collection::vec(0usize..2000, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut digest = VideoDigest::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                digest.update(&data[from..cut]);
                from = cut;
                let saved = serde_json::to_string(&digest).unwrap();
                digest = serde_json::from_str(&saved).unwrap();
            }
            prop_assert_eq!(digest.length(), data.len() as u64);
            prop_assert_eq!(digest.hex(), hex::encode(Sha256::digest(&data)));
        }
    }
}
