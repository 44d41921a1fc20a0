//! This replica's capacity: CPU slots and a memory budget for the videos it holds.
//!
//! Each replica admits by its own resources, so adding a replica adds capacity (the cluster-wide
//! limit is the model budget, in [`crate::model_budget`]). A forward is admitted when a slot is free
//! and its `Content-Length` fits in what remains of the memory budget — decided from the headers,
//! before a byte of body is read. The [`Permit`] it gets back holds both: the video's bytes until
//! the pipeline drops the video (after extraction), the slot until the job ends.
//!
//! A refusal says when to come back: an estimate from the durations measured on this replica
//! (moving averages of whole jobs and of video holds), not a constant. Until a job has been
//! measured, the configured prior stands in for both.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Weight of the newest measurement in the moving averages.
const SMOOTHING: f64 = 0.3;
/// A job past its expected duration is still expected to need this fraction of it.
const OVERRUN_FRACTION: f64 = 0.25;

/// Which resource refused a forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusyReason {
    Slots,
    Memory,
    ModelBudget,
}

impl BusyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BusyReason::Slots => "slots",
            BusyReason::Memory => "memory",
            BusyReason::ModelBudget => "model_budget",
        }
    }
}

/// A refusal and the estimated wait before the same forward would be admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy {
    pub reason: BusyReason,
    pub retry_after: Duration,
}

pub struct Admission {
    slots: usize,
    budget: u64,
    prior: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    jobs: HashMap<u64, Held>,
    job_secs: Option<f64>,
    hold_secs: Option<f64>,
}

struct Held {
    since: Instant,
    /// Video bytes still held; 0 once the pipeline dropped the video.
    bytes: u64,
}

/// What is in use right now on this replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub jobs: usize,
    pub bytes: u64,
}

impl Admission {
    pub fn new(slots: u32, budget: u64, prior: Duration) -> Arc<Self> {
        Arc::new(Admission {
            slots: slots as usize,
            budget,
            prior,
            state: Mutex::new(State::default()),
        })
    }

    /// Takes a slot and `bytes` of the memory budget, or says when to come back.
    pub fn admit(self: &Arc<Self>, bytes: u64) -> Result<Permit, Busy> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        self.refusal(&state, bytes, now).map_or(Ok(()), Err)?;
        let id = state.next_id;
        state.next_id += 1;
        state.jobs.insert(id, Held { since: now, bytes });
        Ok(Permit {
            admission: Arc::clone(self),
            id,
        })
    }

    /// Whether a forward of `bytes` would be admitted now, taking nothing: the answer to the
    /// edge's body-less probe, so a queued session does not send its video only to be refused.
    pub fn check(&self, bytes: u64) -> Result<(), Busy> {
        let state = self.state.lock().unwrap();
        self.refusal(&state, bytes, Instant::now())
            .map_or(Ok(()), Err)
    }

    fn refusal(&self, state: &State, bytes: u64, now: Instant) -> Option<Busy> {
        let held: u64 = state.jobs.values().map(|h| h.bytes).sum();
        if state.jobs.len() >= self.slots {
            let job = state.job_secs.unwrap_or(self.prior.as_secs_f64());
            let remaining: Vec<f64> = state
                .jobs
                .values()
                .map(|h| remaining(job, h.since, now))
                .collect();
            return Some(Busy {
                reason: BusyReason::Slots,
                retry_after: secs(first_release(&remaining)),
            });
        }
        if held + bytes > self.budget {
            let hold = state.hold_secs.unwrap_or(self.prior.as_secs_f64());
            let holders: Vec<(f64, u64)> = state
                .jobs
                .values()
                .filter(|h| h.bytes > 0)
                .map(|h| (remaining(hold, h.since, now), h.bytes))
                .collect();
            let wait = memory_release(self.budget - held, bytes, holders);
            return Some(Busy {
                reason: BusyReason::Memory,
                retry_after: secs(wait),
            });
        }
        None
    }

    pub fn usage(&self) -> Usage {
        let state = self.state.lock().unwrap();
        Usage {
            jobs: state.jobs.len(),
            bytes: state.jobs.values().map(|h| h.bytes).sum(),
        }
    }

    fn release_video(&self, id: u64) {
        let mut state = self.state.lock().unwrap();
        let Some(held) = state.jobs.get_mut(&id) else {
            return;
        };
        if held.bytes == 0 {
            return;
        }
        held.bytes = 0;
        let took = held.since.elapsed().as_secs_f64();
        state.hold_secs = Some(average(state.hold_secs, took));
    }

    fn release_slot(&self, id: u64) {
        let mut state = self.state.lock().unwrap();
        if let Some(held) = state.jobs.remove(&id) {
            let took = held.since.elapsed().as_secs_f64();
            if held.bytes > 0 {
                state.hold_secs = Some(average(state.hold_secs, took));
            }
            state.job_secs = Some(average(state.job_secs, took));
        }
    }
}

