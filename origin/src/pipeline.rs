//! One job from the received video to the final event: probe, extract, analyse and transcribe
//! in parallel, fuse, deliver. By stage: extraction depends on how the video arrived (the
//! whole file in a memfd, [`extract_whole`]; a live recording extracted while it arrived,
//! [`crate::live`]) and yields [`Extracted`]; everything after it ([`analyse`]) is one path. The video memfd is closed as soon as extraction is done, frames
//! and audio as soon as the models have them (the video's share of the memory budget with it);
//! whatever happens (error, timeout, panic, shutdown) the job ends with exactly one final event,
//! handed to the outbox, and its slot released — or, when the edge cancels it, with no event
//! and only an expiring `cancelled` mark.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use dodolens_shared::{
    coco,
    fusion::{self, FusionInput},
    narration,
    protocol::{
        Analyser, AnalysisResult, JobMeta, MediaFacts, OriginEvent, Stage, VoiceDirectives,
        Warning, WarningCode,
    },
};
use futures_util::FutureExt;
use zeroize::Zeroizing;

use crate::{
    admission::Permit,
    analysis::{AudioClip, AudioFormat, Usage},
    cancel, cost,
    error::JobError,
    extract,
    intake::short,
    live::Recording,
    metrics::label,
    quality,
    report::{self, JobReporter},
    store::{FinalRecord, JobMark, Lease, OutboxEntry, Outcome},
    video::MemFile,
    AppState,
};

/// How long the pipeline waits for optional sinks before sending the result anyway.
const SINK_BUDGET: Duration = Duration::from_secs(5);

/// Where the job's video is: whole in a memfd, or a live recording already being extracted.
pub enum Source {
    Whole(MemFile),
    Live(Box<Recording>),
}

pub struct Job {
    pub id: String,
    pub meta: JobMeta,
    pub source: Source,
    /// This replica's slot and the video's memory; the memory goes with the video.
    pub permit: Permit,
    /// Keeps the job's claim alive until its end is recorded.
    pub lease: Lease,
    pub received_at: Instant,
}

/// Runs the job to its final event. Never panics outwards and never returns early.
pub async fn run(state: Arc<AppState>, job: Job) {
    let Job {
        id,
        meta,
        source,
        permit,
        lease,
        received_at,
    } = job;
    state.metrics.in_flight.inc();
    let stop = state.running.register(&id);
    let events = state.reporter.job(&meta, stop.clone());
    events.send(OriginEvent::Stage {
        stage: Stage::Received,
    });
    let work = std::panic::AssertUnwindSafe(process(
        &state,
        &id,
        &meta,
        (source, &permit),
        &events,
        received_at,
    ))
    .catch_unwind();
    // Dropping `work` (cancel, timeout, shutdown) kills ffmpeg, aborts the model requests and
    // closes the memfds.
    let outcome = tokio::select! {
        result = tokio::time::timeout(state.cfg.job_timeout, work) => Some(match result {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(JobError::Internal("pipeline panicked".into())),
            Err(_) => Err(JobError::Timeout("job")),
        }),
        _ = state.cancel_jobs.cancelled() => Some(Err(JobError::ShuttingDown)),
        _ = cancel::cancelled(&state, &id, &stop, state.cfg.cancel_poll) => None,
    };
    state.running.remove(&id);
    let Some(outcome) = outcome else {
        // The session is gone at the edge: no final event, nothing kept but the marker.
        events.abort();
        state
            .metrics
            .jobs
            .get_or_create(&label("outcome", "cancelled"))
            .inc();
        let mark = JobMark::Ended {
            attempt: meta.attempt,
            outcome: Outcome::Cancelled,
        };
        drop(permit);
        if let Err(e) = state
            .store
            .record_cancelled(&id, mark, state.cfg.done_ttl)
            .await
        {
            tracing::warn!(job = %short(&id), error = %e, "could not record the cancel");
        }
        drop(lease);
        ended(&state, &id, received_at, "cancelled");
        return;
    };
    events.flush(state.cfg.callback_timeout).await;
    let (event, mark) = match outcome {
        Ok(result) => {
            state
                .metrics
                .jobs
                .get_or_create(&label("outcome", "completed"))
                .inc();
            let mark = JobMark::Ended {
                attempt: meta.attempt,
                outcome: Outcome::Completed,
            };
            (
                OriginEvent::Completed {
                    result: Box::new(result),
                },
                mark,
            )
        }
        Err(error) => {
            tracing::warn!(job = %short(&id), error = %error, "job failed");
            let failure = error.failure();
            state
                .metrics
                .jobs
                .get_or_create(&vec![
                    ("outcome", "failed".to_string()),
                    ("code", format!("{:?}", failure.code).to_lowercase()),
                ])
                .inc();
            let outcome = Outcome::Failed {
                retryable: failure.retryable,
            };
            (
                OriginEvent::Failed { error: failure },
                JobMark::Ended {
                    attempt: meta.attempt,
                    outcome,
                },
            )
        }
    };
    // The work is done: the slot is free before the store is asked to record the end.
    drop(permit);
    let record = FinalRecord {
        job_id: id.clone(),
        mark,
        entry: OutboxEntry {
            id: OutboxEntry::id_for(&id, meta.attempt),
            session_id: id.clone(),
            callback_url: meta.callback_url.clone(),
            body: report::report_body(meta.attempt, event).expect("an OriginReport serialises"),
            attempts: 0,
        },
    };
    state.outbox.finish(record).await;
    drop(lease);
    ended(&state, &id, received_at, "finished");
}

