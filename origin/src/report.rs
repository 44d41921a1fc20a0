//! Signed events to the edge.
//!
//! Every event goes out as an [`OriginReport`] stamped with the job's forward attempt, so the
//! edge can tell a late event of an earlier forward from one of the job it waits for.
//! Stage and progress events are informative: they go out in order from one task per job, with
//! a couple of quick retries, and are dropped if the edge stays unreachable. When a job has been
//! silent for the heartbeat interval (a long model call), the task sends a `heartbeat`: the edge
//! takes silence for a dead origin and would re-forward the whole video, and a heartbeat only
//! refreshes its watchdog (re-sending the stage would store and broadcast it again). The final event
//! (`completed` or `failed`) must arrive: it goes through [`crate::outbox`], which posts it with
//! [`Reporter::post_final`].

use std::{sync::Arc, time::Duration};

use dodolens_shared::{
    answer::{self, Answer},
    protocol::{JobMeta, OriginEvent, OriginReport},
    signing::{
        self, Keyring, Purpose, SignedParts, HEADER_METADATA, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    },
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    metrics::{label, Metrics},
    store::OutboxEntry,
};

pub struct Reporter {
    http: reqwest::Client,
    keys: Keyring,
    metrics: Arc<Metrics>,
    heartbeat: Duration,
}

impl Reporter {
    pub fn new(cfg: &crate::config::Config, metrics: Arc<Metrics>) -> Result<Self, reqwest::Error> {
        Ok(Reporter {
            http: reqwest::Client::builder()
                .timeout(cfg.callback_timeout)
                .build()?,
            keys: cfg.signing.clone(),
            metrics,
            heartbeat: cfg.heartbeat,
        })
    }

    /// Starts the ordered sender of one job's informative events. An event the edge answers
    /// 404 or 410 means the session is gone: `stop` is cancelled, which ends the job.
    pub fn job(self: &Arc<Self>, meta: &JobMeta, stop: CancellationToken) -> JobReporter {
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
                    match reporter.post_status(&url, &body).await {
                        (Answer::Busy { .. } | Answer::Transient, _) if attempt < 2 => {
                            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                        }
                        (_, Some(404 | 410)) => {
                            stop.cancel();
                            return;
                        }
                        _ => break,
                    }
                }
            }
        });
        JobReporter { tx, task }
    }

    /// Posts a final event from the outbox once.
    pub async fn post_final(&self, entry: &OutboxEntry) -> Answer {
        self.post(&entry.callback_url, &entry.body).await
    }

    /// One signed POST of a JSON event, its answer classified by the shared rule.
    pub async fn post(&self, url: &str, body: &str) -> Answer {
        self.post_status(url, body).await.0
    }

    /// [`Reporter::post`], with the HTTP status when there was one.
    async fn post_status(&self, url: &str, body: &str) -> (Answer, Option<u16>) {
        let (outcome, status) = self.try_post(url, body).await;
        let name = match &outcome {
            Answer::Accepted => "delivered",
            Answer::Permanent => "refused",
            Answer::Busy { .. } | Answer::Transient => "retry",
        };
        self.metrics
            .deliveries
            .get_or_create(&label("result", name))
            .inc();
        (outcome, status)
    }

    async fn try_post(&self, url: &str, body: &str) -> (Answer, Option<u16>) {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return (Answer::Permanent, None);
        };
        let Ok(headers) = signed_headers(
            &self.keys,
            Purpose::OriginEvent,
            parsed.path(),
            body.as_bytes(),
        ) else {
            return (Answer::Permanent, None);
        };
        let mut request = self
            .http
            .post(parsed)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        match request.body(body.to_string()).send().await {
            Ok(response) => {
                let retry_after = response.headers().get(reqwest::header::RETRY_AFTER);
                let retry_after_ms =
                    answer::retry_after_ms(retry_after.and_then(|v| v.to_str().ok()));
                let status = response.status().as_u16();
                (answer::classify(Some(status), retry_after_ms), Some(status))
            }
            Err(_) => (answer::classify(None, None), None),
        }
    }
}

/// The JSON an event of forward `attempt` is posted as.
pub fn report_body(attempt: u32, event: OriginEvent) -> Result<String, serde_json::Error> {
    serde_json::to_string(&OriginReport { attempt, event })
}

/// The three signature headers for a small JSON body posted to `path` for `purpose`.
pub fn signed_headers(
    keys: &Keyring,
    purpose: Purpose,
    path: &str,
    body: &[u8],
) -> Result<[(&'static str, String); 3], signing::SignatureError> {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let digest = signing::body_digest(body);
    let signature = keys.sign(&SignedParts::new(
        purpose,
        "POST",
        path,
        timestamp,
        body.len() as u64,
        &digest,
    ))?;
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

    /// Stops sending at once (the job was cancelled).
    pub fn abort(self) {
        self.task.abort();
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
