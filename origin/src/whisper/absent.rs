//! The engine of a build without the `local-whisper` feature: it cannot be loaded, so a
//! configured model folder is refused at start-up instead of being silently ignored.

use std::path::Path;

use super::WhisperError;

/// Uninhabited: no value exists, so its methods are never reached.
pub enum Engine {}

impl Engine {
    pub fn load(_dir: &Path) -> Result<Engine, WhisperError> {
        Err(WhisperError::NotBuilt)
    }

    pub fn transcribe(&self, _samples: &[f32], _language: &str) -> Result<String, WhisperError> {
        match *self {}
    }
}
