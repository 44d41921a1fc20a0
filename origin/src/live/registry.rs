//! The live jobs of this replica, by session: at most one per session, for one attempt.
//!
//! A live job lives in this replica's memory only, so the load balancer must send a session's
//! ranges and its finishing forward to the same replica (hash on the path's session id; see
//! docs/ARCHITECTURE.md). A job is dropped — ffmpeg killed, memfds closed, slot released, no
//! event — by a newer attempt (range or forward), a cancel, shutdown, or [`Registry::idle`]
//! without a range; the edge then forwards the whole file, which this origin handles as always.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use tokio::sync::Mutex as AsyncMutex;

use crate::{intake::short, live::job::LiveJob};

pub struct Registry {
    jobs: Mutex<HashMap<String, Arc<Entry>>>,
    idle: Duration,
}

/// One session's live job. `job` is `None` once dropped, so a handler still holding the entry
/// finds nothing to append to.
pub(crate) struct Entry {
    pub attempt: u32,
    pub job: AsyncMutex<Option<LiveJob>>,
    touched: Mutex<Instant>,
}

impl Entry {
    /// A range arrived: the idle clock starts again.
    pub(crate) fn touch(&self) {
        *self.touched.lock().unwrap() = Instant::now();
    }

    async fn retire(&self) {
        drop(self.job.lock().await.take());
    }
}

impl Registry {
    pub fn new(idle: Duration) -> Arc<Registry> {
        Arc::new(Registry {
            jobs: Mutex::new(HashMap::new()),
            idle,
        })
    }

    /// How many live jobs this replica holds.
    pub fn len(&self) -> usize {
        self.jobs.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.jobs.lock().unwrap().get(id).cloned()
    }

    /// Registers `job` for its session (replacing any other) and starts its idle clock.
    pub(crate) fn insert(self: &Arc<Self>, job: LiveJob) -> Arc<Entry> {
        let id = job.meta.session_id.clone();
        let entry = Arc::new(Entry {
            attempt: job.meta.attempt,
            job: AsyncMutex::new(Some(job)),
            touched: Mutex::new(Instant::now()),
        });
        let previous = self
            .jobs
            .lock()
            .unwrap()
            .insert(id.clone(), Arc::clone(&entry));
        if let Some(previous) = previous {
            tokio::spawn(async move { previous.retire().await });
        }
        tokio::spawn(watch_idle(Arc::clone(self), id, Arc::downgrade(&entry)));
        entry
    }

    /// Forgets `entry` if it is still the session's; whether it was.
    pub(crate) fn remove(&self, id: &str, entry: &Arc<Entry>) -> bool {
        let mut jobs = self.jobs.lock().unwrap();
        match jobs.get(id) {
            Some(current) if Arc::ptr_eq(current, entry) => {
                jobs.remove(id);
                true
            }
            _ => false,
        }
    }

    /// Drops the session's live job if its attempt is `attempt` or older (a forward of that
    /// attempt takes over) — or whatever its attempt, with `None` (a cancel).
    pub async fn drop_up_to(&self, id: &str, attempt: Option<u32>) {
        let entry = {
            let mut jobs = self.jobs.lock().unwrap();
            match jobs.get(id) {
                Some(e) if attempt.is_none_or(|a| e.attempt <= a) => jobs.remove(id),
                _ => None,
            }
        };
        if let Some(entry) = entry {
            tracing::info!(job = %short(id), attempt = entry.attempt, "live job dropped");
            entry.retire().await;
        }
    }

    /// Drops every live job (shutdown).
    pub async fn clear(&self) {
        let entries: Vec<Arc<Entry>> = self.jobs.lock().unwrap().drain().map(|(_, e)| e).collect();
        for entry in entries {
            entry.retire().await;
        }
    }
}

/// Drops the entry once it has had no range for the idle time.
async fn watch_idle(registry: Arc<Registry>, id: String, entry: Weak<Entry>) {
    loop {
        let Some(due) = entry
            .upgrade()
            .map(|e| *e.touched.lock().unwrap() + registry.idle)
        else {
            return;
        };
        tokio::time::sleep_until(due.into()).await;
        let Some(current) = entry.upgrade() else {
            return;
        };
        if current.touched.lock().unwrap().elapsed() < registry.idle {
            continue;
        }
        if registry.remove(&id, &current) {
            tracing::info!(job = %short(&id), attempt = current.attempt, "live job idle; dropped");
            current.retire().await;
        }
        return;
    }
}
