//! Optional destinations for finished analyses: an Airtable table (one record per analysis) and
//! a signed webhook. They are conveniences for the mover's back office, so they never hold the
//! user's result hostage: each is retried with backoff in the background, the pipeline waits a
//! short budget for them, and whatever failed by then becomes a `sink_failed` warning.

use std::{sync::Arc, time::Duration};

use dodolens_shared::protocol::AnalysisResult;
use serde_json::json;

use crate::{
    config::{AirtableConfig, SinkConfig},
    metrics::{label, Metrics},
    report::signed_headers,
};

#[derive(Clone)]
pub struct Sinks {
    http: reqwest::Client,
    cfg: SinkConfig,
    secret: String,
    metrics: Arc<Metrics>,
}

impl Sinks {
    pub fn new(
        cfg: &SinkConfig,
        secret: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Sinks {
            http: reqwest::Client::builder().timeout(cfg.timeout).build()?,
            cfg: cfg.clone(),
            secret: secret.to_string(),
            metrics,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.cfg.airtable.is_none() && self.cfg.webhook_url.is_none()
    }

    /// Names of the sinks that had not succeeded within `budget`. Retries continue in the
    /// background after the budget.
    pub async fn deliver(
        &self,
        session_id: &str,
        result: &AnalysisResult,
        budget: Duration,
    ) -> Vec<&'static str> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut pending = Vec::new();
        if let Some(airtable) = self.cfg.airtable.clone() {
            let this = self.clone();
            let fields = airtable_fields(session_id, result);
            pending.push((
                "airtable",
                tokio::spawn(async move { this.airtable(&airtable, fields).await }),
            ));
        }
        if let Some(url) = self.cfg.webhook_url.clone() {
            let this = self.clone();
            let body = json!({ "session_id": session_id, "result": result }).to_string();
            pending.push((
                "webhook",
                tokio::spawn(async move { this.webhook(&url, body).await }),
            ));
        }
        let deadline = tokio::time::Instant::now() + budget;
        let mut failed = Vec::new();
        for (name, task) in pending {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(true)) => {}
                _ => failed.push(name),
            }
        }
        failed
    }

    async fn airtable(&self, cfg: &AirtableConfig, fields: serde_json::Value) -> bool {
        let url = format!(
            "{}/{}/{}",
            cfg.api_url.trim_end_matches('/'),
            cfg.base,
            cfg.table
        );
        let body = json!({ "records": [{ "fields": fields }], "typecast": true }).to_string();
        self.retry("airtable", || {
            self.http
                .post(&url)
                .bearer_auth(&cfg.token)
                .header("content-type", "application/json")
                .body(body.clone())
        })
        .await
    }

    async fn webhook(&self, url: &str, body: String) -> bool {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return false;
        };
        self.retry("webhook", || {
            let mut request = self
                .http
                .post(parsed.clone())
                .header("content-type", "application/json")
                .body(body.clone());
            // Re-signed per attempt so a late retry is not stale.
            if let Ok(headers) = signed_headers(&self.secret, parsed.path(), body.as_bytes()) {
                for (name, value) in headers {
                    request = request.header(name, value);
                }
            }
            request
        })
        .await
    }

    async fn retry(
        &self,
        name: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> bool {
        for attempt in 0..self.cfg.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << attempt.min(6))).await;
            }
            match request().send().await {
                Ok(response) if response.status().is_success() => return true,
                Ok(response) if response.status().is_client_error() && response.status() != 429 => {
                    break;
                }
                _ => {}
            }
        }
        self.metrics
            .sink_failures
            .get_or_create(&label("sink", name))
            .inc();
        tracing::warn!(sink = name, "result sink failed");
        false
    }
}

fn airtable_fields(session_id: &str, result: &AnalysisResult) -> serde_json::Value {
    let inv = &result.inventory;
    let lines: Vec<String> = inv
        .rooms
        .iter()
        .flat_map(|room| {
            room.lines.iter().map(move |l| {
                format!(
                    "{} — {} × {} = {:.2} m³",
                    room.room, l.quantity, l.label, l.volume_m3
                )
            })
        })
        .collect();
    json!({
        "Session": session_id,
        "Total m3": inv.total_m3,
        "Subtotal m3": inv.subtotal_m3,
        "Margin m3": inv.margin_m3,
        "Items": inv.item_count,
        "Rooms": inv.rooms.len(),
        "Inventory": lines.join("\n"),
        "Warnings": inv.warnings.iter().map(|w| w.message.clone()).collect::<Vec<_>>().join("\n"),
        "Duration s": result.media.duration_s,
        "Cost EUR": result.cost.eur,
        "Simulated": result.simulated,
    })
}
