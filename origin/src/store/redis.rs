//! The shared store: Redis through a connection manager (reconnects by itself).
//!
//! Every multi-step decision is one Lua script, so two replicas racing on the same job or the
//! last of the model budget cannot both win, a job's end is one step, and every script reads the clock from Redis (`TIME`) so
//! replicas with skewed clocks still agree. All keys start with the configured prefix and carry
//! a TTL.

use std::time::Duration;

use async_trait::async_trait;
use redis::{
    aio::{ConnectionLike, ConnectionManager},
    AsyncCommands, RedisFuture, Script, Value,
};

use super::{Claim, FinalRecord, FinalTtls, JobMark, OutboxEntry, Store, StoreError};
use crate::{
    config::ModelBudget,
    model_budget::{self, Draw},
};

/// Returns false when won, else the mark that refused the claim.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
local attempt = tonumber(ARGV[1])
if v then
  local kind, prev = string.match(v, '^(%a+):(%d+)$')
  if not (kind == 'retryable' and attempt > tonumber(prev)) then return v end
end
redis.call('SET', KEYS[1], 'running:' .. ARGV[1], 'PX', ARGV[2])
return false
";

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
";

/// KEYS: job, final, outbox entry, outbox index, status. ARGV: mark, event, entry JSON, entry
/// id, done ms, outbox ms, lease ms, attempt. The event is in the outbox before the job counts
/// as finished, in the same step; an older attempt never overwrites a newer one's mark.
const RECORD_FINAL: &str = r"
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[6])
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[7]), ARGV[4])
redis.call('PEXPIRE', KEYS[4], ARGV[6])
local v = redis.call('GET', KEYS[1])
local prev = v and tonumber(string.match(v, ':(%d+)$')) or 0
if prev <= tonumber(ARGV[8]) then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[5])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[5])
end
redis.call('DEL', KEYS[5])
return 1
";

/// `model_budget::decide` in Lua over a sorted set of `member|requests|tokens` scored by time.
/// ARGV: member, requests, tokens, requests/min, tokens/min, window ms. Returns 0 when the
/// draw was reserved, else the milliseconds until it would fit.
const TAKE_BUDGET: &str = r"
local window = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local want_r, want_t = tonumber(ARGV[2]), tonumber(ARGV[3])
local rpm, tpm = tonumber(ARGV[4]), tonumber(ARGV[5])
local function fits(r, t)
  return (rpm == 0 or r + want_r <= rpm) and (tpm == 0 or t + want_t <= tpm)
end
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local held, r, t = {}, 0, 0
for i = 1, #entries, 2 do
  local er, et = string.match(entries[i], '|(%d+)|(%d+)$')
  er, et = tonumber(er), tonumber(et)
  r, t = r + er, t + et
  table.insert(held, { tonumber(entries[i + 1]), er, et })
end
if #held == 0 or fits(r, t) then
  redis.call('ZADD', KEYS[1], now, ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
for i, e in ipairs(held) do
  r, t = r - e[2], t - e[3]
  if i == #held or fits(r, t) then return math.max(e[1] + window - now, 1) end
end
";

const NOW: &str =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n";

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

/// The connection manager with a hard bound on every request: its own response timeout does
/// not cover the reconnection it starts after one, so a paused server could otherwise hold a
/// caller for several timeouts in a row.
#[derive(Clone)]
struct Bounded {
    inner: ConnectionManager,
    limit: Duration,
}

impl Bounded {
    fn timed_out(&self) -> redis::RedisError {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {:?}", self.limit),
        )
        .into()
    }
}

