//! Real videos through the real ffmpeg: every container a phone or browser produces, and the
//! files that must be refused.

mod support;

use dodolens_origin::{config::Config, extract, video::MemFile};
use dodolens_shared::protocol::{ErrorCode, ItemSource, OriginEvent, Stage, WarningCode};
use support::{fixtures, *};

fn memfile(id: &str, bytes: &[u8]) -> MemFile {
    let mut file = MemFile::create(&format!("dodolens-video-{id}")).unwrap();
    file.write(bytes).unwrap();
    file.seal().unwrap();
    file
}

fn test_config() -> Config {
    Config::from_vars(|k| match k {
        "DODOLENS_SIGNING_SECRET" => Some(SECRET.into()),
        "OPENAI_BASE_URL" => Some("http://127.0.0.1:9/v1".into()),
        _ => None,
    })
    .unwrap()
}

fn jpeg_size(jpeg: &[u8]) -> (u16, u16) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    d.read_info().unwrap();
    let info = d.info().unwrap();
    (info.width, info.height)
}

/// Extraction alone: frames spread over the whole video, downscaled, audio present.
async fn extract_file(id: &str, bytes: &[u8]) -> (extract::Probe, f64, extract::Extraction) {
    let cfg = test_config();
    let video = memfile(id, bytes);
    let probe = extract::probe(&cfg.ffmpeg, &video).await.unwrap();
    let duration = match probe.duration_s {
        Some(d) => d,
        None => extract::measure_duration(&cfg.ffmpeg, &video)
            .await
            .unwrap(),
    };
    let extraction = extract::extract(&cfg.ffmpeg, &video, id, duration, probe.has_audio)
        .await
        .unwrap();
    (probe, duration, extraction)
}

