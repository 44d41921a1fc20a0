//! Live capture on the origin (issue 13 §3–§4): a recording forwarded in ranges while it is
//! still uploaded, decoded by one ffmpeg as the bytes arrive, its narration transcribed in
//! segments meanwhile, finished by a forward carrying the rest. Real ffmpeg, the simulator,
//! the range protocol's answers, and the residue check at the end of each.

mod support;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use base64::Engine;
use dodolens_shared::{
    protocol::{JobMeta, HEADER_STREAM_OFFSET, HEADER_VIDEO_LENGTH},
    signing::{self, Purpose, SignedParts, HEADER_METADATA, HEADER_SIGNATURE, HEADER_TIMESTAMP},
    video_digest,
};
use sha2::{Digest, Sha256};
use support::{fixtures, *};

const RANGE: usize = 256 * 1024;

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A request signed as the edge signs a range or a finish: the offset and the digest as the
/// extra signed headers, in that order.
fn signed(
    origin: SocketAddr,
    purpose: Purpose,
    path: &str,
    meta: &JobMeta,
    (offset, body, digest): (u64, &[u8], &str),
) -> reqwest::RequestBuilder {
    let metadata =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(meta).unwrap());
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let offset = offset.to_string();
    let extra = [
        (HEADER_STREAM_OFFSET, offset.as_str()),
        (video_digest::HEADER, digest),
    ];
    let parts = SignedParts {
        extra: &extra,
        ..SignedParts::new(
            purpose,
            "POST",
            path,
            timestamp,
            body.len() as u64,
            &metadata,
        )
    };
    let signature = signing::sign(SECRET.as_bytes(), &parts).unwrap();
    reqwest::Client::new()
        .post(format!("http://{origin}{path}"))
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_METADATA, metadata)
        .header(HEADER_STREAM_OFFSET, offset)
        .header(video_digest::HEADER, digest)
        .header(HEADER_SIGNATURE, signature)
        .body(body.to_vec())
}

/// `POST /v1/jobs/{id}/stream` with the range `bytes` starting at `offset`.
async fn range(origin: SocketAddr, meta: &JobMeta, offset: u64, bytes: &[u8]) -> reqwest::Response {
    range_signed(origin, meta, offset, bytes, &hex_sha256(bytes)).await
}

async fn range_signed(
    origin: SocketAddr,
    meta: &JobMeta,
    offset: u64,
    bytes: &[u8],
    digest: &str,
) -> reqwest::Response {
    let path = format!("/v1/jobs/{}/stream", meta.session_id);
    signed(
        origin,
        Purpose::Stream,
        &path,
        meta,
        (offset, bytes, digest),
    )
    .send()
    .await
    .unwrap()
}

/// The finishing forward: `whole[offset..]`, signed with the whole video's digest and length.
async fn finish(
    origin: SocketAddr,
    meta: &JobMeta,
    offset: u64,
    whole: &[u8],
) -> reqwest::Response {
    finish_signed(origin, meta, offset, whole, &hex_sha256(whole)).await
}

async fn finish_signed(
    origin: SocketAddr,
    meta: &JobMeta,
    offset: u64,
    whole: &[u8],
    digest: &str,
) -> reqwest::Response {
    let path = format!("/v1/jobs/{}", meta.session_id);
    let rest = &whole[offset as usize..];
    signed(
        origin,
        Purpose::Forward,
        &path,
        meta,
        (offset, rest, digest),
    )
    .header(HEADER_VIDEO_LENGTH, whole.len().to_string())
    .send()
    .await
    .unwrap()
}

