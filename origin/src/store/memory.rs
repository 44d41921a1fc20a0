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

use super::{may_run, JobMark, OutboxEntry, Store, StoreError};

#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
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
}

impl MemoryStore {
    /// Starts the purge task; it ends when the last handle is dropped.
    pub fn new() -> Self {
        let purge = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            purge: purge.clone(),
        });
        tokio::spawn(purge_expired(Arc::downgrade(&shared), purge));
        MemoryStore { shared }
    }

    /// Number of live keys, for residue checks.
    pub fn len(&self) -> usize {
        self.shared.state.lock().unwrap().entries.len()
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
        let mut state = self.shared.state.lock().unwrap();
        if let Some(old) = state.entries.remove(key) {
            state.expirations.remove(&(old.expires_at, key.to_string()));
        }
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

fn status_key(id: &str) -> String {
    format!("status:{id}")
}

fn slot_key(holder: &str) -> String {
    format!("slot:{holder}")
}

fn outbox_key(id: &str) -> String {
    format!("outbox:{id}")
}

#[async_trait]
impl Store for MemoryStore {
    async fn claim_job(&self, id: &str, attempt: u32, ttl: Duration) -> Result<bool, StoreError> {
        // Check and set under one lock, as the Redis script does.
        let key = job_key(id);
        let expires_at = Instant::now() + ttl;
        let mut state = self.shared.state.lock().unwrap();
        let existing = state.live_text(&key).and_then(JobMark::decode);
        if !may_run(existing, attempt) {
            return Ok(false);
        }
        let value = Value::Text(JobMark::Running { attempt }.encode());
        let earliest = state.insert(key, value, expires_at);
        drop(state);
        self.wake_purge_if(earliest);
        Ok(true)
    }

    async fn release_job(&self, id: &str) -> Result<(), StoreError> {
        self.remove(&job_key(id));
        Ok(())
    }

    async fn finish_job(&self, id: &str, mark: JobMark, ttl: Duration) -> Result<(), StoreError> {
        self.remove(&status_key(id));
        self.set(job_key(id), Value::Text(mark.encode()), ttl);
        Ok(())
    }

    async fn job_mark(&self, id: &str) -> Result<Option<JobMark>, StoreError> {
        Ok(self.text(&job_key(id)).and_then(|t| JobMark::decode(&t)))
    }

    async fn set_status(&self, id: &str, status: &str, ttl: Duration) -> Result<(), StoreError> {
        self.set(status_key(id), Value::Text(status.to_string()), ttl);
        Ok(())
    }

    async fn status(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.text(&status_key(id)))
    }

    async fn acquire_slot(
        &self,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.shared.state.lock().unwrap();
        let held = state
            .entries
            .iter()
            .filter(|(k, e)| k.starts_with("slot:") && e.expires_at > now)
            .count();
        if held >= limit as usize {
            return Ok(false);
        }
        let key = slot_key(holder);
        let expires_at = now + ttl;
        let value = Value::Text(String::new());
        let earliest = state.insert(key, value, expires_at);
        drop(state);
        self.wake_purge_if(earliest);
        Ok(true)
    }

    async fn release_slot(&self, holder: &str) -> Result<(), StoreError> {
        self.remove(&slot_key(holder));
        Ok(())
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

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn slots_are_bounded_and_released() {
        let store = MemoryStore::new();
        let ttl = Duration::from_secs(60);
        assert!(store.acquire_slot("a", 2, ttl).await.unwrap());
        assert!(store.acquire_slot("b", 2, ttl).await.unwrap());
        assert!(!store.acquire_slot("c", 2, ttl).await.unwrap());
        store.release_slot("a").await.unwrap();
        assert!(store.acquire_slot("c", 2, ttl).await.unwrap());
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
