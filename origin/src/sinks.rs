//! The mover's destinations: an Airtable base and a signed webhook.
//!
//! What they receive is the inventory the customer confirmed ([`Sinks::deliver_handoff`]):
//! Airtable gets one record per session (contact, move, totals) and one record per line in a
//! linked table (room, item, quantity, m³, kg, flags, source); the webhook gets the hand-off as
//! JSON, signed. The raw model result is only sent when `DODOLENS_SINK_RAW_RESULT=1`
//! ([`Sinks::deliver`]). Each request is retried with backoff; a sink never holds the customer's
//! result hostage: the pipeline waits a short budget, and what failed becomes a `sink_failed`
//! warning (raw results) or a log line (hand-offs). The mover's CRM is where the confirmed
//! inventory lives: nothing here keeps it.

use std::{sync::Arc, time::Duration};

use dodolens_shared::protocol::{AnalysisResult, Handoff, Inventory, InventoryLine, ItemFlag};
use serde_json::json;

use dodolens_shared::signing::Purpose;

use crate::{
    config::{AirtableConfig, SinkConfig, WebhookConfig},
    metrics::{label, Metrics},
    report::signed_headers,
};

#[derive(Clone)]
pub struct Sinks {
    http: reqwest::Client,
    cfg: SinkConfig,
    metrics: Arc<Metrics>,
}

