//! ffmpeg as a child that can misbehave, and jobs that must stop: past its deadline ffmpeg is
//! killed, a file that floods its log fails as damaged media within seconds instead of blocking
//! on a full pipe, and a cancel (or an event the edge answers 410) kills ffmpeg, drops the model
//! call and leaves nothing.
//!
//! The tests here watch this process's ffmpeg/ffprobe children (by executable, not by what they
//! read), so they run one at a time.

mod support;

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use dodolens_origin::store::{JobMark, Outcome};
use dodolens_shared::{protocol::ErrorCode, signing::Purpose};
use support::{fixtures, *};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Records every ffmpeg/ffprobe child of this process it sees, polling `/proc` every
/// millisecond until stopped.
struct ChildWatch {
    seen: Arc<Mutex<BTreeSet<(u32, String)>>>,
    stop: Arc<AtomicBool>,
}

impl ChildWatch {
    fn start() -> ChildWatch {
        let seen: Arc<Mutex<BTreeSet<(u32, String)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (record, done) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                for child in media_children() {
                    record.lock().unwrap().insert(child);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        ChildWatch { seen, stop }
    }

    fn seen(&self) -> BTreeSet<(u32, String)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ChildWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Live (not zombie) children of this process whose executable is ffmpeg or ffprobe.
fn media_children() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|pid| running(*pid))
        .filter_map(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            let name = exe.file_name()?.to_string_lossy().into_owned();
            (name.starts_with("ffmpeg") || name.starts_with("ffprobe")).then_some((pid, name))
        })
        .collect()
}

/// Whether `pid` exists and is not a zombie (a killed child not yet reaped is not running).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Waits until none of `children` runs any more.
async fn all_gone(children: &BTreeSet<(u32, String)>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while children.iter().any(|(pid, _)| running(*pid)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "left running: {children:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_past_its_deadline_is_killed() {
    let _serial = SERIAL.lock().await;
    let s = Scenario::start(&[("DODOLENS_FFMPEG_TIMEOUT_S", "0.3")]).await;
    // Read first: generating the fixture runs ffmpeg too.
    let body = read(&fixtures::long_1080p());
    let watch = ChildWatch::start();
    let (id, event) = s.run(body).await;
    let failure = failed(&event);
    assert_eq!(failure.code, ErrorCode::Timeout);
    assert!(failure.retryable);
    // The probe or the extraction, whichever the deadline caught.
    let seen = watch.seen();
    assert!(!seen.is_empty(), "no ffmpeg or ffprobe was ever seen");
    all_gone(&seen).await;
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_floods_ffmpegs_log_fails_as_invalid_media_in_seconds() {
    let _serial = SERIAL.lock().await;
    // The production deadline: a blocked pipe would end as a retryable timeout after 60 s.
    let s = Scenario::start(&[("DODOLENS_FFMPEG_TIMEOUT_S", "60")]).await;
    let body = read(&fixtures::floods_stderr());
    let started = Instant::now();
    let (id, event) = s.run(body).await;
    let elapsed = started.elapsed();
    let failure = failed(&event);
    eprintln!(
        "flooding-stderr file: {:?} after {elapsed:.2?}",
        failure.code
    );
    assert_eq!(failure.code, ErrorCode::InvalidMedia, "{failure:?}");
    assert!(!failure.retryable);
    s.finish(&[&id]).await;
}

/// Waits until the watch has seen the extraction's ffmpeg running.
async fn extraction_running(watch: &ChildWatch) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !watch
        .seen()
        .iter()
        .any(|(pid, name)| name.starts_with("ffmpeg") && running(*pid))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "extraction never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Cancelled during extraction (the user deleted the upload): ffmpeg is killed, no event is
/// sent, the memfds are closed, and only the expiring markers stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_extraction_kills_ffmpeg_and_leaves_nothing() {
    let _serial = SERIAL.lock().await;
    let s = Scenario::start(&[]).await;
    let id = session_id(1300);
    let body = read(&fixtures::long_1080p());
    let watch = ChildWatch::start();
    assert_eq!(
        forward(s.origin.addr, &s.meta(&id), body.clone(), Signature::Good)
            .await
            .status(),
        202
    );
    extraction_running(&watch).await;
    assert!(
        !open_memfds(&id).is_empty(),
        "the video is held while extracting"
    );
    assert_eq!(
        cancel(s.origin.addr, &id, Purpose::Cancel).await.status(),
        204
    );
    assert_eq!(
        ended(&s.origin, &id).await,
        JobMark::Ended {
            attempt: 1,
            outcome: Outcome::Cancelled
        }
    );
    all_gone(&watch.seen()).await;
    assert_eq!(s.sim.stats().await["chat_completions"], 0);
    assert!(
        s.cb.events(&id).iter().all(|e| !is_final(e)),
        "no final event"
    );
    assert_eq!(metric(&s.metrics().await, "dodolens_jobs_in_flight"), 0.0);
    // A late forward of the cancelled job is refused (from its headers: a small body suffices,
    // a large one would be cut off by the early answer).
    drop(body);
    let late = forward(
        s.origin.addr,
        &s.meta(&id),
        b"late".to_vec(),
        Signature::Good,
    )
    .await;
    assert_eq!(late.status(), 410);
    s.finish(&[&id]).await;
}

/// Cancelled while the model works: the request is dropped (the simulator sees its client
/// leave), and a cancel with a wrong purpose or no signature does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_a_model_call_drops_the_call() {
    let _serial = SERIAL.lock().await;
    let s = Scenario::start(&[]).await;
    let id = session_id(1301);
    s.job_waiting_on_the_model(&id).await;
    for purpose in [Purpose::Forward, Purpose::OriginEvent, Purpose::Webhook] {
        assert_eq!(
            cancel(s.origin.addr, &id, purpose).await.status(),
            401,
            "{purpose:?}"
        );
    }
    let unsigned = reqwest::Client::new()
        .delete(format!("http://{}/v1/jobs/{id}", s.origin.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert!(s
        .origin
        .state
        .store
        .job_mark(&id)
        .await
        .unwrap()
        .is_some_and(|m| matches!(m, JobMark::Running { .. })));

    assert_eq!(
        cancel(s.origin.addr, &id, Purpose::Cancel).await.status(),
        204
    );
    assert_eq!(
        ended(&s.origin, &id).await,
        JobMark::Ended {
            attempt: 1,
            outcome: Outcome::Cancelled
        }
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.sim.stats().await["aborted"] == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the model call was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.cb.events(&id).iter().all(|e| !is_final(e)));
    s.finish(&[&id]).await;
}

/// The edge answering an event 410 (the session was purged) stops the job the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_answered_410_stops_the_job() {
    let _serial = SERIAL.lock().await;
    let s = Scenario::start(&[("DODOLENS_HEARTBEAT_MS", "200")]).await;
    let id = session_id(1302);
    s.job_waiting_on_the_model(&id).await;
    // The next heartbeat meets the purged session.
    s.cb.purge(&id);
    assert_eq!(
        ended(&s.origin, &id).await,
        JobMark::Ended {
            attempt: 1,
            outcome: Outcome::Cancelled
        }
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.sim.stats().await["aborted"] == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the model call was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.finish(&[&id]).await;
}