fn ended(state: &AppState, id: &str, since: Instant, how: &'static str) {
    state.metrics.in_flight.dec();
    tracing::info!(job = %short(id), ms = since.elapsed().as_millis() as u64, how, "job ended");
}

/// What extraction hands to the analysis, whichever way the video arrived.
pub(crate) struct Extracted {
    pub frames: Vec<extract::Frame>,
    pub probe: extract::Probe,
    pub duration_s: f64,
    pub narration: Narration,
}

/// The narration: what is already transcribed (a live recording's segments, in order) and the
/// audio still to transcribe (the whole track, or a live recording's last segment).
#[derive(Default)]
pub(crate) struct Narration {
    pub heard: Vec<Zeroizing<String>>,
    pub rest: Option<AudioClip>,
}

impl Narration {
    fn is_empty(&self) -> bool {
        self.heard.is_empty() && self.rest.is_none()
    }
}

/// Stage announcements and timings of one job.
pub(crate) struct Stages<'a> {
    state: &'a AppState,
    id: &'a str,
    events: &'a JobReporter,
}

impl Stages<'_> {
    pub(crate) async fn enter(&self, stage: Stage) -> Instant {
        enter_stage(self.state, self.id, self.events, stage).await
    }

    pub(crate) fn timed(&self, stage: Stage, since: Instant) {
        self.state
            .metrics
            .stage_seconds
            .get_or_create(&label("stage", format!("{stage:?}").to_lowercase()))
            .observe(since.elapsed().as_secs_f64());
    }
}

async fn process(
    state: &AppState,
    id: &str,
    meta: &JobMeta,
    (source, permit): (Source, &Permit),
    events: &JobReporter,
    received_at: Instant,
) -> Result<AnalysisResult, JobError> {
    let stages = Stages { state, id, events };
    let t = Instant::now();
    let extracted = match source {
        Source::Whole(video) => extract_whole(state, id, video, permit, &stages).await?,
        Source::Live(recording) => recording.finish(state, id, permit, &stages).await?,
    };
    events.send(OriginEvent::Progress {
        stage: Stage::Extracting,
        fraction: 1.0,
    });
    tracing::info!(
        job = %short(id),
        frames = extracted.frames.len(),
        segments = extracted.narration.heard.len(),
        ms = t.elapsed().as_millis() as u64,
        "extracted"
    );
    analyse(state, id, meta, extracted, &stages, received_at).await
}

