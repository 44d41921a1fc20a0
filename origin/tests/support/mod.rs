//! Shared test harness: fixtures generated with ffmpeg and espeak-ng, an in-process origin,
//! simulator and edge callback (which verifies signatures), a real redis-server, and the residue
//! checks every scenario ends with.
#![allow(dead_code)]

pub mod fixtures;

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    routing::post,
    Router,
};
use base64::Engine;
use dodolens_origin::{config::Config, store::MemoryStore, Origin};
use dodolens_shared::{
    protocol::{JobMeta, OriginEvent, OriginReport, UploadMeta},
    signing::{self, Purpose, SignedParts, HEADER_METADATA, HEADER_SIGNATURE, HEADER_TIMESTAMP},
};
use serde_json::{json, Value};
use tokio::sync::Notify;

pub const SECRET: &str = "test-secret-for-dodolens";
/// The mover's webhook key: the origin signs webhooks with it and accepts nothing signed by it.
pub const WEBHOOK_SECRET: &str = "webhook-secret-the-mover-holds";

/// Runs the whole test process with TMPDIR and the working directory in empty folders, so the
/// residue check can prove nothing was written.
pub fn sandbox() -> &'static (PathBuf, PathBuf) {
    static SANDBOX: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        // The test's own HTTP clients need the TLS provider the origin installs for itself.
        dodolens_origin::install_crypto_provider();
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Sandboxes of finished test processes are empty by construction; remove them.
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("sandbox-") {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let root = base.join(format!("sandbox-{}", std::process::id()));
        let (tmp, cwd) = (root.join("tmp"), root.join("cwd"));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::create_dir_all(&cwd).unwrap();
        std::env::set_var("TMPDIR", &tmp);
        std::env::set_current_dir(&cwd).unwrap();
        (tmp, cwd)
    })
}

pub fn session_id(n: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!("{:016x}{:016x}{:032x}", std::process::id() as u64, nanos, n)
}

/// The edge's side of the event protocol: verifies signatures, records events by session.
#[derive(Clone, Default)]
pub struct Callback {
    inner: Arc<CallbackInner>,
}

#[derive(Default)]
struct CallbackInner {
    reports: Mutex<HashMap<String, Vec<OriginReport>>>,
    /// Every final event POSTed (redeliveries and refused ones included), by session.
    final_posts: Mutex<HashMap<String, u64>>,
    /// While set, final events are answered with this status instead of being applied.
    refuse_finals: Mutex<Option<u16>>,
    /// Sessions purged at the "edge": their events are answered 410.
    gone: Mutex<std::collections::HashSet<String>>,
    bad_signatures: Mutex<u64>,
    changed: Notify,
}

impl Callback {
    pub async fn start() -> (Callback, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cb = Callback::default();
        cb.serve(listener);
        (cb, addr)
    }

    /// Serves on an existing listener (used to bring a "down" edge up on a reserved port).
    pub fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/internal/sessions/{id}/events", post(receive))
            .with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }

    pub fn url(addr: SocketAddr, id: &str) -> String {
        format!("http://{addr}/internal/sessions/{id}/events")
    }

    pub fn events(&self, id: &str) -> Vec<OriginEvent> {
        self.reports(id).into_iter().map(|r| r.event).collect()
    }

    /// The events of `id` with the forward attempt each was stamped with.
    pub fn reports(&self, id: &str) -> Vec<OriginReport> {
        self.inner
            .reports
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// Answer final events with `status` (e.g. 503, 410) until called again with `None`.
    pub fn refuse_finals(&self, status: Option<u16>) {
        *self.inner.refuse_finals.lock().unwrap() = status;
    }

    pub fn final_posts(&self, id: &str) -> u64 {
        self.inner
            .final_posts
            .lock()
            .unwrap()
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `id` has received at least `n` final POSTs, woken on every one.
    pub async fn wait_final_posts(&self, id: &str, n: u64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.inner.changed.notified();
            if self.final_posts(id) >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "{} of {n} final POSTs for {id} within {within:?}",
                    self.final_posts(id)
                );
            }
        }
    }

    /// From now on, events for `id` are answered 410, as for a purged session.
    pub fn purge(&self, id: &str) {
        self.inner.gone.lock().unwrap().insert(id.to_string());
    }

    pub fn bad_signatures(&self) -> u64 {
        *self.inner.bad_signatures.lock().unwrap()
    }

    /// Waits for the final event of `id`.
    pub async fn final_event(&self, id: &str, within: Duration) -> OriginEvent {
        self.final_events(id, 1, within).await.remove(0)
    }

    /// Waits until `id` has received `n` final events (one per run), woken on every event.
    pub async fn final_events(&self, id: &str, n: usize, within: Duration) -> Vec<OriginEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.inner.changed.notified();
            let finals: Vec<OriginEvent> = self.events(id).into_iter().filter(is_final).collect();
            if finals.len() >= n {
                return finals;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "{} of {n} final events for {id} within {within:?}: {:?}",
                    finals.len(),
                    self.events(id)
                );
            }
        }
    }
}

