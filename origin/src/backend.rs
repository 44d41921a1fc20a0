//! The analysis backend chosen by `DODOLENS_ANALYSER`: the OpenAI-compatible provider, or the
//! local models. The pipeline calls the same three steps on either and asks which one ran, so
//! the result can say it (`AnalysisResult::analyser`) and a local result can carry the local
//! model's blind spots.

use std::sync::Arc;

use dodolens_shared::{
    narration,
    protocol::{Analyser, VisionResult, VoiceDirectives},
};
use zeroize::Zeroizing;

use crate::{
    analysis::{Analyst, Answer, AudioClip, Usage},
    config::Config,
    detector::{self, DetectorError},
    error::JobError,
    extract::Frame,
    local::LocalAnalyst,
    whisper::{self, WhisperError},
};

#[derive(Clone)]
pub enum Backend {
    /// Boxed: the client and its configuration are much larger than the local plan's handle.
    Openai(Box<Analyst>),
    Local(LocalAnalyst),
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("local model: {0}")]
    Local(#[from] DetectorError),
    #[error("local transcription: {0}")]
    Whisper(#[from] WhisperError),
}

impl Backend {
    pub fn new(cfg: &Config) -> Result<Backend, BackendError> {
        Ok(match cfg.analyser {
            Analyser::Openai => Backend::Openai(Box::new(Analyst::new(&cfg.model)?)),
            Analyser::Local => Backend::Local(LocalAnalyst::new(cfg)?),
        })
    }

    pub fn kind(&self) -> Analyser {
        match self {
            Backend::Openai(_) => Analyser::Openai,
            Backend::Local(_) => Analyser::Local,
        }
    }

    /// Whether the narration can be transcribed (locally only with a Whisper folder).
    pub fn transcribes(&self) -> bool {
        match self {
            Backend::Openai(_) => true,
            Backend::Local(local) => local.transcribes(),
        }
    }

    pub fn vision_model(&self) -> String {
        match self {
            Backend::Openai(analyst) => analyst.config().vision_model.clone(),
            Backend::Local(_) => detector::MODEL_NAME.to_string(),
        }
    }

    pub fn transcription_model(&self) -> String {
        match self {
            Backend::Openai(analyst) => analyst.config().transcription_model.clone(),
            Backend::Local(local) if local.transcribes() => whisper::MODEL_NAME.to_string(),
            Backend::Local(_) => String::new(),
        }
    }

    pub async fn vision(
        &self,
        frames: &Arc<Vec<Frame>>,
        locale: &str,
    ) -> Result<Answer<VisionResult>, JobError> {
        match self {
            Backend::Openai(analyst) => analyst.vision(frames, locale).await,
            Backend::Local(local) => Ok(Answer {
                value: local.vision(frames, locale).await?,
                usage: Usage::default(),
                simulated: false,
            }),
        }
    }

    pub async fn transcribe(
        &self,
        audio: &AudioClip,
        locale: &str,
    ) -> Result<Zeroizing<String>, JobError> {
        match self {
            Backend::Openai(analyst) => analyst.transcribe(audio, locale).await,
            Backend::Local(local) => local.transcribe(audio, locale).await,
        }
    }

    /// The text model's directives; the local backend reads them by rules.
    pub async fn directives(
        &self,
        transcript: &str,
        locale: &str,
    ) -> Result<Answer<VoiceDirectives>, JobError> {
        match self {
            Backend::Openai(analyst) => analyst.directives(transcript, locale).await,
            Backend::Local(_) => Ok(Answer {
                value: narration::directives(transcript, locale),
                usage: Usage::default(),
                simulated: false,
            }),
        }
    }
}