/// A slot and the video's share of the memory budget; dropping it releases both.
pub struct Permit {
    admission: Arc<Admission>,
    id: u64,
}

impl Permit {
    /// The video is gone from memory (extraction done, or the intake failed).
    pub fn video_dropped(&self) {
        self.admission.release_video(self.id);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.release_slot(self.id);
    }
}

fn average(previous: Option<f64>, sample: f64) -> f64 {
    match previous {
        Some(p) => p + SMOOTHING * (sample - p),
        None => sample,
    }
}

/// Expected seconds until a holder that started at `since` releases, given the average `typical`.
fn remaining(typical: f64, since: Instant, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(since).as_secs_f64();
    (typical - elapsed).max(typical * OVERRUN_FRACTION)
}

/// Seconds until the first of the running jobs is expected to end.
fn first_release(remaining: &[f64]) -> f64 {
    remaining.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Seconds until enough held bytes are expected to be released for `need` to fit in `free`.
fn memory_release(free: u64, need: u64, mut holders: Vec<(f64, u64)>) -> f64 {
    holders.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut available = free;
    for (at, bytes) in holders {
        available += bytes;
        if available >= need {
            return at;
        }
    }
    0.0
}

/// Retry-After has a one-second resolution; never advertise less than a second.
fn secs(estimate: f64) -> Duration {
    let estimate = if estimate.is_finite() { estimate } else { 0.0 };
    Duration::from_secs(estimate.ceil().max(1.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIOR: Duration = Duration::from_secs(8);

    #[test]
    fn slots_bound_the_jobs_and_come_back_when_released() {
        let admission = Admission::new(2, 1000, PRIOR);
        let a = admission.admit(10).unwrap();
        let _b = admission.admit(10).unwrap();
        let busy = admission.admit(10).err().unwrap();
        assert_eq!(busy.reason, BusyReason::Slots);
        assert_eq!(busy.retry_after, Duration::from_secs(8), "the prior");
        drop(a);
        assert!(admission.admit(10).is_ok());
    }

    #[test]
    fn the_memory_budget_counts_held_videos_only() {
        let admission = Admission::new(4, 100, PRIOR);
        let a = admission.admit(60).unwrap();
        let busy = admission.admit(41).err().unwrap();
        assert_eq!(busy.reason, BusyReason::Memory);
        let _b = admission.admit(40).unwrap();
        assert_eq!(
            admission.usage(),
            Usage {
                jobs: 2,
                bytes: 100
            }
        );
        a.video_dropped();
        assert_eq!(admission.usage().bytes, 40);
        let _c = admission.admit(60).unwrap();
        drop(a);
        assert_eq!(
            admission.usage(),
            Usage {
                jobs: 2,
                bytes: 100
            }
        );
    }

    #[test]
    fn a_check_answers_like_admit_and_takes_nothing() {
        let admission = Admission::new(1, 100, PRIOR);
        assert!(admission.check(100).is_ok());
        assert!(admission.check(101).is_err());
        assert_eq!(admission.usage(), Usage { jobs: 0, bytes: 0 });
        let held = admission.admit(10).unwrap();
        assert_eq!(admission.check(10).unwrap_err().reason, BusyReason::Slots);
        drop(held);
        assert!(admission.check(10).is_ok());
    }

    #[test]
    fn the_estimate_follows_measured_durations() {
        let admission = Admission::new(1, 100, PRIOR);
        drop(admission.admit(1).unwrap());
        // A job of ~0 s was measured: the estimate is its floor, one second, not the prior.
        let _a = admission.admit(1).unwrap();
        assert_eq!(
            admission.admit(1).err().unwrap().retry_after,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn memory_waits_for_enough_holders_to_leave() {
        let holders = vec![(9.0, 30), (2.0, 10), (5.0, 50)];
        assert_eq!(memory_release(0, 10, holders.clone()), 2.0);
        assert_eq!(memory_release(0, 60, holders.clone()), 5.0);
        assert_eq!(memory_release(0, 90, holders.clone()), 9.0);
        assert_eq!(memory_release(20, 75, holders), 5.0);
    }

    #[test]
    fn an_overrunning_job_is_still_expected_to_take_a_while() {
        let now = Instant::now();
        let long_ago = now - Duration::from_secs(100);
        assert_eq!(remaining(20.0, long_ago, now), 5.0);
        assert_eq!(remaining(20.0, now, now), 20.0);
        assert_eq!(secs(0.2), Duration::from_secs(1));
        assert_eq!(secs(f64::INFINITY), Duration::from_secs(1));
        assert_eq!(secs(4.1), Duration::from_secs(5));
    }
}
