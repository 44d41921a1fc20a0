//! The spending cap (not to be confused with `model_budget`, a rate of requests and tokens per
//! minute): model cost per UTC hour and per UTC day, shared by every replica on one
//! store, so anonymous uploads cannot run the provider bill up without limit.
//!
//! The cost is the one measured for each completed analysis (`cost.rs`), added to the current
//! hour's and day's counters (integer micro-euros, keys with a TTL a little past their window).
//! Intake checks the counters before reading a byte of the body; once a window's cap is reached,
//! forwards are refused with 503 and a `Retry-After` pointing at the end of that window — a
//! queue signal, not a failure: the edge keeps the upload and forwards it again when the window
//! resets, within its own retry and lifetime bounds (docs/SECURITY.md says why). Jobs already
//! admitted finish, so the cap can be exceeded by at most the jobs in flight.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{
    config::SpendingCapConfig,
    store::{Store, StoreError},
};

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// A spending window that is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted {
    pub window: &'static str,
    /// Until the window resets.
    pub retry_after: Duration,
}

pub struct SpendingCap {
    cfg: SpendingCapConfig,
    store: Arc<dyn Store>,
}

/// One capped window at `now`: its counter key, its cap and when it resets.
struct Window {
    name: &'static str,
    key: String,
    cap_micro: u64,
    resets_in: Duration,
    ttl: Duration,
}

impl SpendingCap {
    pub fn new(cfg: SpendingCapConfig, store: Arc<dyn Store>) -> Self {
        SpendingCap { cfg, store }
    }

    /// `Err` with the window to wait for when a cap is reached.
    pub async fn check(&self, now: SystemTime) -> Result<Result<(), Exhausted>, StoreError> {
        let windows = self.windows(now);
        if windows.is_empty() {
            return Ok(Ok(()));
        }
        let keys: Vec<&str> = windows.iter().map(|w| w.key.as_str()).collect();
        let spent = self.store.spent(&keys).await?;
        let full = windows
            .iter()
            .zip(spent)
            .filter(|(w, spent)| *spent >= w.cap_micro)
            .max_by_key(|(w, _)| w.resets_in);
        Ok(match full {
            Some((w, _)) => Err(Exhausted {
                window: w.name,
                retry_after: w.resets_in,
            }),
            None => Ok(()),
        })
    }

    /// Adds a completed analysis's cost to the windows of `now`.
    pub async fn record(&self, eur: f64, now: SystemTime) -> Result<(), StoreError> {
        let micro = (eur.max(0.0) * 1e6).round() as u64;
        if micro == 0 {
            return Ok(());
        }
        for window in self.windows(now) {
            self.store.add_spend(&window.key, micro, window.ttl).await?;
        }
        Ok(())
    }

    fn windows(&self, now: SystemTime) -> Vec<Window> {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        [
            ("hour", HOUR, self.cfg.eur_per_hour),
            ("day", DAY, self.cfg.eur_per_day),
        ]
        .into_iter()
        .filter(|(_, _, cap)| *cap > 0.0)
        .map(|(name, len, cap)| Window {
            name,
            key: format!("{name}:{}", secs / len),
            cap_micro: (cap * 1e6).round() as u64,
            resets_in: Duration::from_secs(len - secs % len),
            ttl: Duration::from_secs(len + HOUR),
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn refuses_until_the_full_window_resets() {
        let store = Arc::new(MemoryStore::new());
        let cap = SpendingCap::new(
            SpendingCapConfig {
                eur_per_hour: 1.0,
                eur_per_day: 1.5,
            },
            store,
        );
        // 10:59:00 UTC on day 20000.
        let t = 20_000 * DAY + 10 * HOUR + 59 * 60;
        assert_eq!(cap.check(at(t)).await.unwrap(), Ok(()));
        cap.record(0.6, at(t)).await.unwrap();
        assert_eq!(cap.check(at(t)).await.unwrap(), Ok(()));
        cap.record(0.4, at(t + 1)).await.unwrap();
        assert_eq!(
            cap.check(at(t + 2)).await.unwrap(),
            Err(Exhausted {
                window: "hour",
                retry_after: Duration::from_secs(58)
            })
        );
        // The next hour has room, until the day's cap is reached too.
        let next = t + 60;
        assert_eq!(cap.check(at(next)).await.unwrap(), Ok(()));
        cap.record(0.5, at(next)).await.unwrap();
        assert_eq!(
            cap.check(at(next)).await.unwrap(),
            Err(Exhausted {
                window: "day",
                retry_after: Duration::from_secs(13 * HOUR)
            })
        );
        assert_eq!(cap.check(at(21_000 * DAY)).await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn a_zero_cap_is_no_cap() {
        let store = Arc::new(MemoryStore::new());
        let cap = SpendingCap::new(
            SpendingCapConfig {
                eur_per_hour: 0.0,
                eur_per_day: 0.0,
            },
            store.clone(),
        );
        cap.record(1000.0, at(0)).await.unwrap();
        assert_eq!(cap.check(at(0)).await.unwrap(), Ok(()));
        assert!(store.is_empty(), "nothing counted without a cap");
    }
}
