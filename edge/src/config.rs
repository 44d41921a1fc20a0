//! The edge's configuration: wrangler vars and the signing secret, read into one typed struct.
//!
//! Every number the edge uses comes from here, so production, local runs and the short-TTL test
//! configuration differ only in `wrangler.toml` / the generated env file, never in code.

use crate::error::EdgeError;
use dodolens_shared::{lifecycle::Limits, signing::Keyring};
use std::{cell::OnceCell, rc::Rc};
use worker::Env;

thread_local! {
    /// The Worker isolate's configuration, read on its first request.
    static WORKER_CONFIG: OnceCell<Rc<Config>> = const { OnceCell::new() };
}

/// Binding name of the session Durable Object namespace.
pub const SESSION_BINDING: &str = "SESSION";
/// Binding name of the rate limiter counting session creations per client (`[[ratelimits]]`).
pub const CREATE_LIMITER_BINDING: &str = "CREATE_LIMITER";
/// Cloudflare's Turnstile siteverify endpoint, the default of `TURNSTILE_VERIFY_URL`.
pub const SITEVERIFY_URL: &str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

#[derive(Clone, Debug)]
pub struct Config {
    /// Base URL of the origin, without a trailing slash.
    pub origin_url: String,
    /// Base URL the origin calls back; `None` means the request's own origin.
    pub edge_public_url: Option<String>,
    pub max_upload_bytes: u64,
    pub max_request_bytes: u64,
    pub limits: Limits,
    /// Enables the chunk-row introspection route; "1" only in local and test configurations.
    pub dev_introspection: bool,
    /// Reads a refused request body to its end instead of cancelling it: `wrangler dev` fails
    /// the Worker when a Durable Object answers before its request body was consumed. "1" only
    /// in local and test configurations; production cancels (reads nothing).
    pub dev_drain_refused_bodies: bool,
    /// The period (s) of the `CREATE_LIMITER` binding's window, for `Retry-After`; must equal
    /// `simple.period` in wrangler.toml.
    pub create_limit_period_secs: u64,
    /// Turnstile secret: when set, every creation must carry a token siteverify accepts.
    pub turnstile_secret: Option<String>,
    pub turnstile_verify_url: String,
    /// Live WebSockets one session accepts; a further one is closed at once (1008).
    pub max_sockets_per_session: usize,
    /// How long a long-poll waits for an event before answering with nothing new.
    pub long_poll_ms: u64,
    /// The edge ↔ origin keys (`DODOLENS_SIGNING_SECRET`, and `DODOLENS_SIGNING_SECRET_PREVIOUS`
    /// accepted during a rotation). `None` when the secret is not set: forwarding and origin
    /// events then fail closed.
    pub signing: Option<Keyring>,
}

impl Config {
    /// The configuration of this isolate. Vars and secrets cannot change under a running
    /// isolate (a deployment or a `wrangler dev` reload starts a new one), so they are read once,
    /// not on every request. An invalid configuration is not kept: every request reports it.
    pub fn cached(env: &Env) -> Result<Rc<Config>, EdgeError> {
        if let Some(config) = WORKER_CONFIG.with(|c| c.get().cloned()) {
            return Ok(config);
        }
        let config = Rc::new(Config::from_env(env)?);
        WORKER_CONFIG.with(|c| {
            let _ = c.set(config.clone());
        });
        Ok(config)
    }

