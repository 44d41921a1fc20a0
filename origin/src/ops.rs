//! Operator endpoints: liveness, readiness (can this replica do a job right now?) and metrics.

use std::{process::Stdio, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;
use tokio::process::Command;

use crate::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "ok": true }))
}

/// Ready when ffmpeg and ffprobe run and the store answers.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let ffmpeg =
        runs(&state.cfg.ffmpeg.ffmpeg_bin).await && runs(&state.cfg.ffmpeg.ffprobe_bin).await;
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
