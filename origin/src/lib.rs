//! DodoLens origin: receives a video from the edge, turns it into an inventory, reports back.
//!
//! The flow of one job: [`intake`] (signed forward → memfd) → [`pipeline`] ([`extract`] with
//! ffmpeg, [`backend`]: [`analysis`] with OpenAI or [`local`] with the embedded [`detector`],
//! fusion from `dodolens-shared`) → [`report`] (signed events), [`outbox`] (the final event,
//! durably) and [`sinks`]. A replica admits jobs by its own slots and memory ([`admission`]) and
//! the cluster's model budget ([`model_budget`]). State shared between replicas lives behind
//! [`store::Store`].
//! [`sim`] is the OpenAI simulator used by tests and the offline demo.

pub mod admission;
pub mod analysis;
pub mod backend;
pub mod config;
pub mod cost;
pub mod detector;
pub mod error;
pub mod extract;
pub mod handoff;
pub mod intake;
pub mod local;
pub mod metrics;
pub mod model_budget;
pub mod ops;
pub mod outbox;
pub mod pipeline;
pub mod quality;
pub mod report;
pub mod sim;
pub mod sinks;
pub mod store;
pub mod video;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::DefaultBodyLimit,
    routing::{get, post},
    Router,
};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admission::Admission,
    backend::{Backend, BackendError},
    config::Config,
    metrics::Metrics,
    outbox::Outbox,
    report::Reporter,
    sinks::Sinks,
    store::{MemoryStore, RedisStore, Store},
};

/// Everything a request or a job needs, shared behind one `Arc`.
pub struct AppState {
    pub cfg: Config,
    pub store: Arc<dyn Store>,
    /// OpenAI or local, per `DODOLENS_ANALYSER`.
    pub analyst: Backend,
    pub reporter: Arc<Reporter>,
    pub outbox: Arc<Outbox>,
    pub admission: Arc<Admission>,
    pub sinks: Sinks,
    pub metrics: Arc<Metrics>,
    /// Running jobs, awaited on shutdown.
    pub tracker: TaskTracker,
    /// Cancelled when shutdown starts: intake answers 503.
    pub shutdown: CancellationToken,
    /// Cancelled when the shutdown grace is over: remaining jobs fail (retryable).
    pub cancel_jobs: CancellationToken,
}

#[derive(Debug, Error)]
pub enum StartError {
    #[error("bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("state store: {0}")]
    Store(#[from] store::StoreError),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("analysis backend: {0}")]
    Backend(#[from] BackendError),
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/v1/jobs/{id}",
            post(intake::post_job).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/jobs/{id}/admission", post(intake::post_admission))
        .route("/v1/handoffs/{id}", post(handoff::post_handoff))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .with_state(state)
}

/// A running origin: its address, and the handle to stop it.
pub struct Origin {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    /// The in-memory store when no Redis is configured (for residue checks).
    pub memory_store: Option<MemoryStore>,
    server: tokio::task::JoinHandle<()>,
    outbox: tokio::task::JoinHandle<()>,
    outbox_stop: CancellationToken,
}

/// Binds, connects the store and starts serving; returns once the socket accepts connections.
pub async fn start(cfg: Config) -> Result<Origin, StartError> {
    install_crypto_provider();
    let (store, memory_store): (Arc<dyn Store>, _) = match &cfg.redis_url {
        Some(url) => (
            Arc::new(RedisStore::connect(url, &cfg.key_prefix, cfg.redis_timeout).await?),
            None,
        ),
        None => {
            let memory = MemoryStore::new();
            (Arc::new(memory.clone()), Some(memory))
        }
    };
    let metrics = Arc::new(Metrics::new());
    let reporter = Arc::new(Reporter::new(&cfg, Arc::clone(&metrics))?);
    let outbox = Arc::new(Outbox::new(&cfg, Arc::clone(&store), Arc::clone(&reporter)));
    let admission = Admission::new(
        cfg.max_concurrent_jobs,
        cfg.memory_budget_bytes,
        cfg.retry_after,
    );
    let state = Arc::new(AppState {
        analyst: Backend::new(&cfg)?,
        sinks: Sinks::new(&cfg.sinks, &cfg.signing_secret, Arc::clone(&metrics))?,
        store,
        reporter,
        outbox: Arc::clone(&outbox),
        admission,
        metrics,
        tracker: TaskTracker::new(),
        shutdown: CancellationToken::new(),
        cancel_jobs: CancellationToken::new(),
        cfg,
    });
    let listener = TcpListener::bind(state.cfg.bind)
        .await
        .map_err(|e| StartError::Bind(state.cfg.bind, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(state.cfg.bind, e))?;
    let outbox_stop = CancellationToken::new();
    let outbox = tokio::spawn(outbox.run(outbox_stop.clone()));
    let app = router(Arc::clone(&state));
    let stop = state.shutdown.clone();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(Origin {
        addr,
        state,
        memory_store,
        server,
        outbox,
        outbox_stop,
    })
}

impl Origin {
    /// Graceful stop: refuse new jobs, give running ones the configured grace, fail the rest
    /// with a retryable event, deliver what the outbox holds, then return.
    pub async fn shutdown(self) {
        let state = &self.state;
        state.shutdown.cancel();
        state.tracker.close();
        if tokio::time::timeout(state.cfg.shutdown_grace, state.tracker.wait())
            .await
            .is_err()
        {
            state.cancel_jobs.cancel();
            state.tracker.wait().await;
        }
        let _ = self.server.await;
        self.outbox_stop.cancel();
        let _ = self.outbox.await;
    }
}

/// reqwest is built without a default TLS backend; ring is the light one. Idempotent; every
/// process that makes HTTP requests through this crate calls it first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
