//! DodoLens origin: receives a video from the edge, turns it into an inventory, reports back.
//!
//! The flow of one job: [`intake`] (signed forward → memfd; or [`live`], a recording received
//! in ranges and extracted as it arrives) → [`pipeline`] ([`extract`] with
//! ffmpeg, [`backend`]: [`analysis`] with OpenAI or [`local`] with the embedded [`detector`],
//! fusion from `dodolens-shared`) → [`report`] (signed events), [`outbox`] (the final event,
//! durably) and [`sinks`]. A replica admits jobs by its own slots and memory ([`admission`]) and
//! the cluster's model budget ([`model_budget`]). State shared between replicas lives behind
//! [`store::Store`]. The OpenAI simulator the tests use is a crate of its own
//! (`tools/openai-sim`), not part of this one.

pub mod admission;
pub mod analysis;
pub mod backend;
pub mod cancel;
pub mod config;
pub mod cost;
pub mod detector;
pub mod error;
pub mod extract;
pub mod handoff;
pub mod intake;
pub mod live;
pub mod local;
pub mod metrics;
pub mod model_budget;
pub mod ops;
pub mod outbox;
pub mod pipeline;
pub mod quality;
pub mod report;
pub mod signed;
pub mod sinks;
pub mod spending;
pub mod store;
pub mod video;
pub mod whisper;

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
    spending::SpendingCap,
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
    pub spending: SpendingCap,
    pub readiness: ops::Readiness,
    /// Jobs running on this replica, so a cancel can stop them.
    pub running: cancel::Running,
    /// Recordings this replica receives in ranges (live capture).
    pub live: Arc<live::Registry>,
    /// Running jobs, awaited on shutdown.
    pub tracker: TaskTracker,
    /// Cancelled when shutdown starts: intake answers 503 (the listeners stay open until the
    /// running jobs have ended, so a forward arriving meanwhile is told to go elsewhere).
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

/// The public listener's routes: what the edge calls, and liveness.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/v1/jobs/{id}",
            post(intake::post_job)
                .layer(DefaultBodyLimit::disable())
                .delete(cancel::delete_job),
        )
        .route("/v1/jobs/{id}/admission", post(intake::post_admission))
        .route(
            "/v1/jobs/{id}/stream",
            post(live::post_stream).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/handoffs/{id}", post(handoff::post_handoff))
        .route("/healthz", get(ops::healthz))
        .with_state(state)
}

/// The operator listener's routes.
pub fn ops_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .with_state(state)
}

/// A running origin: its addresses, and the handle to stop it.
pub struct Origin {
    /// The public listener (jobs).
    pub addr: SocketAddr,
    /// The operator listener (readiness, metrics).
    pub ops_addr: SocketAddr,
    pub state: Arc<AppState>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    servers_stop: CancellationToken,
    outbox: tokio::task::JoinHandle<()>,
    outbox_stop: CancellationToken,
}

/// Connects the configured store (Redis, or one in memory) and starts serving.
pub async fn start(cfg: Config) -> Result<Origin, StartError> {
    let store: Arc<dyn Store> = match &cfg.redis_url {
        Some(url) => Arc::new(RedisStore::connect(url, &cfg.key_prefix, cfg.redis_timeout).await?),
        None => Arc::new(MemoryStore::new()),
    };
    start_with_store(cfg, store).await
}

/// Binds and starts serving on `store` (an embedder's own, or one a caller wants to inspect);
/// returns once the socket accepts connections.
pub async fn start_with_store(cfg: Config, store: Arc<dyn Store>) -> Result<Origin, StartError> {
    install_crypto_provider();
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
        sinks: Sinks::new(&cfg.sinks, Arc::clone(&metrics))?,
        spending: SpendingCap::new(cfg.spending, Arc::clone(&store)),
        readiness: ops::Readiness::new(cfg.ready_cache),
        running: cancel::Running::default(),
        live: live::Registry::new(cfg.stream_idle),
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
    let (listener, addr) = bind(state.cfg.bind).await?;
    let (ops_listener, ops_addr) = bind(state.cfg.ops_bind).await?;
    let outbox_stop = CancellationToken::new();
    let outbox = tokio::spawn(outbox.run(outbox_stop.clone()));
    let servers_stop = CancellationToken::new();
    let servers = vec![
        serve(listener, router(Arc::clone(&state)), servers_stop.clone()),
        serve(
            ops_listener,
            ops_router(Arc::clone(&state)),
            servers_stop.clone(),
        ),
    ];
    Ok(Origin {
        addr,
        ops_addr,
        state,
        servers,
        servers_stop,
        outbox,
        outbox_stop,
    })
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Bind(addr, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| StartError::Bind(addr, e))?;
    Ok((listener, bound))
}

fn serve(
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server stopped");
        }
    })
}

impl Origin {
    /// Graceful stop: refuse new jobs (503, readiness false), give running ones the configured
    /// grace, fail the rest with a retryable event, close the listeners, deliver what the outbox
    /// holds, then return.
    pub async fn shutdown(self) {
        let state = &self.state;
        state.shutdown.cancel();
        state.live.clear().await;
        state.tracker.close();
        if tokio::time::timeout(state.cfg.shutdown_grace, state.tracker.wait())
            .await
            .is_err()
        {
            state.cancel_jobs.cancel();
            state.tracker.wait().await;
        }
        self.servers_stop.cancel();
        for server in self.servers {
            let _ = server.await;
        }
        self.outbox_stop.cancel();
        let _ = self.outbox.await;
    }
}

/// reqwest is built without a default TLS backend; ring is the light one. Idempotent; every
/// process that makes HTTP requests through this crate calls it first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
