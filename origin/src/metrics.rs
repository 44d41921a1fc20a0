//! Prometheus metrics: what an operator needs to see the origin is healthy and what it costs.
//! Labels are bounded enums (stage, outcome, call); never ids.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    pub jobs: Family<Labels, Counter>,
    pub in_flight: Gauge,
    pub video_bytes_held: Gauge,
    pub outbox_held: Gauge,
    pub intake_rejections: Family<Labels, Counter>,
    pub admission_probes: Family<Labels, Counter>,
    pub received_bytes: Counter,
    pub stage_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    pub model_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    pub tokens: Family<Labels, Counter>,
    pub cost_eur: Counter<f64, AtomicU64>,
    pub deliveries: Family<Labels, Counter>,
    pub sink_failures: Family<Labels, Counter>,
    pub readiness_checks: Counter,
}

fn seconds_histogram() -> Histogram {
    Histogram::new([
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    ])
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("dodolens");
        let jobs = Family::<Labels, Counter>::default();
        let in_flight = Gauge::default();
        let video_bytes_held = Gauge::default();
        let outbox_held = Gauge::default();
        let intake_rejections = Family::<Labels, Counter>::default();
        let admission_probes = Family::<Labels, Counter>::default();
        let received_bytes = Counter::default();
        let stage_seconds = Family::new_with_constructor(seconds_histogram as fn() -> Histogram);
        let model_seconds = Family::new_with_constructor(seconds_histogram as fn() -> Histogram);
        let tokens = Family::<Labels, Counter>::default();
        let cost_eur = Counter::<f64, AtomicU64>::default();
        let deliveries = Family::<Labels, Counter>::default();
        let sink_failures = Family::<Labels, Counter>::default();
        let readiness_checks = Counter::default();
        registry.register(
            "jobs",
            "Jobs finished, by outcome and error code",
            jobs.clone(),
        );
        registry.register("jobs_in_flight", "Jobs being processed", in_flight.clone());
        registry.register(
            "video_bytes_held",
            "Video bytes this replica holds in memory (against DODOLENS_MEMORY_BUDGET_BYTES)",
            video_bytes_held.clone(),
        );
        registry.register(
            "outbox_held",
            "Final events this replica holds until the edge acknowledges them",
            outbox_held.clone(),
        );
        registry.register(
            "intake_rejections",
            "Forwards refused at intake, by reason",
            intake_rejections.clone(),
        );
        registry.register(
            "admission_probes",
            "Body-less admission probes of queued sessions, by answer (free or the busy reason)",
            admission_probes.clone(),
        );
        registry.register(
            "received_bytes",
            "Video bytes received",
            received_bytes.clone(),
        );
        registry.register(
            "stage_seconds",
            "Pipeline stage durations",
            stage_seconds.clone(),
        );
        registry.register(
            "model_seconds",
            "Model request latency, by call",
            model_seconds.clone(),
        );
        registry.register("model_tokens", "Model tokens, by direction", tokens.clone());
        registry.register(
            "cost_eur",
            "Estimated model cost in euros",
            cost_eur.clone(),
        );
        registry.register(
            "event_deliveries",
            "Event deliveries to the edge, by result",
            deliveries.clone(),
        );
        registry.register(
            "sink_failures",
            "Result sink failures, by sink",
            sink_failures.clone(),
        );
        registry.register(
            "readiness_checks",
            "ffmpeg/ffprobe checks run by /readyz (the answer is cached in between)",
            readiness_checks.clone(),
        );
        Metrics {
            registry,
            jobs,
            in_flight,
            video_bytes_held,
            outbox_held,
            admission_probes,
            intake_rejections,
            received_bytes,
            stage_seconds,
            model_seconds,
            tokens,
            cost_eur,
            deliveries,
            sink_failures,
            readiness_checks,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}