fn held(response: &reqwest::Response) -> u64 {
    response.headers()[HEADER_STREAM_OFFSET]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn new_id() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    session_id(1000 + N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Feeds `video` in ranges, all but its last part; waits for the segments transcribed meanwhile;
/// finishes; checks frames across the whole recording and every second of audio transcribed.
async fn live_capture(video: PathBuf) {
    let s = Scenario::start(&[]).await;
    let id = new_id();
    let meta = s.meta(&id);
    let bytes = read(&video);
    let tail = bytes.len() - RANGE / 2;
    let mut at = 0;
    while at < tail {
        let end = (at + RANGE).min(tail);
        let r = range(s.origin.addr, &meta, at as u64, &bytes[at..end]).await;
        assert_eq!(r.status(), 202, "range at {at}");
        assert_eq!(held(&r), end as u64);
        at = end;
    }
    // Two segments of 20–30 s are complete in the first 60 s: both are transcribed before the
    // recording ends, while nothing else has been asked of the models or told to the edge.
    let sim = &s.sim;
    wait_until(
        "two segments transcribed",
        Duration::from_secs(60),
        || async { sim.stats().await["transcriptions"] == 2 },
    )
    .await;
    let stats = s.sim.stats().await;
    assert_eq!(stats["chat_completions"], 0);
    assert!(s.cb.events(&id).is_empty(), "no event before the finish");

    let r = finish(s.origin.addr, &meta, at as u64, &bytes).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let event = s.cb.final_event(&id, Duration::from_secs(120)).await;
    let result = completed(&event);
    let seconds = fixtures::LIVE_SECONDS as f64;
    assert!(
        (result.media.duration_s - seconds).abs() < 1.5,
        "duration {}",
        result.media.duration_s
    );
    assert_eq!(result.media.frames_analysed, 12);
    assert!(result.media.has_audio);

    let stats = s.sim.stats().await;
    assert_eq!(
        stats["transcriptions"], 3,
        "only the last segment at the finish"
    );
    assert_eq!(stats["rejected"], 0);
    let heard_s = stats["audio_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        (heard_s - seconds).abs() < 0.5,
        "every second transcribed exactly once: {heard_s} s"
    );
    let times: Vec<f64> = stats["frame_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    let bucket = seconds / 12.0;
    assert_eq!(times.len(), 12, "{times:?}");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(times[0] <= bucket, "the start is covered: {times:?}");
    assert!(
        times[11] >= seconds - bucket - 2.0,
        "the end is covered: {times:?}"
    );
    assert!(
        times.windows(2).all(|w| w[1] - w[0] <= 2.0 * bucket + 2.0),
        "no hole in the timeline: {times:?}"
    );
    // The directives read the whole transcript (the simulator's: "quinze cartons de livres").
    let lines: Vec<_> = result
        .inventory
        .rooms
        .iter()
        .flat_map(|r| &r.lines)
        .collect();
    assert!(
        lines.iter().any(|line| line.quantity == 15),
        "the narration's directive applied: {lines:?}"
    );
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fragmented_mp4_is_extracted_and_transcribed_as_it_arrives() {
    live_capture(fixtures::live_mp4()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webm_without_cues_or_duration_is_extracted_and_transcribed_as_it_arrives() {
    let video = fixtures::live_webm();
    let duration = fixtures::declared_duration(&video);
    assert!(
        matches!(duration.as_str(), "" | "N/A"),
        "the WebM declares no duration: {duration}"
    );
    live_capture(video).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ranges_are_answered_by_offset_and_digest() {
    let s = Scenario::start(&[]).await;
    let id = new_id();
    let meta = s.meta(&id);
    let bytes = read(&fixtures::live_webm());
    let origin = s.origin.addr;

    let r = range(origin, &meta, 0, &bytes[..RANGE]).await;
    assert_eq!((r.status().as_u16(), held(&r)), (202, RANGE as u64));
    let r = range(origin, &meta, 0, &bytes[..RANGE]).await;
    assert_eq!(
        (r.status().as_u16(), held(&r)),
        (202, RANGE as u64),
        "a duplicate"
    );
    let r = range(
        origin,
        &meta,
        RANGE as u64 / 2,
        &bytes[RANGE / 2..2 * RANGE],
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), held(&r)),
        (202, 2 * RANGE as u64),
        "an overlap"
    );
    let r = range(
        origin,
        &meta,
        3 * RANGE as u64,
        &bytes[3 * RANGE..4 * RANGE],
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), held(&r)),
        (409, 2 * RANGE as u64),
        "a gap"
    );
    let wrong = hex_sha256(b"another range");
    let r = range_signed(
        origin,
        &meta,
        2 * RANGE as u64,
        &bytes[2 * RANGE..3 * RANGE],
        &wrong,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("digest"));
    let r = finish(origin, &meta, RANGE as u64, &bytes).await;
    assert_eq!(
        (r.status().as_u16(), held(&r)),
        (409, 2 * RANGE as u64),
        "a finish elsewhere"
    );
    assert_eq!(s.origin.state.live.len(), 1, "refusals keep the live job");
    let r = finish_signed(origin, &meta, 2 * RANGE as u64, &bytes, &wrong).await;
    assert_eq!(
        r.status(),
        400,
        "the whole recording is not the signed video"
    );
    assert!(r.text().await.unwrap().contains("digest"));
    assert!(
        s.origin.state.live.is_empty(),
        "and its live job is dropped"
    );
    assert_eq!(s.origin.state.admission.usage().jobs, 0);

    // A newer attempt starts at 0 or is told so; the older one then holds nothing here.
    let newer = job_meta(&id, &meta.callback_url, 2);
    let r = range(
        origin,
        &newer,
        2 * RANGE as u64,
        &bytes[2 * RANGE..3 * RANGE],
    )
    .await;
    assert_eq!((r.status().as_u16(), held(&r)), (409, 0));
    let r = range(
        origin,
        &meta,
        2 * RANGE as u64,
        &bytes[2 * RANGE..3 * RANGE],
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), held(&r)),
        (409, 0),
        "attempt 1 is gone"
    );
    let r = range(origin, &newer, 0, &bytes[..RANGE]).await;
    assert_eq!((r.status().as_u16(), held(&r)), (202, RANGE as u64));
    assert_eq!(
        s.origin.state.admission.usage().jobs,
        1,
        "a live job holds a slot"
    );

    // A cancel drops it, and later ranges are refused.
    assert_eq!(cancel(origin, &id, Purpose::Cancel).await.status(), 204);
    assert!(s.origin.state.live.is_empty());
    let r = range(origin, &newer, RANGE as u64, &bytes[RANGE..2 * RANGE]).await;
    assert_eq!(r.status(), 410);
    assert_eq!(s.origin.state.admission.usage().jobs, 0);
    assert!(s.cb.events(&id).is_empty(), "a live job sends no event");
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_live_job_is_dropped_and_the_whole_file_still_runs() {
    let s = Scenario::start(&[("DODOLENS_STREAM_IDLE_MS", "300")]).await;
    let id = new_id();
    let meta = s.meta(&id);
    let bytes = read(&fixtures::live_mp4());
    let r = range(s.origin.addr, &meta, 0, &bytes[..RANGE]).await;
    assert_eq!(r.status(), 202);
    assert!(
        !open_memfds(&id).is_empty(),
        "the live job holds its memfds"
    );

    wait_until(
        "the idle live job dropped",
        Duration::from_secs(10),
        || async { open_memfds(&id).is_empty() },
    )
    .await;
    assert!(s.origin.state.live.is_empty());
    assert_eq!(
        s.origin.state.admission.usage().jobs,
        0,
        "its slot released"
    );
    let r = range(s.origin.addr, &meta, RANGE as u64, &bytes[RANGE..2 * RANGE]).await;
    assert_eq!((r.status().as_u16(), held(&r)), (409, 0));
    let r = finish(s.origin.addr, &meta, RANGE as u64, &bytes).await;
    assert_eq!((r.status().as_u16(), held(&r)), (409, 0));
    assert!(
        s.cb.events(&id).is_empty(),
        "no event for a dropped live job"
    );

    // The edge then forwards the whole file as a new attempt, as today.
    let whole = job_meta(&id, &meta.callback_url, 2);
    let r = forward(s.origin.addr, &whole, bytes, Signature::Good).await;
    assert_eq!(r.status(), 202);
    completed(&s.cb.final_event(&id, Duration::from_secs(120)).await);
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_range_over_8_mib_is_refused_before_its_body() {
    use tokio::io::AsyncWriteExt;
    let s = Scenario::start(&[]).await;
    let id = new_id();
    let meta = s.meta(&id);
    let too_long = vec![0u8; dodolens_shared::stream_range::MAX_RANGE_BYTES as usize + 1];
    let path = format!("/v1/jobs/{id}/stream");
    let digest = hex_sha256(&too_long);
    let request = signed(
        s.origin.addr,
        Purpose::Stream,
        &path,
        &meta,
        (0, &too_long, &digest),
    )
    .build()
    .unwrap();
    let headers: String = request
        .headers()
        .iter()
        .map(|(name, value)| format!("{name}: {}\r\n", value.to_str().unwrap()))
        .collect();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: origin\r\ncontent-length: {}\r\n{headers}\r\n",
        too_long.len()
    );
    let mut stream = tokio::net::TcpStream::connect(s.origin.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, _) = read_head(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(status, 413, "answered from the headers, no body sent");
    assert!(s.origin.state.live.is_empty());
    s.finish(&[&id]).await;
}
