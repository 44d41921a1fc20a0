//! DodoLens origin service.

use axum::{routing::get, Json, Router};

pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { Json(serde_json::json!({"ok": true})) }))
}
