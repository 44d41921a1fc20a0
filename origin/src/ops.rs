//! Operator endpoints: liveness, readiness (can this replica do a job right now?) and metrics.
//!
//! `/readyz` and `/metrics` are served on the operator listener only (`DODOLENS_OPS_BIND`,
//! loopback by default): readiness runs ffmpeg and ffprobe, and metrics show what is spent, so
//! neither belongs on the listener the internet reaches. The ffmpeg check is cached for
//! `DODOLENS_READY_CACHE_S`, so a probe storm runs it at most once per period.

use std::{
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;
use tokio::{process::Command, sync::Mutex};

use crate::{config::FfmpegConfig, metrics::Metrics, AppState};

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "ok": true }))
}

/// The last ffmpeg/ffprobe check and when it ran; one check at a time.
pub struct Readiness {
    ttl: Duration,
    last: Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    pub fn new(ttl: Duration) -> Self {
        Readiness {
            ttl,
            last: Mutex::new(None),
        }
    }

    /// Whether ffmpeg and ffprobe run, checked again only once the cached answer is `ttl` old.
    async fn media_tools(&self, cfg: &FfmpegConfig, metrics: &Metrics) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last {
            if at.elapsed() < self.ttl {
                return ok;
            }
        }
        metrics.readiness_checks.inc();
        let ok = runs(&cfg.ffmpeg_bin).await && runs(&cfg.ffprobe_bin).await;
        *last = Some((Instant::now(), ok));
        ok
    }
}

/// Ready when ffmpeg and ffprobe run, the store answers and the origin accepts jobs.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let ffmpeg = state
        .readiness
        .media_tools(&state.cfg.ffmpeg, &state.metrics)
        .await;
    let store = tokio::time::timeout(Duration::from_secs(2), state.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let accepting = !state.shutdown.is_cancelled();
    let ready = ffmpeg && store && accepting;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "ffmpeg": ffmpeg,
        "store": if state.cfg.redis_url.is_some() { "redis" } else { "memory" },
        "store_ok": store,
        "accepting": accepting,
    });
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let usage = state.admission.usage();
    let metrics = &state.metrics;
    metrics.video_bytes_held.set(usage.bytes as i64);
    metrics.outbox_held.set(state.outbox.held() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn runs(bin: &str) -> bool {
    let status = Command::new(bin)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    matches!(tokio::time::timeout(Duration::from_secs(2), status).await, Ok(Ok(s)) if s.success())
}
