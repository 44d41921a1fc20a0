//! The local backend: the frames the pipeline already extracted go through the embedded
//! detector on this machine, and the counting rule in `dodolens_shared::sightings` turns the
//! per-frame boxes into rooms and items. Nothing leaves the origin and nothing is written: each
//! frame is decoded, resized into one input tensor and dropped before the next, so memory stays
//! at the model plus one frame whatever the video's length.
//!
//! With a Whisper folder configured (`DODOLENS_WHISPER_DIR`, `crate::whisper`), the narration
//! is transcribed here too and read by the rules of `dodolens_shared::narration`; without one,
//! the narration is not analysed and the result says so.

use std::sync::Arc;

use dodolens_shared::{
    protocol::VisionResult,
    sightings::{self, Detection, FrameDetections},
};

use zeroize::Zeroizing;

use crate::{
    analysis::AudioClip,
    backend::BackendError,
    config::{Config, FfmpegConfig},
    detector::Detector,
    error::JobError,
    extract::Frame,
    whisper::Transcriber,
};

#[derive(Clone)]
pub struct LocalAnalyst {
    detector: Detector,
    /// With the ffmpeg settings that decode the narration for it.
    transcriber: Option<(Transcriber, FfmpegConfig)>,
}

impl LocalAnalyst {
    pub fn new(cfg: &Config) -> Result<Self, BackendError> {
        let transcriber = match &cfg.whisper_dir {
            Some(dir) => Some((Transcriber::load(dir)?, cfg.ffmpeg.clone())),
            None => None,
        };
        Ok(LocalAnalyst {
            detector: Detector::load()?,
            transcriber,
        })
    }

    /// Whether a Whisper model was configured and loaded.
    pub fn transcribes(&self) -> bool {
        self.transcriber.is_some()
    }

    pub async fn transcribe(
        &self,
        audio: &AudioClip,
        locale: &str,
    ) -> Result<Zeroizing<String>, JobError> {
        match &self.transcriber {
            Some((transcriber, ffmpeg)) => transcriber.transcribe(ffmpeg, audio, locale).await,
            None => Err(JobError::Internal(
                "no local transcription configured".into(),
            )),
        }
    }

    /// Detects on every frame, one after the other on a blocking thread (one core per job).
    pub async fn vision(
        &self,
        frames: &Arc<Vec<Frame>>,
        locale: &str,
    ) -> Result<VisionResult, JobError> {
        let (detector, frames) = (self.detector.clone(), Arc::clone(frames));
        let detections = tokio::task::spawn_blocking(move || detect_all(&detector, &frames))
            .await
            .map_err(|e| JobError::Internal(e.to_string()))??;
        Ok(sightings::vision_result(&detections, locale))
    }
}

fn detect_all(detector: &Detector, frames: &[Frame]) -> Result<Vec<FrameDetections>, JobError> {
    frames
        .iter()
        .enumerate()
        .map(|(index, frame)| {
            let found = detector
                .detect_jpeg(&frame.jpeg)
                .map_err(|e| JobError::Internal(format!("local detector: {e}")))?;
            let detections = found
                .into_iter()
                .map(|d| Detection {
                    class: d.class,
                    score: d.score,
                    width: d.bbox.width(),
                })
                .collect();
            Ok(FrameDetections {
                frame: index as u32,
                detections,
            })
        })
        .collect()
}
