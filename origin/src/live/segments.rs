//! Transcription while the recording goes on: one segment at a time, in order, each cut near
//! a silence by `dodolens_shared::audio_cut` once enough audio exists past the previous cut.
//!
//! ffmpeg writes the recording's audio as raw PCM into a memfd as it decodes; this task looks
//! at the memfd's size every [`POLL`] (ffmpeg, not the range handler, decides when samples
//! appear) and transcribes a segment as soon as one is complete. A failed transcription stops
//! the segmenting: everything from that segment on is transcribed at the finish, in one piece.

use std::{sync::Arc, time::Duration};

use dodolens_shared::audio_cut::{self, MAX_SEGMENT_S, RATE};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::{
    analysis::{AudioClip, AudioFormat},
    intake::short,
    live::wav::wav,
    pipeline::observe_model,
    video::MemFile,
    AppState,
};

/// How often the audio memfd is looked at.
const POLL: Duration = Duration::from_millis(500);
/// Bytes per sample of the PCM (s16le).
const SAMPLE_BYTES: u64 = 2;

/// What was transcribed while the recording went on.
#[derive(Default)]
pub(crate) struct Heard {
    pub texts: Vec<Zeroizing<String>>,
    /// Bytes of PCM the texts cover; the rest is for the finish.
    pub until: u64,
}

/// The running segmenter of one live job; dropping it stops it.
pub(crate) struct Segments {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Heard>,
}

impl Segments {
    pub(crate) fn start(
        state: Arc<AppState>,
        id: String,
        audio: Arc<MemFile>,
        locale: String,
    ) -> Segments {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(state, id, audio, locale, stop.clone()));
        Segments { stop, task }
    }

    /// Stops looking for new segments, lets a transcription in flight end, and returns what
    /// was heard.
    pub(crate) async fn finish(mut self) -> Heard {
        self.stop.cancel();
        (&mut self.task).await.unwrap_or_default()
    }
}

impl Drop for Segments {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    state: Arc<AppState>,
    id: String,
    audio: Arc<MemFile>,
    locale: String,
    stop: CancellationToken,
) -> Heard {
    let mut heard = Heard::default();
    let window = (MAX_SEGMENT_S * RATE) as u64 * SAMPLE_BYTES;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return heard,
            _ = tokio::time::sleep(POLL) => {}
        }
        let size = audio.size().unwrap_or(0);
        if size.saturating_sub(heard.until) < window {
            continue;
        }
        let Ok(pcm) = audio.read_at(heard.until, window as usize) else {
            return heard;
        };
        let Some(cut) = audio_cut::next_cut(&samples(&pcm), RATE) else {
            continue;
        };
        let bytes = cut * SAMPLE_BYTES as usize;
        let clip = AudioClip {
            bytes: wav(&pcm[..bytes], RATE),
            format: AudioFormat::Wav,
        };
        let started = std::time::Instant::now();
        let text = state.analyst.transcribe(&clip, &locale).await;
        observe_model(&state, "transcription", started);
        match text {
            Ok(text) => {
                heard.texts.push(text);
                heard.until += bytes as u64;
                tracing::debug!(job = %short(&id), segment = heard.texts.len(), "segment transcribed");
            }
            Err(e) => {
                tracing::warn!(job = %short(&id), error = %e, "segment not transcribed; the rest waits for the finish");
                return heard;
            }
        }
    }
}

/// s16le bytes as samples (an odd trailing byte is ignored).
pub(crate) fn samples(pcm: &[u8]) -> Zeroizing<Vec<i16>> {
    Zeroizing::new(
        pcm.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    )
}
