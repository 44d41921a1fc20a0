//! Signed events to the edge.
//!
//! Every event goes out as an [`OriginReport`] stamped with the job's forward attempt, so the
//! edge can tell a late event of an earlier forward from one of the job it waits for.
//! Stage and progress events are informative: they go out in order from one task per job, with
//! a couple of quick retries, and are dropped if the edge stays unreachable. When a job has been
//! silent for the heartbeat interval (a long model call), the task sends a `heartbeat`: the edge
//! takes silence for a dead origin and would re-forward the whole video, and a heartbeat only
//! refreshes its watchdog (re-sending the stage would store and broadcast it again). The final event
//! (`completed` or `failed`) must arrive, so it goes through the outbox in the store: a loop
//! takes due entries (leased, so two replicas do not send the same one), posts them, and retries
//! with exponential backoff until the edge answers 2xx, or a status that will never change
//! (401, 404, 409, 410), or the entry's TTL runs out. With Redis, an entry whose replica died is
//! delivered by another one.

use std::{sync::Arc, time::Duration};

use dodolens_shared::{
    protocol::{JobMeta, OriginEvent, OriginReport},
    signing::{self, SignedParts, HEADER_METADATA, HEADER_SIGNATURE, HEADER_TIMESTAMP},
};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::{
    metrics::{label, Metrics},
    store::{OutboxEntry, Store, StoreError},
};

const OUTBOX_POLL: Duration = Duration::from_millis(250);
const OUTBOX_BATCH: usize = 16;

#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// The edge will never accept it (unknown, purged, wrong state, bad signature).
    Refused(u16),
    Retry,
}

pub struct Reporter {
    http: reqwest::Client,
    secret: String,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    outbox_ttl: Duration,
    lease: Duration,
    backoff: Duration,
    backoff_max: Duration,
    heartbeat: Duration,
    wake: Notify,
}

impl Reporter {
    pub fn new(
        cfg: &crate::config::Config,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Reporter {
            http: reqwest::Client::builder()
                .timeout(cfg.callback_timeout)
                .build()?,
            secret: cfg.signing_secret.clone(),
            store,
            metrics,
            outbox_ttl: cfg.outbox_ttl,
            lease: cfg.callback_timeout * 2 + Duration::from_secs(1),
            backoff: cfg.callback_backoff,
            backoff_max: cfg.callback_backoff_max,
            heartbeat: cfg.heartbeat,
            wake: Notify::new(),
        })
    }

    /// Starts the ordered sender of one job's informative events.
    pub fn job(self: &Arc<Self>, meta: &JobMeta) -> JobReporter {
        let (tx, mut rx) = mpsc::unbounded_channel::<OriginEvent>();
        let reporter = Arc::clone(self);
        let url = meta.callback_url.clone();
        let attempt = meta.attempt;
        let heartbeat = self.heartbeat;
        let task = tokio::spawn(async move {
            let mut started = false;
            loop {
                let event = tokio::select! {
                    event = rx.recv() => {
                        let Some(event) = event else { break };
                        started = true;
                        event
                    }
                    _ = tokio::time::sleep(heartbeat), if started => OriginEvent::Heartbeat,
                };
                let Ok(body) = report_body(attempt, event) else {
                    continue;
                };
                for attempt in 0..3u32 {
                    match reporter.post(&url, &body).await {
                        Delivery::Retry if attempt < 2 => {
                            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                        }
                        _ => break,
                    }
                }
            }
        });
        JobReporter { tx, task }
    }

    /// Queues the final event durably and wakes the outbox loop.
    pub async fn finish(&self, meta: &JobMeta, event: &OriginEvent) -> Result<(), StoreError> {
        let entry = OutboxEntry {
            id: format!("{}-{}", meta.session_id, meta.attempt),
            session_id: meta.session_id.clone(),
            callback_url: meta.callback_url.clone(),
            body: report_body(meta.attempt, event.clone())?,
            attempts: 0,
        };
        self.store.outbox_put(&entry, self.outbox_ttl).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Delivers outbox entries until `shutdown`, then makes one last pass.
    pub async fn run_outbox(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            self.deliver_due().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(OUTBOX_POLL) => {}
                _ = shutdown.cancelled() => {
                    self.deliver_due().await;
                    return;
                }
            }
        }
    }

    async fn deliver_due(&self) {
        let due = match self.store.outbox_take_due(self.lease, OUTBOX_BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "outbox unavailable");
                return;
            }
        };
        for mut entry in due {
            let outcome = self.post(&entry.callback_url, &entry.body).await;
            let result = match outcome {
                Delivery::Delivered => self.store.outbox_remove(&entry.id).await,
                Delivery::Refused(status) => {
                    tracing::warn!(session = %entry.session_id, status, "edge refused final event");
                    self.store.outbox_remove(&entry.id).await
                }
                Delivery::Retry => {
                    entry.attempts += 1;
                    let delay = self
                        .backoff
                        .saturating_mul(1 << entry.attempts.min(16) >> 1);
                    tracing::info!(session = %entry.session_id, attempts = entry.attempts, "final event will be retried");
                    self.store
                        .outbox_retry(&entry, delay.min(self.backoff_max))
                        .await
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "outbox update failed");
            }
        }
    }

    /// One signed POST of a JSON event.
    pub async fn post(&self, url: &str, body: &str) -> Delivery {
        let outcome = self.try_post(url, body).await;
        let name = match &outcome {
            Delivery::Delivered => "delivered",
            Delivery::Refused(_) => "refused",
            Delivery::Retry => "retry",
        };
        self.metrics
            .deliveries
            .get_or_create(&label("result", name))
            .inc();
        outcome
    }

    async fn try_post(&self, url: &str, body: &str) -> Delivery {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Delivery::Refused(0);
        };
        let Ok(headers) = signed_headers(&self.secret, parsed.path(), body.as_bytes()) else {
            return Delivery::Refused(0);
        };
        let mut request = self
            .http
            .post(parsed)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        match request.body(body.to_string()).send().await {
            Ok(response) if response.status().is_success() => Delivery::Delivered,
            Ok(response) => match response.status().as_u16() {
                status @ (401 | 404 | 409 | 410) => Delivery::Refused(status),
                _ => Delivery::Retry,
            },
            Err(_) => Delivery::Retry,
        }
    }
}

/// The JSON an event of forward `attempt` is posted as.
pub fn report_body(attempt: u32, event: OriginEvent) -> Result<String, serde_json::Error> {
    serde_json::to_string(&OriginReport { attempt, event })
}

/// The three signature headers for a small JSON body posted to `path`.
pub fn signed_headers(
    secret: &str,
    path: &str,
    body: &[u8],
) -> Result<[(&'static str, String); 3], signing::SignatureError> {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let digest = signing::body_digest(body);
    let signature = signing::sign(
        secret.as_bytes(),
        &SignedParts {
            method: "POST",
            path,
            timestamp,
            content_length: body.len() as u64,
            metadata: &digest,
        },
    )?;
    Ok([
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_METADATA, digest),
        (HEADER_SIGNATURE, signature),
    ])
}

/// The informative events of one job, sent in order by one task.
pub struct JobReporter {
    tx: mpsc::UnboundedSender<OriginEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl JobReporter {
    pub fn send(&self, event: OriginEvent) {
        let _ = self.tx.send(event);
    }

    /// Waits (bounded) for the informative events to go out, so they precede the final one.
    pub async fn flush(self, limit: Duration) {
        drop(self.tx);
        let mut task = self.task;
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            task.abort();
        }
    }
}
