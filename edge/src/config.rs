//! The edge's configuration: wrangler vars and the signing secret, read into one typed struct.
//!
//! Every number the edge uses comes from here, so production, local runs and the short-TTL test
//! configuration differ only in `wrangler.toml` / the generated env file, never in code.

use crate::error::EdgeError;
use dodolens_shared::lifecycle::Limits;
use std::{cell::OnceCell, rc::Rc};
use worker::Env;

thread_local! {
    /// The Worker isolate's configuration, read on its first request.
    static WORKER_CONFIG: OnceCell<Rc<Config>> = const { OnceCell::new() };
}

/// Binding name of the session Durable Object namespace.
pub const SESSION_BINDING: &str = "SESSION";

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
    /// `None` when the secret is not set: forwarding and origin events then fail closed.
    pub signing_secret: Option<Vec<u8>>,
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
        };
        Ok(Config {
            origin_url: text(env, "ORIGIN_URL")
                .ok_or(EdgeError::Config("ORIGIN_URL"))?
                .trim_end_matches('/')
                .to_string(),
            edge_public_url: text(env, "EDGE_PUBLIC_URL")
                .map(|u| u.trim_end_matches('/').to_string()),
            max_upload_bytes: number(env, "MAX_UPLOAD_BYTES", 200 << 20)?,
            max_request_bytes: number(env, "MAX_REQUEST_BYTES", 100 << 20)?,
            limits,
            dev_introspection: text(env, "DEV_INTROSPECTION").as_deref() == Some("1"),
            signing_secret: env
                .secret("DODOLENS_SIGNING_SECRET")
                .ok()
                .map(|s| s.to_string().into_bytes())
                .filter(|s| !s.is_empty()),
        })
    }

    /// The secret, or the error that makes signed traffic fail closed.
    pub fn secret(&self) -> Result<&[u8], EdgeError> {
        self.signing_secret
            .as_deref()
            .ok_or(EdgeError::Config("DODOLENS_SIGNING_SECRET"))
    }
}

/// A non-empty var.
fn text(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.trim().is_empty())
}

fn number(env: &Env, name: &'static str, default: u64) -> Result<u64, EdgeError> {
    match text(env, name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| EdgeError::Config(name)),
    }
}
