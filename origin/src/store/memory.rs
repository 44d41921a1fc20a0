//! The single-process store: a keyspace where every entry has a deadline.
//!
//! Modelled on mini-redis `db.rs`: one map of entries, one sorted set of (deadline, key), and one
//! background task that sleeps until the earliest deadline and is woken when an earlier one is
//! inserted. Nothing outlives its TTL, exactly as with Redis, so both modes behave the same.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use tokio::{sync::Notify, time::Instant};

use super::{may_run, Claim, FinalRecord, FinalTtls, JobMark, OutboxEntry, Store, StoreError};
use crate::{
    config::ModelBudget,
    model_budget::{self, Draw, Reserved},
};

#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// The origin of the budget's millisecond clock.
    epoch: Instant,
    /// Wakes the purge task: an earlier deadline appeared, or the store was dropped.
    purge: Arc<Notify>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    expirations: BTreeSet<(Instant, String)>,
}

struct Entry {
    value: Value,
    expires_at: Instant,
}

enum Value {
    Text(String),
    /// An outbox entry and when it is next due.
    Outbox(OutboxEntry, Instant),
    /// The model budget's reservations of the last minute, oldest first.
    Budget(Vec<Reserved>),
}

impl MemoryStore {
    /// Starts the purge task; it ends when the last handle is dropped.
    pub fn new() -> Self {
        let purge = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            epoch: Instant::now(),
            purge: purge.clone(),
        });
        tokio::spawn(purge_expired(Arc::downgrade(&shared), purge));
        MemoryStore { shared }
    }

    /// Number of live keys, for residue checks.
    pub fn len(&self) -> usize {
        self.shared.state.lock().unwrap().entries.len()
    }

    /// Names of the live keys, for residue checks.
    pub fn keys(&self) -> Vec<String> {
        let state = self.shared.state.lock().unwrap();
        let now = Instant::now();
        let mut keys: Vec<String> = state
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at > now)
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set(&self, key: String, value: Value, ttl: Duration) {
        let mut state = self.shared.state.lock().unwrap();
        let earliest = state.insert(key, value, Instant::now() + ttl);
        drop(state);
        self.wake_purge_if(earliest);
    }

    /// Notified after unlocking, so the woken task does not immediately block on the mutex.
    fn wake_purge_if(&self, earliest: bool) {
        if earliest {
            self.shared.purge.notify_one();
        }
    }

    fn remove(&self, key: &str) {
        self.shared.state.lock().unwrap().remove(key);
    }

    fn millis(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.shared.epoch).as_millis() as u64
    }

    fn text(&self, key: &str) -> Option<String> {
        let state = self.shared.state.lock().unwrap();
        state.live_text(key).map(str::to_owned)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.purge.notify_one();
    }
}

impl State {
    fn next_expiration(&self) -> Option<Instant> {
        self.expirations.iter().next().map(|(when, _)| *when)
    }

    /// The text under `key`, unless it has expired and the purge task has not reached it yet.
    fn live_text(&self, key: &str) -> Option<&str> {
        match self.entries.get(key) {
            Some(Entry {
                value: Value::Text(text),
                expires_at,
            }) if *expires_at > Instant::now() => Some(text),
            _ => None,
        }
    }

    /// Inserts or replaces `key`, keeping the sorted deadlines in step. Returns whether the new
    /// deadline is now the earliest: only then must the purge task wake to re-arm its sleep.
    fn insert(&mut self, key: String, value: Value, expires_at: Instant) -> bool {
        let earliest = self.next_expiration().is_none_or(|next| expires_at < next);
        if let Some(old) = self
            .entries
            .insert(key.clone(), Entry { value, expires_at })
        {
            self.expirations.remove(&(old.expires_at, key.clone()));
        }
        self.expirations.insert((expires_at, key));
        earliest
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.expirations.remove(&(old.expires_at, key.to_string()));
        }
    }

    /// Removes what has expired and returns the next deadline.
    fn purge(&mut self, now: Instant) -> Option<Instant> {
        while let Some((when, key)) = self.expirations.iter().next().cloned() {
            if when > now {
                return Some(when);
            }
            self.entries.remove(&key);
            self.expirations.remove(&(when, key));
        }
        None
    }
}

