//! Final events (`completed`, `failed`) reach the edge, whatever fails on the way.
//!
//! A job's end is handed to [`Outbox::finish`]: the record is first held in this process, then
//! written to the store in one atomic step (outbox entry + kept final event + job mark: the job
//! counts as finished only once its event is recorded). The process copy is what makes it
//! survive the store: while Redis is paused or unreachable, operations time out and are retried
//! on the next pass; if Redis lost its data (killed and restarted), every delivery attempt
//! writes the record again. Delivery itself goes from the process copy, so a paused Redis does
//! not delay a result the edge can take.
//!
//! Each attempt POSTs the event and classifies the edge's answer with the shared classifier:
//! accepted → done; permanent (400, 401, 404, 410 = session gone, …) → dropped at once; busy or
//! transient → exponential backoff (honouring the edge's Retry-After), until the outbox TTL.
//! While a replica holds a record it keeps the store entry leased to itself; if the replica dies
//! the lease runs out and another replica takes the entry from the store and delivers it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use dodolens_shared::answer::Answer;
use futures_util::future::join_all;
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    report::Reporter,
    store::{FinalRecord, FinalTtls, OutboxEntry, Store},
};

const POLL: Duration = Duration::from_millis(250);
const BATCH: usize = 16;

pub struct Outbox {
    store: Arc<dyn Store>,
    reporter: Arc<Reporter>,
    ttls: FinalTtls,
    backoff: Duration,
    backoff_max: Duration,
    held: Mutex<HashMap<String, Held>>,
    wake: Notify,
}

/// A final record this process is responsible for.
#[derive(Clone)]
struct Held {
    record: FinalRecord,
    due: Instant,
    expires: Instant,
    /// The edge has it; only the store still needs the record (mark) and the entry removed.
    delivered: bool,
}

/// What one pass did with a held record.
enum Step {
    Done,
    Keep(Held),
}