pub fn is_final(e: &OriginEvent) -> bool {
    matches!(
        e,
        OriginEvent::Completed { .. } | OriginEvent::Failed { .. }
    )
}

async fn receive(
    State(cb): State<Callback>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let digest = signing::body_digest(&body);
    let path = format!("/internal/sessions/{id}/events");
    let parts = SignedParts::new(
        Purpose::OriginEvent,
        "POST",
        &path,
        get(HEADER_TIMESTAMP).parse().unwrap_or(0),
        body.len() as u64,
        get(HEADER_METADATA),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if get(HEADER_METADATA) != digest
        || signing::verify(SECRET.as_bytes(), &parts, get(HEADER_SIGNATURE), now).is_err()
    {
        *cb.inner.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if cb.inner.gone.lock().unwrap().contains(&id) {
        return StatusCode::GONE;
    }
    let Ok(report) = serde_json::from_slice::<OriginReport>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if is_final(&report.event) {
        *cb.inner
            .final_posts
            .lock()
            .unwrap()
            .entry(id.clone())
            .or_default() += 1;
        let refusal = *cb.inner.refuse_finals.lock().unwrap();
        if let Some(status) = refusal {
            cb.inner.changed.notify_waiters();
            return StatusCode::from_u16(status).unwrap();
        }
    }
    let mut reports = cb.inner.reports.lock().unwrap();
    let list = reports.entry(id).or_default();
    // A redelivered final event is a no-op, as on the edge.
    if is_final(&report.event) && list.contains(&report) {
        drop(reports);
        cb.inner.changed.notify_waiters();
        return StatusCode::NO_CONTENT;
    }
    list.push(report);
    drop(reports);
    cb.inner.changed.notify_waiters();
    StatusCode::NO_CONTENT
}

/// A simulator in this process.
pub struct Sim {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Sim {
    pub async fn start() -> Sim {
        let (addr, task) = openai_sim::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Sim { addr, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub async fn control(&self, control: Value) {
        let r = reqwest::Client::new()
            .post(format!("http://{}/__sim/control", self.addr))
            .json(&control)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    pub async fn stats(&self) -> Value {
        reqwest::get(format!("http://{}/__sim/stats", self.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Local mode: nothing went to a model server.
    pub async fn assert_no_model_calls(&self) {
        let stats = self.stats().await;
        assert_eq!(
            (
                stats["chat_completions"].as_u64(),
                stats["transcriptions"].as_u64()
            ),
            (Some(0), Some(0)),
            "{stats}"
        );
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Test configuration: port 0, the simulator, fast retries; `extra` overrides.
pub fn config(sim: &Sim, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = [
        ("DODOLENS_BIND", "127.0.0.1:0".to_string()),
        ("DODOLENS_OPS_BIND", "127.0.0.1:0".to_string()),
        ("DODOLENS_SIGNING_SECRET", SECRET.to_string()),
        ("OPENAI_BASE_URL", sim.base_url()),
        ("DODOLENS_MAX_VIDEO_BYTES", (150 * 1024 * 1024).to_string()),
        ("DODOLENS_CALLBACK_BACKOFF_MS", "100".to_string()),
        ("DODOLENS_CALLBACK_BACKOFF_MAX_S", "1".to_string()),
        ("DODOLENS_CALLBACK_TIMEOUT_S", "5".to_string()),
        ("DODOLENS_MODEL_TIMEOUT_S", "20".to_string()),
        ("DODOLENS_SHUTDOWN_GRACE_S", "5".to_string()),
        ("DODOLENS_LOG", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_vars(|k| vars.get(k).cloned()).unwrap()
}

pub async fn start_origin(cfg: Config) -> Origin {
    sandbox();
    dodolens_origin::start(cfg).await.unwrap()
}

/// An origin on an in-memory store the test keeps a handle to, for residue checks.
pub async fn start_origin_in_memory(cfg: Config) -> (Origin, MemoryStore) {
    sandbox();
    let store = MemoryStore::new();
    let origin = dodolens_origin::start_with_store(cfg, Arc::new(store.clone()))
        .await
        .unwrap();
    (origin, store)
}

pub fn job_meta(id: &str, callback: &str, attempt: u32) -> JobMeta {
    JobMeta {
        session_id: id.to_string(),
        callback_url: callback.to_string(),
        meta: UploadMeta {
            filename: Some("visite.mp4".into()),
            filetype: "video/mp4".into(),
            locale: "fr".into(),
        },
        attempt,
    }
}

/// Forward options for negative tests.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Good,
    Missing,
    WrongSecret,
    Stale,
    /// Signed with the webhook key, as its receiver could.
    WebhookKey,
    /// The edge ↔ origin key, but made for another purpose (an origin event).
    WrongPurpose,
    /// [`PREVIOUS_SECRET`], the key a rotation is retiring.
    PreviousKey,
    /// Correctly signed, but the signed video digest is not the body's SHA-256.
    WrongDigest,
}

/// The key being retired in rotation tests (`DODOLENS_SIGNING_SECRET_PREVIOUS`).
pub const PREVIOUS_SECRET: &str = "previous-secret-being-rotated-out";

pub async fn forward(
    origin: SocketAddr,
    meta: &JobMeta,
    body: Vec<u8>,
    signature: Signature,
) -> reqwest::Response {
    let metadata =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(meta).unwrap());
    let path = format!("/v1/jobs/{}", meta.session_id);
    let mut timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if signature == Signature::Stale {
        timestamp -= 600;
    }
    let secret: &[u8] = match signature {
        Signature::WrongSecret => b"not-the-secret",
        Signature::WebhookKey => WEBHOOK_SECRET.as_bytes(),
        Signature::PreviousKey => PREVIOUS_SECRET.as_bytes(),
        _ => SECRET.as_bytes(),
    };
    let purpose = match signature {
        Signature::WrongPurpose => Purpose::OriginEvent,
        Signature::WebhookKey => Purpose::Webhook,
        _ => Purpose::Forward,
    };
    let mut digest = dodolens_shared::video_digest::VideoDigest::new();
    digest.update(&body);
    if signature == Signature::WrongDigest {
        digest.update(b"one more byte");
    }
    let digest = digest.hex();
    let extra = [(dodolens_shared::video_digest::HEADER, digest.as_str())];
    let sig = signing::sign(
        secret,
        &SignedParts {
            extra: &extra,
            ..SignedParts::new(
                purpose,
                "POST",
                &path,
                timestamp,
                body.len() as u64,
                &metadata,
            )
        },
    )
    .unwrap();
    let mut request = reqwest::Client::new()
        .post(format!("http://{origin}{path}"))
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_METADATA, metadata)
        .header(dodolens_shared::video_digest::HEADER, &digest);
    if signature != Signature::Missing {
        request = request.header(HEADER_SIGNATURE, sig);
    }
    request
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("forward of {}: {e:?}", meta.session_id))
}

/// A signed cancel (`DELETE /v1/jobs/{id}`), as the edge sends it; `purpose` other than
/// `Cancel` makes one the origin must refuse.
pub async fn cancel(origin: SocketAddr, id: &str, purpose: Purpose) -> reqwest::Response {
    let path = format!("/v1/jobs/{id}");
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let digest = signing::body_digest(b"");
    let parts = SignedParts::new(purpose, "DELETE", &path, timestamp, 0, &digest);
    let signature = signing::sign(SECRET.as_bytes(), &parts).unwrap();
    reqwest::Client::new()
        .delete(format!("http://{origin}{path}"))
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_METADATA, digest)
        .header(HEADER_SIGNATURE, signature)
        .send()
        .await
        .unwrap()
}

/// Waits until the store records how job `id` ended.
pub async fn ended(origin: &Origin, id: &str) -> dodolens_origin::store::JobMark {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match origin.state.store.job_mark(id).await.unwrap() {
            Some(mark @ dodolens_origin::store::JobMark::Ended { .. }) => return mark,
            _ => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "job {id} never ended"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// memfds this process holds for `id` (video or audio).
pub fn open_memfds(id: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p.contains("memfd:dodolens") && p.contains(id))
        .collect()
}

/// Nothing left behind by the jobs `ids`: no memfd, no file in TMPDIR or the working directory,
/// no store key without TTL, no status key.
pub async fn assert_no_residue(ids: &[&str], redis: Option<&Redis>) {
    for id in ids {
        // The job task may still be dropping its buffers right after the final event.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !open_memfds(id).is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "memfd left open: {:?}",
                open_memfds(id)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (tmp, cwd) = sandbox();
    for dir in [tmp, cwd] {
        let entries: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
        assert!(
            entries.is_empty(),
            "{} is not empty: {entries:?}",
            dir.display()
        );
    }
    if let Some(redis) = redis {
        for id in ids {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while redis
                .keys(&format!("*status:{id}"))
                .iter()
                .chain(redis.keys(&format!("*outbox:{id}*")).iter())
                .count()
                > 0
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "job keys left for {id}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for key in redis.keys("*") {
            let ttl = redis.cli(&["PTTL", &key]);
            assert!(
                ttl.trim().parse::<i64>().unwrap() > 0,
                "key {key} has no TTL ({ttl})"
            );
        }
    }
}

/// A redis-server on a free port, with persistence off, stopped on drop.
pub struct Redis {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Redis {
    pub async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Self::spawn(port, &dir);
        let redis = Redis { port, child, dir };
        redis.wait_ready().await;
        redis
    }

    fn spawn(port: u16, dir: &Path) -> Child {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH")
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, signal: i32) {
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill({signal})");
    }

    /// SIGSTOP: the server keeps its connections but answers nothing.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`Redis::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// SIGKILL, then a fresh redis-server on the same port: every key is lost.
    pub async fn kill_and_restart(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        self.child = Self::spawn(self.port, &self.dir);
        self.wait_ready().await;
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, pattern: &str) -> Vec<String> {
        self.cli(&["--raw", "KEYS", pattern])
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // A paused server must be resumed to die of SIGKILL promptly and release its port.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A field of /proc/self/status in KiB (e.g. "VmHWM:", the peak resident memory), for benches.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The Whisper folder: `DODOLENS_WHISPER_DIR`, else the one `scripts/bootstrap` assembles
/// (`.tools/models/whisper-base`). A missing folder fails rather than skips.
pub fn whisper_dir() -> PathBuf {
    let dir = std::env::var_os("DODOLENS_WHISPER_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.tools/models/whisper-base"
            ))
        },
        PathBuf::from,
    );
    assert!(
        dir.join("model.bin").exists(),
        "no Whisper model in {dir:?}: run scripts/bootstrap"
    );
    dir
}

/// Simulator + edge callback + one origin, the usual setup of a scenario.
pub struct Scenario {
    pub sim: Sim,
    pub cb: Callback,
    pub cb_addr: SocketAddr,
    pub origin: Origin,
    /// The store, when the scenario runs without Redis.
    pub memory: Option<MemoryStore>,
}

impl Scenario {
    pub async fn start(extra: &[(&str, &str)]) -> Scenario {
        let sim = Sim::start().await;
        let (cb, cb_addr) = Callback::start().await;
        let cfg = config(&sim, extra);
        let (origin, memory) = if cfg.redis_url.is_some() {
            (start_origin(cfg).await, None)
        } else {
            let (origin, store) = start_origin_in_memory(cfg).await;
            (origin, Some(store))
        };
        Scenario {
            sim,
            cb,
            cb_addr,
            origin,
            memory,
        }
    }

    pub fn meta(&self, id: &str) -> JobMeta {
        job_meta(id, &Callback::url(self.cb_addr, id), 1)
    }

    /// Forwards the no-audio fixture as job `id` with the simulator answering after a minute,
    /// and returns once the job waits in its model call.
    pub async fn job_waiting_on_the_model(&self, id: &str) {
        self.sim.control(json!({ "latency_ms": 60_000 })).await;
        let body = read(&fixtures::no_audio());
        let response = forward(self.origin.addr, &self.meta(id), body, Signature::Good).await;
        assert_eq!(response.status(), 202);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.sim.stats().await["chat_completions"] == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no model call");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Forwards `body` as a new job, expects 202, returns the id and the final event.
    pub async fn run(&self, body: Vec<u8>) -> (String, OriginEvent) {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = session_id(N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let response = forward(self.origin.addr, &self.meta(&id), body, Signature::Good).await;
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
        let event = self.cb.final_event(&id, Duration::from_secs(120)).await;
        (id, event)
    }

    pub async fn metrics(&self) -> String {
        metrics(&self.origin).await
    }

    /// Residue checks, signature checks on everything the edge received, then shutdown.
    pub async fn finish(self, ids: &[&str]) {
        assert_no_residue(ids, None).await;
        if let Some(store) = &self.memory {
            assert_only_finished_markers(&self.origin, store).await;
        }
        assert_eq!(self.cb.bad_signatures(), 0);
        self.origin.shutdown().await;
    }
}

/// Only what expires by itself remains: finished-job and cancel marks, kept final events, the
/// model budget's window, the spending counters; the outbox holds nothing.
pub async fn assert_only_finished_markers(
    origin: &Origin,
    store: &dodolens_origin::store::MemoryStore,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let lingering = || {
        store
            .keys()
            .into_iter()
            .filter(|k| {
                !(k.starts_with("job:")
                    || k.starts_with("final:")
                    || k.starts_with("cancel:")
                    || k.starts_with("spend:")
                    || k == "budget")
            })
            .collect::<Vec<_>>()
    };
    while !lingering().is_empty() || origin.state.outbox.held() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "store keeps {:?}, outbox holds {}",
            lingering(),
            origin.state.outbox.held()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The headers the edge signs a forward of `length` bytes with, under `path`: a video digest (of
/// nothing) included, for requests whose body is never sent — it only has to verify.
fn bodiless_forward_headers(
    meta: &JobMeta,
    path: &str,
    length: u64,
) -> Vec<(&'static str, String)> {
    let digest = dodolens_shared::video_digest::VideoDigest::new().hex();
    let extra = [(dodolens_shared::video_digest::HEADER, digest.as_str())];
    let metadata =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(meta).unwrap());
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let parts = SignedParts::new(Purpose::Forward, "POST", path, timestamp, length, &metadata);
    let signature = signing::sign(
        SECRET.as_bytes(),
        &SignedParts {
            extra: &extra,
            ..parts
        },
    )
    .unwrap();
    vec![
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_METADATA, metadata),
        (dodolens_shared::video_digest::HEADER, digest),
        (HEADER_SIGNATURE, signature),
    ]
}

/// The edge's body-less admission probe for a forward of `length` bytes (it signs the same
/// facts as the forward; any digest verifies, none is checked).
pub async fn probe(origin: SocketAddr, meta: &JobMeta, length: u64) -> reqwest::Response {
    let path = format!("/v1/jobs/{}/admission", meta.session_id);
    let mut request = reqwest::Client::new()
        .post(format!("http://{origin}{path}"))
        .header(
            dodolens_shared::protocol::HEADER_VIDEO_LENGTH,
            length.to_string(),
        );
    for (name, value) in bodiless_forward_headers(meta, &path, length) {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// The signed head of a forward of `length` bytes, for requests written by hand whose body is
/// never completed.
pub fn forward_head(meta: &JobMeta, length: u64) -> String {
    let path = format!("/v1/jobs/{}", meta.session_id);
    let headers: String = bodiless_forward_headers(meta, &path, length)
        .into_iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    format!("POST {path} HTTP/1.1\r\nhost: origin\r\ncontent-length: {length}\r\n{headers}\r\n")
}

/// A forward whose head is sent and whose body is not (yet): the connection, to write the body
/// into or to close.
pub async fn open_forward(
    origin: SocketAddr,
    meta: &JobMeta,
    length: u64,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(origin).await.unwrap();
    stream
        .write_all(forward_head(meta, length).as_bytes())
        .await
        .unwrap();
    stream
}

/// Reads a response head from a hand-written request: the status and the lowercase headers.
pub async fn read_head(
    stream: &mut tokio::net::TcpStream,
    within: Duration,
) -> (u16, HashMap<String, String>) {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(
                stream.read(&mut byte).await.unwrap(),
                1,
                "connection closed"
            );
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("no response head");
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

/// The origin's Prometheus text, from its operator listener.
pub async fn metrics(origin: &Origin) -> String {
    reqwest::get(format!("http://{}/metrics", origin.ops_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one metric line (`name{labels}` exactly as rendered), 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

pub fn completed(event: &OriginEvent) -> &dodolens_shared::protocol::AnalysisResult {
    match event {
        OriginEvent::Completed { result } => result,
        other => panic!("expected completed, got {other:?}"),
    }
}

pub fn failed(event: &OriginEvent) -> &dodolens_shared::protocol::Failure {
    match event {
        OriginEvent::Failed { error } => error,
        other => panic!("expected failed, got {other:?}"),
    }
}