    pub fn from_env(env: &Env) -> Result<Config, EdgeError> {
        let defaults = Limits::default();
        let limits = Limits {
            idle_expiry_ms: number(env, "IDLE_EXPIRY_MS", defaults.idle_expiry_ms)?,
            retention_ms: number(env, "RETENTION_MS", defaults.retention_ms)?,
            tombstone_ms: number(env, "TOMBSTONE_MS", defaults.tombstone_ms)?,
            watchdog_ms: number(env, "WATCHDOG_MS", defaults.watchdog_ms)?,
            forward_backoff_ms: number(env, "FORWARD_BACKOFF_MS", defaults.forward_backoff_ms)?,
            forward_backoff_max_ms: defaults.forward_backoff_max_ms,
            max_forward_attempts: number(
                env,
                "MAX_FORWARD_ATTEMPTS",
                u64::from(defaults.max_forward_attempts),
            )?
            .try_into()
            .map_err(|_| EdgeError::Config("MAX_FORWARD_ATTEMPTS"))?,
            max_lifetime_ms: number(env, "MAX_LIFETIME_MS", defaults.max_lifetime_ms)?,
            queue_limit_ms: number(env, "QUEUE_LIMIT_MS", defaults.queue_limit_ms)?,
            busy_retry_min_ms: number(env, "BUSY_RETRY_MIN_MS", defaults.busy_retry_min_ms)?,
            busy_retry_max_ms: number(env, "BUSY_RETRY_MAX_MS", defaults.busy_retry_max_ms)?,
            max_retries: number(env, "MAX_RETRIES", u64::from(defaults.max_retries))?
                .try_into()
                .map_err(|_| EdgeError::Config("MAX_RETRIES"))?,
            forward_while_receiving: flag(
                env,
                "FORWARD_WHILE_RECEIVING",
                defaults.forward_while_receiving,
            )?,
            ..defaults
        };
        Ok(Config {
            origin_url: text(env, "ORIGIN_URL")
                .ok_or(EdgeError::Config("ORIGIN_URL"))?
                .trim_end_matches('/')
                .to_string(),
            edge_public_url: text(env, "EDGE_PUBLIC_URL")
                .map(|u| u.trim_end_matches('/').to_string()),
            max_upload_bytes: number(env, "MAX_UPLOAD_BYTES", 1 << 30)?,
            max_request_bytes: number(env, "MAX_REQUEST_BYTES", 100 << 20)?,
            limits,
            dev_introspection: text(env, "DEV_INTROSPECTION").as_deref() == Some("1"),
            dev_drain_refused_bodies: text(env, "DEV_DRAIN_REFUSED_BODIES").as_deref() == Some("1"),
            create_limit_period_secs: number(env, "CREATE_LIMIT_PERIOD_S", 60)?,
            turnstile_secret: env
                .secret("TURNSTILE_SECRET")
                .ok()
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty()),
            turnstile_verify_url: text(env, "TURNSTILE_VERIFY_URL")
                .unwrap_or_else(|| SITEVERIFY_URL.to_string()),
            max_sockets_per_session: number(env, "MAX_SOCKETS_PER_SESSION", 8)?
                .try_into()
                .map_err(|_| EdgeError::Config("MAX_SOCKETS_PER_SESSION"))?,
            long_poll_ms: number(env, "LONG_POLL_MS", 25_000)?,
            signing: secret(env, "DODOLENS_SIGNING_SECRET").and_then(|current| {
                Keyring::new(current, secret(env, "DODOLENS_SIGNING_SECRET_PREVIOUS")).ok()
            }),
        })
    }

    /// The keys, or the error that makes signed traffic fail closed.
    pub fn keys(&self) -> Result<&Keyring, EdgeError> {
        self.signing
            .as_ref()
            .ok_or(EdgeError::Config("DODOLENS_SIGNING_SECRET"))
    }
}

/// A non-empty secret's bytes.
fn secret(env: &Env, name: &str) -> Option<Vec<u8>> {
    env.secret(name)
        .ok()
        .map(|s| s.to_string().into_bytes())
        .filter(|s| !s.is_empty())
}

/// A non-empty var.
fn text(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.trim().is_empty())
}

/// `1` or `0`.
fn flag(env: &Env, name: &'static str, default: bool) -> Result<bool, EdgeError> {
    match text(env, name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(_) => Err(EdgeError::Config(name)),
    }
}

fn number(env: &Env, name: &'static str, default: u64) -> Result<u64, EdgeError> {
    match text(env, name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| EdgeError::Config(name)),
    }
}
