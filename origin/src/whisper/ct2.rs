//! The engine: Whisper base run by CTranslate2 through `ct2rs` (built from source, CPU only,
//! ruy for the matrix products).
//!
//! One replica with one thread: the pipeline runs vision beside transcription, one core each,
//! and concurrent jobs queue inside CTranslate2 rather than multiplying the model in memory.
//! The float16 weights run as float32 (this CPU has no fast float16; CTranslate2 converts them
//! at load) with beam search of 5, CTranslate2's defaults: on espeak-ng speech greedy int8
//! decoding lost words the tests need.

use std::path::Path;

use ct2rs::{ComputeType, Config, Whisper, WhisperOptions};
use dodolens_shared::audio_cut;

use super::WhisperError;

pub struct Engine {
    model: Whisper,
    options: WhisperOptions,
}

impl Engine {
    pub fn load(dir: &Path) -> Result<Engine, WhisperError> {
        let config = Config {
            compute_type: ComputeType::DEFAULT,
            num_threads_per_replica: 1,
            ..Config::default()
        };
        let model = Whisper::new(dir, config).map_err(|e| WhisperError::Model(e.to_string()))?;
        let longest = (audio_cut::MAX_SEGMENT_S * audio_cut::RATE) as usize;
        if model.n_samples() < longest {
            return Err(WhisperError::Model(format!(
                "the model hears {} samples at once, fewer than a {longest}-sample window",
                model.n_samples()
            )));
        }
        let options = WhisperOptions::default();
        Ok(Engine { model, options })
    }

    /// The text of one window (at most `audio_cut::MAX_SEGMENT_S`, Whisper's 30 s) in `language`.
    pub fn transcribe(&self, samples: &[f32], language: &str) -> Result<String, WhisperError> {
        let texts = self
            .model
            .generate(samples, Some(language), false, &self.options)
            .map_err(|e| WhisperError::Model(e.to_string()))?;
        Ok(texts.join(" "))
    }
}