/// The whole-file path: probe the memfd, extract frames and audio from it, drop it.
pub(crate) async fn extract_whole(
    state: &AppState,
    id: &str,
    video: MemFile,
    permit: &Permit,
    stages: &Stages<'_>,
) -> Result<Extracted, JobError> {
    let cfg = &state.cfg;
    let t = stages.enter(Stage::Probing).await;
    let probe = extract::probe(&cfg.ffmpeg, &video).await?;
    let duration_s = match probe.duration_s {
        Some(d) => d,
        None => extract::measure_duration(&cfg.ffmpeg, &video).await?,
    };
    stages.timed(Stage::Probing, t);

    let t = stages.enter(Stage::Extracting).await;
    let extraction = extract::extract(&cfg.ffmpeg, &video, id, duration_s, probe.has_audio).await?;
    drop(video);
    permit.video_dropped();
    stages.timed(Stage::Extracting, t);
    tracing::info!(
        job = %short(id),
        audio_bytes = extraction.audio.as_ref().map_or(0, |a| a.len()),
        path = ?extraction.path,
        "extracted the whole file"
    );
    let extract::Extraction { frames, audio, .. } = extraction;
    Ok(Extracted {
        frames,
        probe,
        duration_s,
        narration: Narration {
            heard: Vec::new(),
            rest: audio.map(|bytes| AudioClip {
                bytes,
                format: AudioFormat::Ogg,
            }),
        },
    })
}

/// Everything after extraction, the same for every source: vision ∥ (the rest of the
/// transcription, then directives on the whole transcript), fusion, delivery.
async fn analyse(
    state: &AppState,
    id: &str,
    meta: &JobMeta,
    extracted: Extracted,
    stages: &Stages<'_>,
    received_at: Instant,
) -> Result<AnalysisResult, JobError> {
    let cfg = &state.cfg;
    let stage = |s: Stage| stages.enter(s);
    let timed = |s: Stage, since: Instant| stages.timed(s, since);
    let Extracted {
        frames,
        probe,
        duration_s,
        narration: heard,
    } = extracted;
    let frames = Arc::new(frames);
    let quality = {
        let frames = Arc::clone(&frames);
        tokio::task::spawn_blocking(move || quality::assess(&frames))
            .await
            .map_err(|e| JobError::Internal(e.to_string()))?
    };

    let locale = meta.meta.locale.clone();
    let narration = async {
        if heard.is_empty() {
            return (None, Vec::new());
        }
        if !state.analyst.transcribes() {
            let said = "Narration non analysée : pas de transcription en mode local.";
            return (None, vec![warning(WarningCode::NoNarration, said)]);
        }
        let t = stage(Stage::Transcribing).await;
        let transcript = transcribe_rest(state, heard, &locale).await;
        timed(Stage::Transcribing, t);
        let transcript = match transcript {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(job = %short(id), error = %e, "transcription failed; vision only");
                return (
                    None,
                    vec![warning(WarningCode::NoNarration, "Narration non analysée.")],
                );
            }
        };
        if transcript.trim().is_empty() {
            return (
                Some((VoiceDirectives::default(), Usage::default(), false)),
                Vec::new(),
            );
        }
        let started = Instant::now();
        let directives = state.analyst.directives(&transcript, &locale).await;
        observe_model(state, "directives", started);
        match directives {
            Ok(answer) => (Some((answer.value, answer.usage, true)), Vec::new()),
            Err(e) => {
                tracing::warn!(job = %short(id), error = %e, "directives failed; read by rules");
                let rules = narration::directives(&transcript, &locale);
                let said = "Consignes orales lues par règles simples (modèle indisponible).";
                (
                    Some((rules, Usage::default(), true)),
                    vec![warning(WarningCode::NoNarration, said)],
                )
            }
        }
    };
    let vision = async {
        let t = stage(Stage::Analysing).await;
        let started = Instant::now();
        let answer = state.analyst.vision(&frames, &locale).await;
        observe_model(state, "vision", started);
        timed(Stage::Analysing, t);
        answer
    };
    let (vision, (narration, mut extra_warnings)) = tokio::join!(vision, narration);
    let frames_analysed = frames.len() as u32;
    let frame_times_s = frames
        .iter()
        .map(|f| (f.pts_s * 1000.0).round() / 1000.0)
        .collect();
    drop(frames);
    let vision = vision?;

    let t = stage(Stage::Fusing).await;
    // A narration that was not read (local mode, transcription failed) carries its own warning;
    // fusion's "no speech heard" would contradict it.
    let unread = extra_warnings
        .iter()
        .any(|w| w.code == WarningCode::NoNarration);
    let (directives, narration_usage, narrated) =
        narration.unwrap_or((VoiceDirectives::default(), Usage::default(), unread));
    let media = MediaFacts {
        duration_s,
        width: probe.width,
        height: probe.height,
        rotation: probe.rotation,
        has_audio: probe.has_audio,
        frames_analysed,
        frame_times_s,
    };
    let mut inventory = fusion::fuse(&FusionInput {
        vision: vision.value,
        directives,
        media: media.clone(),
        mean_luma: quality.mean_luma,
        sharpness: quality.sharpness,
        narrated,
        margin_ratio: cfg.margin_ratio,
        locale: locale.clone(),
    });
    timed(Stage::Fusing, t);

    let usage = vision.usage + narration_usage;
    let local = state.analyst.kind() == Analyser::Local;
    let audio_seconds = if probe.has_audio && !local {
        duration_s.min(cfg.ffmpeg.max_audio.as_secs_f64())
    } else {
        0.0
    };
    let cost = cost::estimate(&cfg.model.prices, usage, audio_seconds);
    state
        .metrics
        .tokens
        .get_or_create(&label("direction", "input"))
        .inc_by(usage.input_tokens);
    state
        .metrics
        .tokens
        .get_or_create(&label("direction", "output"))
        .inc_by(usage.output_tokens);
    state.metrics.cost_eur.inc_by(cost.eur);
    if let Err(e) = state
        .spending
        .record(cost.eur, std::time::SystemTime::now())
        .await
    {
        tracing::warn!(job = %short(id), error = %e, "spending not recorded");
    }
    if vision.simulated {
        extra_warnings.push(warning(
            WarningCode::Simulated,
            "Résultat simulé (aucun modèle réel).",
        ));
    }
    if local {
        extra_warnings.push(coco::blind_spots_warning(&locale));
    }
    inventory.warnings.extend(extra_warnings);
    let mut result = AnalysisResult {
        inventory,
        media,
        cost,
        vision_model: state.analyst.vision_model(),
        transcription_model: state.analyst.transcription_model(),
        analyser: state.analyst.kind(),
        simulated: vision.simulated,
        processing_ms: 0,
    };

    let t = stage(Stage::Delivering).await;
    // The mover gets the customer's confirmed inventory (`handoff`); the raw model result only
    // when configured.
    if cfg.sinks.send_raw_result {
        for sink in state.sinks.deliver(id, &result, SINK_BUDGET).await {
            result.inventory.warnings.push(warning(
                WarningCode::SinkFailed,
                &format!("Envoi vers {sink} en échec ; le résultat reste disponible ici."),
            ));
        }
    }
    timed(Stage::Delivering, t);
    result.processing_ms = received_at.elapsed().as_millis() as u64;
    Ok(result)
}

