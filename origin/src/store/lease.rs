//! A running job's claim is a lease, renewed while the job lives.
//!
//! If the replica running a job dies, its claim must not keep answering re-forwards "duplicate"
//! for the whole job timeout: the claim expires within one lease, so the edge's next re-forward
//! runs the job on a live replica. Renewals that fail (Redis paused) are simply tried again at
//! the next tick.

use std::{sync::Arc, time::Duration};

use super::Store;

/// Renews `running:attempt` of a job every third of `ttl` until dropped.
pub struct Lease {
    task: tokio::task::JoinHandle<()>,
}

impl Lease {
    pub fn start(store: Arc<dyn Store>, id: String, attempt: u32, ttl: Duration) -> Lease {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(ttl / 3);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = store.renew_job(&id, attempt, ttl).await {
                    tracing::warn!(error = %e, "job claim not renewed; retried at the next tick");
                }
            }
        });
        Lease { task }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.task.abort();
    }
}