impl Sinks {
    pub fn new(cfg: &SinkConfig, metrics: Arc<Metrics>) -> Result<Self, reqwest::Error> {
        Ok(Sinks {
            http: reqwest::Client::builder().timeout(cfg.timeout).build()?,
            cfg: cfg.clone(),
            metrics,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.cfg.airtable.is_none() && self.cfg.webhook.is_none()
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
        if let Some(webhook) = self.cfg.webhook.clone() {
            let this = self.clone();
            let body = json!({ "session_id": session_id, "result": result }).to_string();
            pending.push((
                "webhook",
                tokio::spawn(async move { this.webhook(&webhook, body).await }),
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

    /// The confirmed inventory to every sink; names of the sinks that failed after their
    /// retries.
    pub async fn deliver_handoff(&self, handoff: &Handoff) -> Vec<&'static str> {
        let airtable = async {
            match &self.cfg.airtable {
                Some(cfg) => self.airtable_handoff(cfg, handoff).await,
                None => true,
            }
        };
        let webhook = async {
            match &self.cfg.webhook {
                Some(webhook) => {
                    let body = json!({ "type": "handoff", "handoff": handoff }).to_string();
                    self.webhook(webhook, body).await
                }
                None => true,
            }
        };
        let (airtable, webhook) = tokio::join!(airtable, webhook);
        [("airtable", airtable), ("webhook", webhook)]
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(name, _)| name)
            .collect()
    }

    /// The session's record, then its lines (10 per request, Airtable's limit) linked to it.
    async fn airtable_handoff(&self, cfg: &AirtableConfig, handoff: &Handoff) -> bool {
        let Some(record) = self
            .airtable_create(cfg, &cfg.table, vec![session_fields(handoff)])
            .await
        else {
            return false;
        };
        let Some(lines_table) = &cfg.lines_table else {
            return true;
        };
        let Some(id) = record
            .pointer("/records/0/id")
            .and_then(|v| v.as_str())
            .map(String::from)
        else {
            tracing::warn!(sink = "airtable", "record created without an id");
            return false;
        };
        let lines = line_fields(&handoff.inventory, &id);
        for batch in lines.chunks(10) {
            if self
                .airtable_create(cfg, lines_table, batch.to_vec())
                .await
                .is_none()
            {
                return false;
            }
        }
        true
    }

    async fn airtable(&self, cfg: &AirtableConfig, fields: serde_json::Value) -> bool {
        self.airtable_create(cfg, &cfg.table, vec![fields])
            .await
            .is_some()
    }

    /// Creates records in `table`; Airtable's answer (with the new record ids) on success.
    async fn airtable_create(
        &self,
        cfg: &AirtableConfig,
        table: &str,
        records: Vec<serde_json::Value>,
    ) -> Option<serde_json::Value> {
        let url = format!(
            "{}/{}/{}",
            cfg.api_url.trim_end_matches('/'),
            cfg.base,
            table
        );
        let records: Vec<_> = records
            .into_iter()
            .map(|fields| json!({ "fields": fields }))
            .collect();
        let body = json!({ "records": records, "typecast": true }).to_string();
        let response = self
            .retry_response("airtable", || {
                self.http
                    .post(&url)
                    .bearer_auth(&cfg.token)
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        response.json().await.ok()
    }

    /// Signed with the mover's webhook key for [`Purpose::Webhook`]: neither the edge nor the
    /// origin accepts that key or that purpose.
    async fn webhook(&self, webhook: &WebhookConfig, body: String) -> bool {
        let Ok(parsed) = reqwest::Url::parse(&webhook.url) else {
            return false;
        };
        self.retry("webhook", || {
            let mut request = self
                .http
                .post(parsed.clone())
                .header("content-type", "application/json")
                .body(body.clone());
            // Re-signed per attempt so a late retry is not stale.
            let signed = signed_headers(
                &webhook.keys,
                Purpose::Webhook,
                parsed.path(),
                body.as_bytes(),
            );
            if let Ok(headers) = signed {
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
        self.retry_response(name, request).await.is_some()
    }

    async fn retry_response(
        &self,
        name: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Option<reqwest::Response> {
        for attempt in 0..self.cfg.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << attempt.min(6))).await;
            }
            match request().send().await {
                Ok(response) if response.status().is_success() => return Some(response),
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
        None
    }
}

fn airtable_fields(session_id: &str, result: &AnalysisResult) -> serde_json::Value {
    let inv = &result.inventory;
    json!({
        "Session": session_id,
        "Total m3": inv.total_m3,
        "Subtotal m3": inv.subtotal_m3,
        "Margin m3": inv.margin_m3,
        "Items": inv.item_count,
        "Rooms": inv.rooms.len(),
        "Inventory": inventory_text(inv),
        "Warnings": inv.warnings.iter().map(|w| w.message.clone()).collect::<Vec<_>>().join("\n"),
        "Duration s": result.media.duration_s,
        "Cost EUR": result.cost.eur,
        "Simulated": result.simulated,
    })
}

/// The session's record: who to call back, the move, the totals, and the lines as text.
fn session_fields(handoff: &Handoff) -> serde_json::Value {
    let inv = &handoff.inventory;
    let contact = &handoff.contact;
    let flagged: Vec<String> = inv
        .flagged
        .iter()
        .map(|f| {
            format!(
                "{} — {} × {} ({})",
                f.room,
                f.quantity,
                f.label,
                flags_text(&f.flags)
            )
        })
        .collect();
    json!({
        "Session": handoff.session_id,
        "Revision": handoff.revision,
        "Confirmed at": handoff.confirmed_at,
        "Name": contact.name,
        "Email": contact.email,
        "Phone": contact.phone,
        "Move date": contact.move_date,
        "From postcode": contact.from_postcode,
        "To postcode": contact.to_postcode,
        "Total m3": inv.total_m3,
        "Subtotal m3": inv.subtotal_m3,
        "Margin m3": inv.margin_m3,
        "Total kg": inv.total_weight_kg,
        "Items": inv.item_count,
        "Rooms": inv.rooms.len(),
        "Flagged": flagged.join("\n"),
        "Inventory": inventory_text(inv),
    })
}

/// One record per line, linked to the session's record `session`.
fn line_fields(inv: &Inventory, session: &str) -> Vec<serde_json::Value> {
    inv.rooms
        .iter()
        .flat_map(|room| {
            room.lines.iter().map(move |line: &InventoryLine| {
                json!({
                    "Session": [session],
                    "Room": room.room,
                    "Item": line.label,
                    "Key": line.key,
                    "Quantity": line.quantity,
                    "Unit m3": line.unit_volume_m3,
                    "m3": line.volume_m3,
                    "kg": line.weight_kg,
                    "Flags": flags_text(&line.flags),
                    "Source": line.source,
                })
            })
        })
        .collect()
}

fn flags_text(flags: &[ItemFlag]) -> String {
    flags
        .iter()
        .map(|flag| match flag {
            ItemFlag::Fragile => "fragile",
            ItemFlag::Disassembly => "disassembly",
            ItemFlag::Heavy => "heavy",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn inventory_text(inv: &Inventory) -> String {
    inv.rooms
        .iter()
        .flat_map(|room| {
            room.lines.iter().map(move |l| {
                format!(
                    "{} — {} × {} = {:.2} m³",
                    room.room, l.quantity, l.label, l.volume_m3
                )
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}