/// The whole transcript: the segments already heard, then the rest, transcribed now.
async fn transcribe_rest(
    state: &AppState,
    narration: Narration,
    locale: &str,
) -> Result<Zeroizing<String>, JobError> {
    let Narration { heard, rest } = narration;
    let mut parts = heard;
    if let Some(audio) = rest {
        let started = Instant::now();
        let text = state.analyst.transcribe(&audio, locale).await;
        observe_model(state, "transcription", started);
        drop(audio);
        parts.push(text?);
    }
    let parts: Vec<&str> = parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    Ok(Zeroizing::new(parts.join(" ")))
}

/// Announces a stage to the edge and records it as the job's status; returns its start time.
async fn enter_stage(state: &AppState, id: &str, events: &JobReporter, stage: Stage) -> Instant {
    events.send(OriginEvent::Stage { stage });
    let name = format!("{stage:?}").to_lowercase();
    if let Err(e) = state.store.set_status(id, &name, state.cfg.job_ttl()).await {
        tracing::warn!(job = %short(id), error = %e, "status not recorded");
    }
    Instant::now()
}

pub(crate) fn observe_model(state: &AppState, call: &'static str, started: Instant) {
    state
        .metrics
        .model_seconds
        .get_or_create(&label("call", call))
        .observe(started.elapsed().as_secs_f64());
}

fn warning(code: WarningCode, message: &str) -> Warning {
    Warning {
        code,
        message: message.to_string(),
    }
}
