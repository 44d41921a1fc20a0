//! Job state behind one trait: dedupe, status, cancellation, final events, outbox, the model
//! budget and spending counters.
//!
//! One origin keeps it in memory; several replicas share it through Redis, so a job forwarded
//! to two replicas runs once, the model budget is the cluster's, and a final event whose
//! replica died is still delivered by another. CPU slots and memory are per replica and live
//! in [`crate::admission`], not here. Every key carries a TTL: a crash never leaves state
//! behind for longer than the job could have lived.

mod lease;
mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{config::ModelBudget, model_budget::Draw};

pub use self::lease::Lease;
pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("corrupt entry: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// How a job ended, remembered for the dedupe window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed {
        retryable: bool,
    },
    /// The edge cancelled it (the user deleted the upload): never run again.
    Cancelled,
}

/// What the store remembers about a job id. Encoded as a short string so Redis scripts and the
/// memory store apply the same rule ([`may_run`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobMark {
    Running { attempt: u32 },
    Ended { attempt: u32, outcome: Outcome },
}

impl JobMark {
    /// The forward attempt this job runs or ran for.
    pub fn attempt(self) -> u32 {
        match self {
            JobMark::Running { attempt } | JobMark::Ended { attempt, .. } => attempt,
        }
    }

    pub fn encode(self) -> String {
        match self {
            JobMark::Running { attempt } => format!("running:{attempt}"),
            JobMark::Ended {
                attempt,
                outcome: Outcome::Completed,
            } => format!("completed:{attempt}"),
            JobMark::Ended {
                attempt,
                outcome: Outcome::Failed { retryable: true },
            } => {
                format!("retryable:{attempt}")
            }
            JobMark::Ended {
                attempt,
                outcome: Outcome::Failed { retryable: false },
            } => {
                format!("failed:{attempt}")
            }
            JobMark::Ended {
                attempt,
                outcome: Outcome::Cancelled,
            } => format!("cancelled:{attempt}"),
        }
    }

    pub fn decode(text: &str) -> Option<JobMark> {
        let (kind, attempt) = text.split_once(':')?;
        let attempt = attempt.parse().ok()?;
        Some(match kind {
            "running" => JobMark::Running { attempt },
            "completed" => JobMark::Ended {
                attempt,
                outcome: Outcome::Completed,
            },
            "retryable" => JobMark::Ended {
                attempt,
                outcome: Outcome::Failed { retryable: true },
            },
            "failed" => JobMark::Ended {
                attempt,
                outcome: Outcome::Failed { retryable: false },
            },
            "cancelled" => JobMark::Ended {
                attempt,
                outcome: Outcome::Cancelled,
            },
            _ => return None,
        })
    }
}

/// A forward runs unless the same id is running or ended — except that a newer attempt after a
/// retryable failure is the user pressing "Réessayer", which must run.
pub fn may_run(existing: Option<JobMark>, attempt: u32) -> bool {
    match existing {
        None => true,
        Some(JobMark::Ended {
            attempt: previous,
            outcome: Outcome::Failed { retryable: true },
        }) => attempt > previous,
        Some(_) => false,
    }
}

/// A final event waiting to be delivered to the edge.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutboxEntry {
    pub id: String,
    pub session_id: String,
    pub callback_url: String,
    /// The serialised `OriginEvent`: an inventory or a failure, never media or transcript.
    pub body: String,
    pub attempts: u32,
}

impl OutboxEntry {
    /// One entry per forward attempt: a re-send for a newer attempt does not replace an older
    /// one still being delivered.
    pub fn id_for(session_id: &str, attempt: u32) -> String {
        format!("{session_id}-{attempt}")
    }
}

/// The end of a job, written in one atomic step: the final event goes into the outbox and is
/// kept for re-sends, and only then (in the same step) the job counts as finished.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalRecord {
    pub job_id: String,
    pub mark: JobMark,
    pub entry: OutboxEntry,
}

/// Lifetimes of what [`Store::record_final`] writes.
#[derive(Clone, Copy, Debug)]
pub struct FinalTtls {
    /// The job mark and the kept final event (the dedupe window).
    pub done: Duration,
    /// The outbox entry (how long delivery is retried).
    pub outbox: Duration,
    /// The recording replica delivers it itself first; others take it over after this.
    pub lease: Duration,
}