async fn purge_expired(shared: std::sync::Weak<Shared>, wake: Arc<Notify>) {
    loop {
        // Only a weak reference is held while sleeping, so dropping the store ends the task.
        let next = match shared.upgrade() {
            Some(strong) => strong.state.lock().unwrap().purge(Instant::now()),
            None => return,
        };
        match next {
            Some(when) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(when) => {}
                    _ = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

fn job_key(id: &str) -> String {
    format!("job:{id}")
}

fn final_key(id: &str) -> String {
    format!("final:{id}")
}

fn status_key(id: &str) -> String {
    format!("status:{id}")
}

fn outbox_key(id: &str) -> String {
    format!("outbox:{id}")
}

const BUDGET_KEY: &str = "budget";

/// The attempt a stored mark belongs to (0 when there is none).
fn mark_attempt(state: &State, key: &str) -> u32 {
    state
        .live_text(key)
        .and_then(JobMark::decode)
        .map_or(0, JobMark::attempt)
}

fn cancel_key(id: &str) -> String {
    format!("cancel:{id}")
}

fn spend_key(window: &str) -> String {
    format!("spend:{window}")
}

#[async_trait]
impl Store for MemoryStore {
    async fn claim_job(&self, id: &str, attempt: u32, ttl: Duration) -> Result<Claim, StoreError> {
        // Check and set under one lock, as the Redis script does.
        let key = job_key(id);
        let expires_at = Instant::now() + ttl;
        let mut state = self.shared.state.lock().unwrap();
        let existing = state.live_text(&key).and_then(JobMark::decode);
        if !may_run(existing, attempt) {
            return Ok(Claim::Taken(existing));
        }
        let value = Value::Text(JobMark::Running { attempt }.encode());
        let earliest = state.insert(key, value, expires_at);
        drop(state);
        self.wake_purge_if(earliest);
        Ok(Claim::Won)
    }

    async fn renew_job(&self, id: &str, attempt: u32, ttl: Duration) -> Result<(), StoreError> {
        let key = job_key(id);
        let running = JobMark::Running { attempt }.encode();
        let mut state = self.shared.state.lock().unwrap();
        if state.live_text(&key) != Some(running.as_str()) {
            return Ok(());
        }
        let earliest = state.insert(key, Value::Text(running), Instant::now() + ttl);
        drop(state);
        self.wake_purge_if(earliest);
        Ok(())
    }

    async fn release_job(&self, id: &str) -> Result<(), StoreError> {
        self.remove(&job_key(id));
        Ok(())
    }

    async fn record_final(&self, record: &FinalRecord, ttls: FinalTtls) -> Result<(), StoreError> {
        let now = Instant::now();
        let attempt = record.mark.attempt();
        let entry = Value::Outbox(record.entry.clone(), now + ttls.lease);
        let mut state = self.shared.state.lock().unwrap();
        // Same order as the Redis script, under one lock: the event first, then the mark.
        let mut earliest = state.insert(outbox_key(&record.entry.id), entry, now + ttls.outbox);
        let job = job_key(&record.job_id);
        if mark_attempt(&state, &job) <= attempt {
            let body = Value::Text(record.entry.body.clone());
            earliest |= state.insert(final_key(&record.job_id), body, now + ttls.done);
            let mark = Value::Text(record.mark.encode());
            earliest |= state.insert(job, mark, now + ttls.done);
        }
        state.remove(&status_key(&record.job_id));
        drop(state);
        self.wake_purge_if(earliest);
        Ok(())
    }

    async fn final_event(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.text(&final_key(id)))
    }

    async fn job_mark(&self, id: &str) -> Result<Option<JobMark>, StoreError> {
        Ok(self.text(&job_key(id)).and_then(|t| JobMark::decode(&t)))
    }

    async fn record_cancelled(
        &self,
        id: &str,
        mark: JobMark,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut state = self.shared.state.lock().unwrap();
        let job = job_key(id);
        let mut earliest = false;
        if mark_attempt(&state, &job) <= mark.attempt() {
            earliest = state.insert(job, Value::Text(mark.encode()), Instant::now() + ttl);
        }
        state.remove(&status_key(id));
        drop(state);
        self.wake_purge_if(earliest);
        Ok(())
    }

    async fn cancel_job(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.set(cancel_key(id), Value::Text(String::new()), ttl);
        Ok(())
    }

    async fn is_cancelled(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.text(&cancel_key(id)).is_some())
    }

    async fn set_status(&self, id: &str, status: &str, ttl: Duration) -> Result<(), StoreError> {
        self.set(status_key(id), Value::Text(status.to_string()), ttl);
        Ok(())
    }

    async fn status(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.text(&status_key(id)))
    }

    async fn take_model_budget(
        &self,
        _member: &str,
        draw: Draw,
        limits: ModelBudget,
    ) -> Result<Result<(), Duration>, StoreError> {
        let now = Instant::now();
        let now_ms = self.millis(now);
        let mut state = self.shared.state.lock().unwrap();
        let mut window = match state.entries.get(BUDGET_KEY) {
            Some(Entry {
                value: Value::Budget(window),
                expires_at,
            }) if *expires_at > now => window.clone(),
            _ => Vec::new(),
        };
        let window_ms = model_budget::WINDOW.as_millis() as u64;
        window.retain(|r| r.at_ms + window_ms > now_ms);
        if let Err(wait) = model_budget::decide(&window, now_ms, draw, limits) {
            return Ok(Err(wait));
        }
        window.push(Reserved {
            at_ms: now_ms,
            draw,
        });
        let earliest = state.insert(
            BUDGET_KEY.to_string(),
            Value::Budget(window),
            now + model_budget::WINDOW,
        );
        drop(state);
        self.wake_purge_if(earliest);
        Ok(Ok(()))
    }

    async fn outbox_put(&self, entry: &OutboxEntry, ttl: Duration) -> Result<(), StoreError> {
        self.set(
            outbox_key(&entry.id),
            Value::Outbox(entry.clone(), Instant::now()),
            ttl,
        );
        Ok(())
    }

    async fn outbox_take_due(
        &self,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let now = Instant::now();
        let mut state = self.shared.state.lock().unwrap();
        let mut due = Vec::new();
        for entry in state.entries.values_mut() {
            if due.len() >= max {
                break;
            }
            if let Value::Outbox(outbox, due_at) = &mut entry.value {
                if *due_at <= now && entry.expires_at > now {
                    *due_at = now + lease;
                    due.push(outbox.clone());
                }
            }
        }
        Ok(due)
    }

    async fn outbox_retry(&self, entry: &OutboxEntry, delay: Duration) -> Result<(), StoreError> {
        let mut state = self.shared.state.lock().unwrap();
        if let Some(Entry {
            value: Value::Outbox(stored, due_at),
            ..
        }) = state.entries.get_mut(&outbox_key(&entry.id))
        {
            *stored = entry.clone();
            *due_at = Instant::now() + delay;
        }
        Ok(())
    }

    async fn outbox_remove(&self, id: &str) -> Result<(), StoreError> {
        self.remove(&outbox_key(id));
        Ok(())
    }

    async fn add_spend(
        &self,
        window: &str,
        micro_eur: u64,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = spend_key(window);
        let mut state = self.shared.state.lock().unwrap();
        let (total, expires_at) = match state.entries.get(&key) {
            Some(Entry {
                value: Value::Text(text),
                expires_at,
            }) if *expires_at > Instant::now() => (text.parse().unwrap_or(0u64), *expires_at),
            _ => (0, Instant::now() + ttl),
        };
        let value = Value::Text((total + micro_eur).to_string());
        let earliest = state.insert(key, value, expires_at);
        drop(state);
        self.wake_purge_if(earliest);
        Ok(())
    }

    async fn spent(&self, windows: &[&str]) -> Result<Vec<u64>, StoreError> {
        let state = self.shared.state.lock().unwrap();
        Ok(windows
            .iter()
            .map(|w| {
                state
                    .live_text(&spend_key(w))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0)
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Outcome;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_at_their_deadline() {
        let store = MemoryStore::new();
        store
            .set_status("a", "probing", Duration::from_secs(10))
            .await
            .unwrap();
        store
            .set_status("b", "probing", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(store.len(), 2);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(store.status("b").await.unwrap(), None);
        assert_eq!(store.len(), 1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn a_final_record_is_kept_and_never_overwrites_a_newer_attempt() {
        let store = MemoryStore::new();
        let ttl = Duration::from_secs(60);
        assert_eq!(store.claim_job("j", 1, ttl).await.unwrap(), Claim::Won);
        store.set_status("j", "analysing", ttl).await.unwrap();
        let record = |attempt, outcome| FinalRecord {
            job_id: "j".into(),
            mark: JobMark::Ended { attempt, outcome },
            entry: OutboxEntry {
                id: OutboxEntry::id_for("j", attempt),
                session_id: "j".into(),
                callback_url: "http://x/".into(),
                body: format!("final {attempt}"),
                attempts: 0,
            },
        };
        let ttls = FinalTtls {
            done: ttl,
            outbox: ttl,
            lease: Duration::ZERO,
        };
        let retryable = Outcome::Failed { retryable: true };
        store
            .record_final(&record(1, retryable), ttls)
            .await
            .unwrap();
        assert_eq!(store.status("j").await.unwrap(), None);
        assert_eq!(store.final_event("j").await.unwrap().unwrap(), "final 1");
        assert_eq!(store.claim_job("j", 2, ttl).await.unwrap(), Claim::Won);
        // Attempt 1's record written again (a store that lost it) leaves attempt 2 running.
        store
            .record_final(&record(1, retryable), ttls)
            .await
            .unwrap();
        assert_eq!(
            store.job_mark("j").await.unwrap(),
            Some(JobMark::Running { attempt: 2 })
        );
        store
            .record_final(&record(2, Outcome::Completed), ttls)
            .await
            .unwrap();
        assert_eq!(
            store.claim_job("j", 3, ttl).await.unwrap(),
            Claim::Taken(Some(JobMark::Ended {
                attempt: 2,
                outcome: Outcome::Completed
            }))
        );
        assert_eq!(store.outbox_take_due(ttl, 10).await.unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_model_budget_slides() {
        let store = MemoryStore::new();
        let limits = ModelBudget {
            requests_per_minute: 6,
            tokens_per_minute: 0,
        };
        let draw = Draw {
            requests: 3,
            tokens: 100,
        };
        assert!(store
            .take_model_budget("a", draw, limits)
            .await
            .unwrap()
            .is_ok());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(store
            .take_model_budget("b", draw, limits)
            .await
            .unwrap()
            .is_ok());
        let wait = store.take_model_budget("c", draw, limits).await.unwrap();
        assert_eq!(wait, Err(Duration::from_secs(50)));
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert!(store
            .take_model_budget("c", draw, limits)
            .await
            .unwrap()
            .is_ok());
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(
            store.is_empty(),
            "the window expires with its last reservation"
        );
    }

    #[tokio::test]
    async fn outbox_leases_entries() {
        let store = MemoryStore::new();
        let entry = OutboxEntry {
            id: "e1".into(),
            session_id: "s".into(),
            callback_url: "http://x/".into(),
            body: "{}".into(),
            attempts: 0,
        };
        store
            .outbox_put(&entry, Duration::from_secs(60))
            .await
            .unwrap();
        let lease = Duration::from_secs(30);
        assert_eq!(
            store.outbox_take_due(lease, 10).await.unwrap(),
            vec![entry.clone()]
        );
        assert!(store.outbox_take_due(lease, 10).await.unwrap().is_empty());
        store.outbox_retry(&entry, Duration::ZERO).await.unwrap();
        assert_eq!(store.outbox_take_due(lease, 10).await.unwrap().len(), 1);
        store.outbox_remove("e1").await.unwrap();
        assert!(store.is_empty());
    }
}