fn assert_covers(extraction: &extract::Extraction, duration: f64) {
    let times: Vec<f64> = extraction.frames.iter().map(|f| f.pts_s).collect();
    assert_eq!(times.len(), 12, "{times:?}");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(times[0] < duration / 12.0 + 0.5, "{times:?}");
    assert!(
        *times.last().unwrap() > duration * 0.8,
        "last frame at {times:?} of {duration}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_1080p_moov_at_end_covers_the_whole_video() {
    sandbox();
    let id = session_id(1000);
    let bytes = read(&fixtures::long_1080p());
    let (probe, duration, extraction) = extract_file(&id, &bytes).await;
    assert!((duration - 120.0).abs() < 1.0, "{duration}");
    assert_eq!((probe.width, probe.height), (1920, 1080));
    assert_eq!(
        extraction.path,
        extract::FramePath::Keyframes,
        "keyframes every second must suffice"
    );
    assert_covers(&extraction, duration);
    for frame in &extraction.frames {
        assert_eq!(jpeg_size(&frame.jpeg), (768, 432));
    }
    assert!(extraction
        .audio
        .as_ref()
        .is_some_and(|a| a.starts_with(b"OggS")));
    drop(extraction);

    let s = Scenario::start(&[]).await;
    let (id2, event) = s.run(bytes).await;
    let result = completed(&event);
    assert_eq!(result.media.frames_analysed, 12);
    assert!((result.media.duration_s - 120.0).abs() < 1.0);
    s.finish(&[&id, &id2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moov_at_end_mp4_becomes_an_inventory_with_narration() {
    let s = Scenario::start(&[]).await;
    let (id, event) = s.run(read(&fixtures::moov_at_end())).await;
    let result = completed(&event);
    assert_eq!(result.media.frames_analysed, 12);
    assert!(result.media.has_audio);
    assert!((result.media.duration_s - 8.0).abs() < 0.5);
    assert!(result.simulated);
    assert!(result
        .inventory
        .warnings
        .iter()
        .any(|w| w.code == WarningCode::Simulated));
    assert!(result.inventory.total_m3 > 0.0);
    assert!(result.cost.eur > 0.0 && result.cost.input_tokens > 0);
    let said: Vec<_> = result
        .inventory
        .rooms
        .iter()
        .flat_map(|r| &r.lines)
        .filter(|l| l.source == ItemSource::Said)
        .collect();
    assert!(
        said.iter().any(|l| l.quantity == 15),
        "narrated boxes missing: {said:?}"
    );

    let stages: Vec<Stage> =
        s.cb.events(&id)
            .iter()
            .filter_map(|e| match e {
                OriginEvent::Stage { stage } => Some(*stage),
                _ => None,
            })
            .collect();
    assert_eq!(
        &stages[..3],
        &[Stage::Received, Stage::Probing, Stage::Extracting]
    );
    assert!(stages.contains(&Stage::Transcribing) && stages.contains(&Stage::Delivering));
    assert!(
        s.cb.events(&id).last().is_some_and(is_final),
        "final event comes last"
    );

    let stats = s.sim.stats().await;
    assert_eq!(stats["images"], 12);
    assert_eq!(stats["max_image_side"], 640, "never upscaled");
    assert_eq!(stats["transcriptions"], 1);
    assert_eq!(stats["chat_completions"], 2);
    assert_eq!(stats["rejected"], 0);
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("dodolens_jobs_total{outcome=\"completed\"} 1"),
        "{metrics}"
    );
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faststart_mp4_is_processed() {
    let s = Scenario::start(&[]).await;
    let (id, event) = s.run(read(&fixtures::faststart())).await;
    assert_eq!(completed(&event).media.frames_analysed, 12);
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_mov_frames_are_upright() {
    sandbox();
    let id = session_id(1001);
    let bytes = read(&fixtures::rotated_mov());
    let (probe, duration, extraction) = extract_file(&id, &bytes).await;
    assert_eq!(probe.rotation % 180, 90);
    assert_eq!((probe.width, probe.height), (360, 640));
    assert_covers(&extraction, duration);
    assert_eq!(
        jpeg_size(&extraction.frames[0].jpeg),
        (360, 640),
        "portrait after rotation"
    );
    drop(extraction);

    let s = Scenario::start(&[]).await;
    let (id2, event) = s.run(bytes).await;
    let media = &completed(&event).media;
    assert_eq!((media.width, media.height), (360, 640));
    s.finish(&[&id, &id2]).await;
}

/// The iPhone's default: 60 s of 1080p HEVC 10-bit, displayed rotated, a keyframe every 7.5 s.
/// Four of the twelve buckets have no keyframe, but the keyframes are close enough to show the
/// whole walk-through: they are the frames, with no seek and no full decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iphone_hevc_with_a_keyframe_every_7_5_s_takes_its_keyframes_alone() {
    sandbox();
    let id = session_id(1003);
    let bytes = read(&fixtures::iphone_hevc());
    let (probe, duration, extraction) = extract_file(&id, &bytes).await;
    assert_eq!(probe.rotation % 180, 90);
    assert_eq!((probe.width, probe.height), (1080, 1920));
    assert!((duration - 60.0).abs() < 0.5, "{duration}");
    assert_eq!(extraction.path, extract::FramePath::Keyframes);
    let times: Vec<f64> = extraction.frames.iter().map(|f| f.pts_s).collect();
    assert_eq!(times.len(), 8, "{times:?}");
    for (k, t) in times.iter().enumerate() {
        assert!(
            (t - k as f64 * 7.5).abs() < 0.1,
            "keyframe {k} at {times:?}"
        );
    }
    for frame in &extraction.frames {
        assert_eq!(jpeg_size(&frame.jpeg), (432, 768), "upright portrait");
    }
    assert!(extraction.audio.is_some());
    drop(extraction);
    assert_no_residue(&[&id], None).await;
}

/// Keyframes 9 s apart: the buckets in those gaps are filled by seeks to their starts, not by
/// a full decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframes_9_s_apart_are_completed_by_seeks() {
    sandbox();
    let id = session_id(1004);
    let bytes = read(&fixtures::sparse_keyframes());
    let (_, duration, extraction) = extract_file(&id, &bytes).await;
    assert_eq!(extraction.path, extract::FramePath::KeyframesAndSeeks(5));
    assert_covers(&extraction, duration);
    let times: Vec<f64> = extraction.frames.iter().map(|f| f.pts_s).collect();
    for sought in [10.0, 20.0, 30.0, 40.0, 55.0] {
        assert!(
            times.iter().any(|t| (t - sought).abs() < 0.5),
            "a frame sought at {sought} s: {times:?} of {duration}"
        );
    }
    drop(extraction);
    assert_no_residue(&[&id], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediarecorder_webm_streamed_with_one_keyframe_is_processed() {
    sandbox();
    let id = session_id(1002);
    let bytes = read(&fixtures::webm());
    let (probe, duration, extraction) = extract_file(&id, &bytes).await;
    // Streamed WebM declares no duration; ffprobe finds it from the last cluster, since the
    // memfd is seekable (or `measure_duration` does).
    assert!(
        probe.duration_s.is_none_or(|d| (d - 6.0).abs() < 0.5),
        "{:?}",
        probe.duration_s
    );
    assert!((duration - 6.0).abs() < 0.5, "{duration}");
    assert_eq!(
        extraction.path,
        extract::FramePath::DecodedAll,
        "a single keyframe forces the full-decode pass"
    );
    assert_covers(&extraction, duration);
    assert!(extraction.audio.is_some());
    drop(extraction);

    let s = Scenario::start(&[]).await;
    let (id2, event) = s.run(bytes).await;
    assert!(completed(&event).media.has_audio);
    assert_eq!(s.sim.stats().await["transcriptions"], 1);
    s.finish(&[&id, &id2]).await;
}

/// The narration sent to transcription is bounded by duration whatever the video's length
/// (and by size, `-fs`): an 8 s narration with a 2 s bound is sent, and billed, as 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_narration_sent_to_transcription_is_bounded() {
    let s = Scenario::start(&[("DODOLENS_MAX_AUDIO_S", "2")]).await;
    let (id, event) = s.run(read(&fixtures::moov_at_end())).await;
    let result = completed(&event);
    assert!(result.media.duration_s > 7.0, "{}", result.media.duration_s);
    assert_eq!(result.cost.audio_seconds, 2.0);
    let stats = s.sim.stats().await;
    assert_eq!(stats["transcriptions"], 1);
    let sent_ms = stats["audio_ms"].as_u64().unwrap();
    assert!(
        (1500..=2100).contains(&sent_ms),
        "{sent_ms} ms of audio sent"
    );
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_without_audio_is_vision_only_with_a_warning() {
    let s = Scenario::start(&[]).await;
    let (id, event) = s.run(read(&fixtures::no_audio())).await;
    let result = completed(&event);
    assert!(!result.media.has_audio);
    assert!(result
        .inventory
        .warnings
        .iter()
        .any(|w| w.code == WarningCode::NoAudio));
    let stats = s.sim.stats().await;
    assert_eq!(stats["transcriptions"], 0);
    assert_eq!(
        stats["chat_completions"], 1,
        "no directives without narration"
    );
    s.finish(&[&id]).await;
}

async fn expect_failure(body: Vec<u8>, code: ErrorCode) {
    let s = Scenario::start(&[]).await;
    let (id, event) = s.run(body).await;
    let failure = failed(&event);
    assert_eq!(failure.code, code, "{failure:?}");
    assert!(!failure.retryable, "a broken file stays broken");
    assert_eq!(
        s.sim.stats().await["chat_completions"],
        0,
        "nothing sent to the model"
    );
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_file_is_unsupported() {
    expect_failure(read(&fixtures::audio_only()), ErrorCode::UnsupportedMedia).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_mp4_is_invalid() {
    expect_failure(fixtures::truncated(), ErrorCode::InvalidMedia).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disguised_hls_playlist_is_refused() {
    expect_failure(
        fixtures::disguised_hls(&fixtures::canary()),
        ErrorCode::UnsupportedMedia,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disguised_ffconcat_is_refused() {
    expect_failure(
        fixtures::disguised_concat(&fixtures::canary()),
        ErrorCode::UnsupportedMedia,
    )
    .await;
}