/// The outcome of [`Store::claim_job`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This forward runs the job.
    Won,
    /// Running or ended already (the mark, when it could be read).
    Taken(Option<JobMark>),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Atomically claims `id` for `attempt` if [`may_run`] allows it; the claim is a lease of
    /// `ttl`, renewed with [`Store::renew_job`] while the job lives.
    async fn claim_job(&self, id: &str, attempt: u32, ttl: Duration) -> Result<Claim, StoreError>;
    /// Extends the claim of a running job (only if it is still `running:attempt`).
    async fn renew_job(&self, id: &str, attempt: u32, ttl: Duration) -> Result<(), StoreError>;
    /// Forgets a claim whose job never started (refused at intake).
    async fn release_job(&self, id: &str) -> Result<(), StoreError>;
    /// The job's end in one atomic step: outbox entry, kept final event, job mark; deletes its
    /// status. Idempotent (re-written after a store lost its data); never overwrites the mark of
    /// a newer attempt.
    async fn record_final(&self, record: &FinalRecord, ttls: FinalTtls) -> Result<(), StoreError>;
    /// The final event kept for a finished job, to re-send on a duplicate forward.
    async fn final_event(&self, id: &str) -> Result<Option<String>, StoreError>;
    async fn job_mark(&self, id: &str) -> Result<Option<JobMark>, StoreError>;
    /// The end of a cancelled job: its mark for `ttl`, its status deleted, no final event.
    async fn record_cancelled(
        &self,
        id: &str,
        mark: JobMark,
        ttl: Duration,
    ) -> Result<(), StoreError>;
    /// Records for `ttl` that the edge cancelled `id`: the replica running it stops, and a late
    /// forward of it is refused.
    async fn cancel_job(&self, id: &str, ttl: Duration) -> Result<(), StoreError>;
    async fn is_cancelled(&self, id: &str) -> Result<bool, StoreError>;
    /// The current stage of a running job, for operators.
    async fn set_status(&self, id: &str, status: &str, ttl: Duration) -> Result<(), StoreError>;
    async fn status(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Reserves `draw` as `member` in the cluster's one-minute model budget
    /// ([`crate::model_model_budget::decide`]); `Err(wait)` when it does not fit.
    async fn take_model_budget(
        &self,
        member: &str,
        draw: Draw,
        limits: ModelBudget,
    ) -> Result<Result<(), Duration>, StoreError>;
    /// Queues an entry, due now (a re-send on a duplicate forward).
    async fn outbox_put(&self, entry: &OutboxEntry, ttl: Duration) -> Result<(), StoreError>;
    /// Entries due now, each leased for `lease` so another replica does not send it at once.
    async fn outbox_take_due(
        &self,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Puts an entry back with its attempt count, due after `delay`.
    async fn outbox_retry(&self, entry: &OutboxEntry, delay: Duration) -> Result<(), StoreError>;
    async fn outbox_remove(&self, id: &str) -> Result<(), StoreError>;
    /// Adds `micro_eur` to the spending counter `window`, which expires `ttl` after creation.
    async fn add_spend(
        &self,
        window: &str,
        micro_eur: u64,
        ttl: Duration,
    ) -> Result<(), StoreError>;
    /// The spending counters `windows` (0 for one that does not exist).
    async fn spent(&self, windows: &[&str]) -> Result<Vec<u64>, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip() {
        for mark in [
            JobMark::Running { attempt: 1 },
            JobMark::Ended {
                attempt: 2,
                outcome: Outcome::Completed,
            },
            JobMark::Ended {
                attempt: 3,
                outcome: Outcome::Failed { retryable: true },
            },
            JobMark::Ended {
                attempt: 4,
                outcome: Outcome::Failed { retryable: false },
            },
            JobMark::Ended {
                attempt: 5,
                outcome: Outcome::Cancelled,
            },
        ] {
            assert_eq!(JobMark::decode(&mark.encode()), Some(mark));
        }
        assert_eq!(JobMark::decode("weird"), None);
    }

    #[test]
    fn only_a_newer_attempt_after_a_retryable_failure_runs_again() {
        assert!(may_run(None, 1));
        assert!(!may_run(Some(JobMark::Running { attempt: 1 }), 2));
        assert!(!may_run(
            Some(JobMark::Ended {
                attempt: 1,
                outcome: Outcome::Completed
            }),
            2
        ));
        let retryable = JobMark::Ended {
            attempt: 1,
            outcome: Outcome::Failed { retryable: true },
        };
        assert!(may_run(Some(retryable), 2));
        assert!(!may_run(Some(retryable), 1));
        let fatal = JobMark::Ended {
            attempt: 1,
            outcome: Outcome::Failed { retryable: false },
        };
        assert!(!may_run(Some(fatal), 2));
        let cancelled = JobMark::Ended {
            attempt: 1,
            outcome: Outcome::Cancelled,
        };
        assert!(!may_run(Some(cancelled), 2));
    }
}
