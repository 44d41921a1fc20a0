//! One live job: a recording received in ranges, held in its memfd (for the digest, and for
//! the whole-file path should live extraction fail), hashed as it arrives, fed to its
//! [`Decoder`] and, with sound and a backend that transcribes, segmented by [`Segments`].
//!
//! [`LiveJob`] is the job while ranges arrive; the finishing forward turns it into a
//! [`Recording`], which the pipeline finishes: ffmpeg's input closed, its candidates reduced to
//! the frame budget (`dodolens_shared::frame_pick`), the last audio segment left for the
//! analysis, then the same stages as any job.

use std::sync::Arc;

use bytes::Bytes;
use dodolens_shared::{
    audio_cut::RATE,
    frame_pick::{self, Candidate as Pick},
    protocol::{JobMeta, Stage},
};
use sha2::{Digest, Sha256};

use crate::{
    admission::Permit,
    analysis::{AudioClip, AudioFormat},
    error::{IntakeError, JobError},
    extract::{self, Frame, Probe},
    intake::short,
    live::{
        decoder::{Candidate, Decoder},
        segments::{Heard, Segments},
        wav::wav,
    },
    pipeline::{self, Extracted, Narration, Stages},
    video::MemFile,
    AppState,
};

pub(crate) struct LiveJob {
    pub meta: JobMeta,
    permit: Permit,
    parts: Parts,
}

/// What the job holds while it records and until it is finished.
struct Parts {
    video: MemFile,
    hasher: Sha256,
    probe: Probe,
    audio: Option<Arc<MemFile>>,
    decoder: Decoder,
    segments: Option<Segments>,
}

/// A finished recording the pipeline extracts (see the module docs).
pub struct Recording {
    parts: Parts,
}

impl LiveJob {
    /// A live job from the first range (offset 0): probed from it, ffmpeg started on it.
    pub(crate) async fn start(
        state: &Arc<AppState>,
        meta: JobMeta,
        permit: Permit,
        first: Bytes,
    ) -> Result<LiveJob, IntakeError> {
        let id = &meta.session_id;
        let cfg = &state.cfg.ffmpeg;
        let mut video = MemFile::create(&format!("dodolens-video-{id}"))?;
        video.write(&first)?;
        let probe = extract::probe(cfg, &video)
            .await
            .map_err(IntakeError::NotStreamable)?;
        let audio = match probe.has_audio {
            true => Some(Arc::new(MemFile::create(&format!("dodolens-audio-{id}"))?)),
            false => None,
        };
        let decoder = Decoder::spawn(cfg, audio.as_deref()).map_err(IntakeError::NotStreamable)?;
        let segments = match &audio {
            Some(audio) if state.analyst.transcribes() => Some(Segments::start(
                Arc::clone(state),
                id.clone(),
                Arc::clone(audio),
                meta.meta.locale.clone(),
            )),
            _ => None,
        };
        let mut hasher = Sha256::new();
        hasher.update(&first);
        decoder.feed(first);
        tracing::info!(job = %short(id), attempt = meta.attempt, "live job started");
        Ok(LiveJob {
            meta,
            permit,
            parts: Parts {
                video,
                hasher,
                probe,
                audio,
                decoder,
                segments,
            },
        })
    }

    /// Bytes held.
    pub(crate) fn held(&self) -> u64 {
        self.parts.video.len()
    }

    /// Appends bytes that follow what is held.
    pub(crate) fn append(&mut self, bytes: Bytes) -> Result<(), IntakeError> {
        self.parts.video.write(&bytes)?;
        self.parts.hasher.update(&bytes);
        self.parts.decoder.feed(bytes);
        Ok(())
    }

    /// The recording is complete: its digest must be the signed one (else 400, nothing kept).
    pub(crate) fn complete(self, digest: [u8; 32]) -> Result<(Recording, Permit), IntakeError> {
        let LiveJob { permit, parts, .. } = self;
        if parts.hasher.clone().finalize().as_slice() != digest {
            return Err(IntakeError::DigestMismatch);
        }
        parts.video.seal()?;
        Ok((Recording { parts }, permit))
    }
}

impl Recording {
    /// Extraction of a recording that arrived live; if the live decoding failed, the whole-file
    /// path on the memfd instead.
    pub(crate) async fn finish(
        self: Box<Self>,
        state: &AppState,
        id: &str,
        permit: &Permit,
        stages: &Stages<'_>,
    ) -> Result<Extracted, JobError> {
        let Parts {
            video,
            probe,
            audio,
            decoder,
            segments,
            ..
        } = self.parts;
        let t = stages.enter(Stage::Extracting).await;
        let decoded = decoder.finish(&state.cfg.ffmpeg).await;
        let heard = match segments {
            Some(segments) => segments.finish().await,
            None => Heard::default(),
        };
        let candidates = match decoded {
            Ok(c) if !c.is_empty() => c,
            Ok(_) | Err(_) => {
                let error = decoded.err().map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(job = %short(id), %error, "live extraction failed; whole file");
                drop((audio, heard));
                return pipeline::extract_whole(state, id, video, permit, stages).await;
            }
        };
        drop(video);
        permit.video_dropped();
        let audio_s = audio
            .as_ref()
            .map_or(0.0, |a| a.size().unwrap_or(0) as f64 / (2 * RATE) as f64);
        let last_t = candidates.last().map_or(0.0, |c| c.t);
        let frames = reduce(candidates, state.cfg.ffmpeg.frame_count as usize);
        let narration = narration(audio.as_deref(), heard).map_err(extract::internal)?;
        stages.timed(Stage::Extracting, t);
        Ok(Extracted {
            frames,
            probe,
            duration_s: audio_s.max(last_t),
            narration,
        })
    }
}

/// The frame budget's worth of candidates covering the recording.
fn reduce(candidates: Vec<Candidate>, budget: usize) -> Vec<Frame> {
    let picks: Vec<Pick> = candidates
        .iter()
        .map(|c| Pick {
            t: c.t,
            score: frame_pick::score(c.scored.sharpness, c.scored.difference),
        })
        .collect();
    let chosen = frame_pick::pick(&picks, budget);
    let mut candidates: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
    chosen
        .into_iter()
        .filter_map(|i| candidates[i].take())
        .map(|c| Frame {
            jpeg: c.scored.jpeg,
            pts_s: c.t,
        })
        .collect()
}

/// The segments heard, and the audio after them as the last segment.
fn narration(audio: Option<&MemFile>, heard: Heard) -> std::io::Result<Narration> {
    let Some(audio) = audio else {
        return Ok(Narration::default());
    };
    let size = audio.size()?;
    let rest = match size.saturating_sub(heard.until) {
        0 => None,
        len => Some(AudioClip {
            bytes: wav(&audio.read_at(heard.until, len as usize)?, RATE),
            format: AudioFormat::Wav,
        }),
    };
    Ok(Narration {
        heard: heard.texts,
        rest,
    })
}
