//! The model folder `DODOLENS_WHISPER_DIR` names, checked before anything loads it.
//!
//! The weights are too large to embed (145 MB) and come from two PyPI wheels that
//! `scripts/bootstrap` assembles; what the origin runs must still be exactly what was reviewed,
//! so every file is hashed against `origin/models/whisper-base.sha256` (the `sha256sum` format,
//! so the bootstrap checks the same list) and a folder with a missing, extra-large or altered
//! file is refused at start-up rather than half-used.

use std::{io::Read, path::Path};

use sha2::{Digest, Sha256};

use super::WhisperError;

/// `sha256  file` for every file of the folder, as committed.
pub const CHECKSUMS: &str = include_str!("../../models/whisper-base.sha256");

/// The expected files and their digests.
pub fn expected() -> impl Iterator<Item = (&'static str, &'static str)> {
    CHECKSUMS.lines().filter_map(|line| {
        let (digest, name) = line.split_once("  ")?;
        Some((name.trim(), digest.trim()))
    })
}

/// Hashes every expected file of `dir`; the first mismatch or unreadable file is the error.
pub fn verify(dir: &Path) -> Result<(), WhisperError> {
    for (name, digest) in expected() {
        let path = dir.join(name);
        let actual = sha256_of(&path).map_err(|e| WhisperError::Unreadable(path.clone(), e))?;
        if actual != digest {
            return Err(WhisperError::Checksum(path));
        }
    }
    Ok(())
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_the_five_files_once_each() {
        let mut names: Vec<&str> = expected().map(|(name, _)| name).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "config.json",
                "model.bin",
                "preprocessor_config.json",
                "tokenizer.json",
                "vocabulary.txt"
            ]
        );
        assert!(expected().all(|(_, d)| d.len() == 64 && hex::decode(d).is_ok()));
    }

    #[test]
    fn the_committed_preprocessor_config_is_the_listed_one() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models/whisper-base"));
        let digest = sha256_of(&dir.join("preprocessor_config.json")).unwrap();
        let listed = expected().find(|(n, _)| *n == "preprocessor_config.json");
        assert_eq!(listed.map(|(_, d)| d), Some(digest.as_str()));
    }

    #[test]
    fn a_folder_without_the_weights_is_refused_by_name() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models/whisper-base"));
        match verify(dir) {
            Err(WhisperError::Unreadable(path, _)) => {
                assert!(!path.ends_with("preprocessor_config.json"), "{path:?}")
            }
            other => panic!("{other:?}"),
        }
    }
}