impl Outbox {
    pub fn new(
        cfg: &crate::config::Config,
        store: Arc<dyn Store>,
        reporter: Arc<Reporter>,
    ) -> Self {
        Outbox {
            store,
            reporter,
            ttls: FinalTtls {
                done: cfg.done_ttl,
                outbox: cfg.outbox_ttl,
                lease: cfg.callback_timeout * 2 + Duration::from_secs(1),
            },
            backoff: cfg.callback_backoff,
            backoff_max: cfg.callback_backoff_max,
            held: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    /// Takes responsibility for a job's final record: held here first, then (in the delivery
    /// loop) recorded in the store, retried until it is, and delivered until the edge
    /// acknowledges it.
    pub async fn finish(&self, record: FinalRecord) {
        let now = Instant::now();
        let held = Held {
            due: now,
            expires: now + self.ttls.outbox,
            delivered: false,
            record,
        };
        let id = held.record.entry.id.clone();
        self.held.lock().unwrap().insert(id, held);
        self.wake.notify_one();
    }

    /// Final records this process still holds (for residue checks and metrics).
    pub fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Delivers until `shutdown`, then makes one last pass. What this process holds and what
    /// it takes over from the store go in two loops, so a store that does not answer never
    /// delays a result this process has.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let held = async {
            loop {
                self.pass().await;
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.cancelled() => return self.pass().await,
                }
            }
        };
        let taken = async {
            loop {
                self.take_over().await;
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.cancelled() => return self.take_over().await,
                }
            }
        };
        tokio::join!(held, taken);
    }

    /// One attempt for every held record that is due.
    async fn pass(&self) {
        let now = Instant::now();
        let due: Vec<Held> = {
            let held = self.held.lock().unwrap();
            held.values().filter(|h| h.due <= now).cloned().collect()
        };
        let steps = join_all(due.into_iter().map(|h| self.step(h))).await;
        {
            let mut held = self.held.lock().unwrap();
            for step in steps {
                match step {
                    (id, Step::Done) => {
                        held.remove(&id);
                    }
                    (id, Step::Keep(h)) => {
                        held.insert(id, h);
                    }
                }
            }
        }
    }

    /// One attempt for a held record: (re-)record it, post it, settle the store.
    async fn step(&self, mut held: Held) -> (String, Step) {
        let id = held.record.entry.id.clone();
        let now = Instant::now();
        if now >= held.expires {
            tracing::warn!(session = %short(&held.record.job_id), "final event undeliverable until its TTL; dropped");
            let _ = self.store.outbox_remove(&id).await;
            return (id, Step::Done);
        }
        if !held.delivered {
            let delay = self.delay(held.record.entry.attempts + 1, None);
            // Recording (which also renews this replica's lease past the next attempt and
            // re-writes a record the store lost) and posting are independent: a store that
            // does not answer does not delay the edge.
            let (recorded, answer) = tokio::join!(
                self.record(&held.record, delay),
                self.reporter.post_final(&held.record.entry)
            );
            if let Err(e) = recorded {
                tracing::warn!(session = %short(&held.record.job_id), error = %e, "store unavailable; final event kept in process");
            }
            match answer {
                Answer::Accepted => held.delivered = true,
                Answer::Permanent => {
                    tracing::warn!(session = %short(&held.record.job_id), "edge refused the final event for good; dropped");
                    held.delivered = true;
                }
                Answer::Busy { retry_after_ms } => return (id, self.later(held, retry_after_ms)),
                Answer::Transient => return (id, self.later(held, None)),
            }
        }
        // Delivered: the store needs the record (the job's mark) and no entry left to send.
        let settled = async {
            self.record(&held.record, self.ttls.lease).await?;
            self.store.outbox_remove(&id).await
        };
        match settled.await {
            Ok(()) => (id, Step::Done),
            Err(e) => {
                tracing::warn!(session = %short(&held.record.job_id), error = %e, "delivered; store update retried");
                held.due = Instant::now() + self.backoff;
                (id, Step::Keep(held))
            }
        }
    }

    fn later(&self, mut held: Held, retry_after_ms: Option<u64>) -> Step {
        held.record.entry.attempts += 1;
        let delay = self.delay(held.record.entry.attempts, retry_after_ms);
        tracing::info!(session = %short(&held.record.job_id), attempts = held.record.entry.attempts, ms = delay.as_millis() as u64, "final event will be retried");
        held.due = Instant::now() + delay;
        Step::Keep(held)
    }

    /// Exponential backoff from the configured first delay, capped; the edge's Retry-After
    /// wins when it asks for longer.
    fn delay(&self, attempts: u32, retry_after_ms: Option<u64>) -> Duration {
        let backoff = self
            .backoff
            .saturating_mul(1 << attempts.min(16) >> 1)
            .min(self.backoff_max);
        backoff.max(Duration::from_millis(retry_after_ms.unwrap_or(0)))
    }

    async fn record(
        &self,
        record: &FinalRecord,
        until_next: Duration,
    ) -> Result<(), crate::store::StoreError> {
        let ttls = FinalTtls {
            lease: self.ttls.lease + until_next,
            ..self.ttls
        };
        self.store.record_final(record, ttls).await
    }

    /// Entries in the store that no live replica holds (their replica died, or a duplicate
    /// forward on a replica that then died queued them).
    async fn take_over(&self) {
        let due = match self.store.outbox_take_due(self.ttls.lease, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "outbox unavailable");
                return;
            }
        };
        let ours: Vec<String> = self.held.lock().unwrap().keys().cloned().collect();
        let foreign = due.into_iter().filter(|e| !ours.contains(&e.id));
        join_all(foreign.map(|entry| self.deliver_foreign(entry))).await;
    }

    async fn deliver_foreign(&self, mut entry: OutboxEntry) {
        let result = match self.reporter.post_final(&entry).await {
            Answer::Accepted => self.store.outbox_remove(&entry.id).await,
            Answer::Permanent => {
                tracing::warn!(session = %short(&entry.session_id), "edge refused the final event for good; dropped");
                self.store.outbox_remove(&entry.id).await
            }
            Answer::Busy { retry_after_ms } => {
                entry.attempts += 1;
                let delay = self.delay(entry.attempts, retry_after_ms);
                self.store.outbox_retry(&entry, delay).await
            }
            Answer::Transient => {
                entry.attempts += 1;
                let delay = self.delay(entry.attempts, None);
                self.store.outbox_retry(&entry, delay).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "outbox update failed");
        }
    }
}

fn short(id: &str) -> &str {
    crate::intake::short(id)
}
