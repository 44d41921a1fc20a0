//! The shared store: Redis through a connection manager (reconnects by itself).
//!
//! Every multi-step decision is one Lua script, so two replicas racing on the same job or the
//! last free slot cannot both win, and every script reads the clock from Redis (`TIME`) so
//! replicas with skewed clocks still agree. All keys start with the configured prefix and carry
//! a TTL.

use std::time::Duration;

use async_trait::async_trait;
use redis::{aio::ConnectionManager, AsyncCommands, Script};

use super::{JobMark, OutboxEntry, Store, StoreError};

const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
local attempt = tonumber(ARGV[1])
if v then
  local kind, prev = string.match(v, '^(%a+):(%d+)$')
  if not (kind == 'retryable' and attempt > tonumber(prev)) then return 0 end
end
redis.call('SET', KEYS[1], 'running:' .. ARGV[1], 'PX', ARGV[2])
return 1
";

const NOW: &str =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n";

const ACQUIRE_SLOT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

const OUTBOX_PUT: &str = r"
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

const OUTBOX_TAKE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local body = redis.call('GET', ARGV[3] .. id)
  if body then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id)
    table.insert(out, body)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
";

const OUTBOX_RETRY: &str = r"
if redis.call('SET', KEYS[2], ARGV[2], 'XX', 'KEEPTTL') then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
end
return 1
";

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    claim: Script,
    acquire_slot: Script,
    outbox_put: Script,
    outbox_take: Script,
    outbox_retry: Script,
}

impl RedisStore {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(3);
        let conn = client.get_connection_manager_with_config(config).await?;
        let with_now = |body: &str| Script::new(&format!("{NOW}{body}"));
        Ok(RedisStore {
            conn,
            prefix: prefix.to_string(),
            claim: Script::new(CLAIM),
            acquire_slot: with_now(ACQUIRE_SLOT),
            outbox_put: with_now(OUTBOX_PUT),
            outbox_take: with_now(OUTBOX_TAKE),
            outbox_retry: with_now(OUTBOX_RETRY),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.prefix)
    }

    fn slots_key(&self) -> String {
        format!("{}:slots", self.prefix)
    }

    fn outbox_index(&self) -> String {
        format!("{}:outbox", self.prefix)
    }
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

#[async_trait]
impl Store for RedisStore {
    async fn claim_job(&self, id: &str, attempt: u32, ttl: Duration) -> Result<bool, StoreError> {
        let won: i64 = self
            .claim
            .key(self.key("job", id))
            .arg(attempt)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(won == 1)
    }

    async fn release_job(&self, id: &str) -> Result<(), StoreError> {
        let _: i64 = self.conn.clone().del(self.key("job", id)).await?;
        Ok(())
    }

    async fn finish_job(&self, id: &str, mark: JobMark, ttl: Duration) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.key("status", id))
            .ignore()
            .pset_ex(self.key("job", id), mark.encode(), millis(ttl))
            .ignore();
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn job_mark(&self, id: &str) -> Result<Option<JobMark>, StoreError> {
        let text: Option<String> = self.conn.clone().get(self.key("job", id)).await?;
        Ok(text.and_then(|t| JobMark::decode(&t)))
    }

    async fn set_status(&self, id: &str, status: &str, ttl: Duration) -> Result<(), StoreError> {
        let () = self
            .conn
            .clone()
            .pset_ex(self.key("status", id), status, millis(ttl))
            .await?;
        Ok(())
    }

    async fn status(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn.clone().get(self.key("status", id)).await?)
    }

    async fn acquire_slot(
        &self,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let won: i64 = self
            .acquire_slot
            .key(self.slots_key())
            .arg(holder)
            .arg(limit)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(won == 1)
    }

    async fn release_slot(&self, holder: &str) -> Result<(), StoreError> {
        let _: i64 = self.conn.clone().zrem(self.slots_key(), holder).await?;
        Ok(())
    }

    async fn outbox_put(&self, entry: &OutboxEntry, ttl: Duration) -> Result<(), StoreError> {
        let _: i64 = self
            .outbox_put
            .key(self.outbox_index())
            .key(self.key("outbox", &entry.id))
            .arg(&entry.id)
            .arg(serde_json::to_string(entry)?)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn outbox_take_due(
        &self,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let bodies: Vec<String> = self
            .outbox_take
            .key(self.outbox_index())
            .arg(millis(lease))
            .arg(max)
            .arg(format!("{}:outbox:", self.prefix))
            .invoke_async(&mut self.conn.clone())
            .await?;
        bodies
            .iter()
            .map(|b| Ok(serde_json::from_str(b)?))
            .collect()
    }

    async fn outbox_retry(&self, entry: &OutboxEntry, delay: Duration) -> Result<(), StoreError> {
        let _: i64 = self
            .outbox_retry
            .key(self.outbox_index())
            .key(self.key("outbox", &entry.id))
            .arg(&entry.id)
            .arg(serde_json::to_string(entry)?)
            .arg(delay.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn outbox_remove(&self, id: &str) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.key("outbox", id))
            .ignore()
            .zrem(self.outbox_index(), id)
            .ignore();
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