impl ConnectionLike for Bounded {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let limit = self.limit;
            match tokio::time::timeout(limit, self.inner.req_packed_command(cmd)).await {
                Ok(answer) => answer,
                Err(_) => Err(self.timed_out()),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let limit = self.limit;
            let answers = self.inner.req_packed_commands(pipeline, offset, count);
            match tokio::time::timeout(limit, answers).await {
                Ok(answers) => answers,
                Err(_) => Err(self.timed_out()),
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

#[derive(Clone)]
pub struct RedisStore {
    conn: Bounded,
    prefix: String,
    claim: Script,
    renew: Script,
    record_final: Script,
    take_budget: Script,
    outbox_put: Script,
    outbox_take: Script,
    outbox_retry: Script,
}

impl RedisStore {
    /// Connects with `timeout` on every connection attempt and every response: a paused or
    /// unreachable Redis fails an operation after it instead of hanging the caller, which
    /// retries (the connection manager reconnects by itself).
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(3);
        let conn = Bounded {
            inner: client.get_connection_manager_with_config(config).await?,
            limit: timeout,
        };
        let with_now = |body: &str| Script::new(&format!("{NOW}{body}"));
        Ok(RedisStore {
            conn,
            prefix: prefix.to_string(),
            claim: Script::new(CLAIM),
            renew: Script::new(RENEW),
            record_final: with_now(RECORD_FINAL),
            take_budget: with_now(TAKE_BUDGET),
            outbox_put: with_now(OUTBOX_PUT),
            outbox_take: with_now(OUTBOX_TAKE),
            outbox_retry: with_now(OUTBOX_RETRY),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.prefix)
    }

    fn budget_key(&self) -> String {
        format!("{}:model-budget", self.prefix)
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
    async fn claim_job(&self, id: &str, attempt: u32, ttl: Duration) -> Result<Claim, StoreError> {
        let taken: Option<String> = self
            .claim
            .key(self.key("job", id))
            .arg(attempt)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match taken {
            None => Claim::Won,
            Some(mark) => Claim::Taken(JobMark::decode(&mark)),
        })
    }

    async fn renew_job(&self, id: &str, attempt: u32, ttl: Duration) -> Result<(), StoreError> {
        let _: i64 = self
            .renew
            .key(self.key("job", id))
            .arg(JobMark::Running { attempt }.encode())
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn release_job(&self, id: &str) -> Result<(), StoreError> {
        let _: i64 = self.conn.clone().del(self.key("job", id)).await?;
        Ok(())
    }

    async fn record_final(&self, record: &FinalRecord, ttls: FinalTtls) -> Result<(), StoreError> {
        let attempt = record.mark.attempt();
        let id = &record.job_id;
        let _: i64 = self
            .record_final
            .key(self.key("job", id))
            .key(self.key("final", id))
            .key(self.key("outbox", &record.entry.id))
            .key(self.outbox_index())
            .key(self.key("status", id))
            .arg(record.mark.encode())
            .arg(&record.entry.body)
            .arg(serde_json::to_string(&record.entry)?)
            .arg(&record.entry.id)
            .arg(millis(ttls.done))
            .arg(millis(ttls.outbox))
            .arg(ttls.lease.as_millis() as u64)
            .arg(attempt)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn final_event(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn.clone().get(self.key("final", id)).await?)
    }

    async fn job_mark(&self, id: &str) -> Result<Option<JobMark>, StoreError> {
        let text: Option<String> = self.conn.clone().get(self.key("job", id)).await?;
        Ok(text.and_then(|t| JobMark::decode(&t)))
    }

    async fn record_cancelled(
        &self,
        id: &str,
        mark: JobMark,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.key("status", id))
            .ignore()
            .pset_ex(self.key("job", id), mark.encode(), millis(ttl))
            .ignore();
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn cancel_job(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        let () = self
            .conn
            .clone()
            .pset_ex(self.key("cancel", id), 1, millis(ttl))
            .await?;
        Ok(())
    }

    async fn is_cancelled(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn.clone().exists(self.key("cancel", id)).await?)
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

    async fn take_model_budget(
        &self,
        member: &str,
        draw: Draw,
        limits: ModelBudget,
    ) -> Result<Result<(), Duration>, StoreError> {
        let wait_ms: u64 = self
            .take_budget
            .key(self.budget_key())
            .arg(member)
            .arg(draw.requests)
            .arg(draw.tokens)
            .arg(limits.requests_per_minute)
            .arg(limits.tokens_per_minute)
            .arg(model_budget::WINDOW.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match wait_ms {
            0 => Ok(()),
            ms => Err(Duration::from_millis(ms)),
        })
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

    async fn add_spend(
        &self,
        window: &str,
        micro_eur: u64,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.key("spend", window);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .incr(&key, micro_eur)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .arg("NX")
            .ignore();
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn spent(&self, windows: &[&str]) -> Result<Vec<u64>, StoreError> {
        let keys: Vec<String> = windows.iter().map(|w| self.key("spend", w)).collect();
        let values: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
