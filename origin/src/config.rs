//! The origin's configuration: one typed struct, read once from the environment at startup.
//!
//! Every knob is here so the rest of the crate never touches `std::env`; tests build a `Config`
//! from a map with [`Config::from_vars`]. `origin/README.md` documents each variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use dodolens_shared::protocol::Analyser;
use dodolens_shared::signing::Keyring;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// How the vision model should look at frames (OpenAI `detail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageDetail {
    Auto,
    Low,
    High,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Prices used to turn model usage into an estimated cost.
#[derive(Clone, Copy, Debug)]
pub struct Prices {
    pub input_eur_per_mtok: f64,
    pub output_eur_per_mtok: f64,
    pub audio_eur_per_min: f64,
}

#[derive(Clone, Debug)]
pub struct FfmpegConfig {
    pub ffmpeg_bin: String,
    pub ffprobe_bin: String,
    pub timeout: Duration,
    pub max_memory_bytes: u64,
    pub threads: u32,
    pub frame_count: u32,
    pub long_side: u32,
    /// ffmpeg `-q:v` for JPEG, 2 (best) to 31.
    pub jpeg_quality: u32,
    /// The narration is cut after this long (and this many bytes): transcription is paid by the
    /// minute and the provider refuses large files.
    pub max_audio: Duration,
    pub max_audio_bytes: u64,
}

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub api_key: String,
    pub base_url: String,
    pub vision_model: String,
    pub transcription_model: String,
    pub directives_model: String,
    pub detail: ImageDetail,
    pub timeout: Duration,
    /// Extra attempts after a timeout (429/5xx/connect errors are retried by the client itself,
    /// honouring Retry-After).
    pub timeout_retries: u32,
    pub prices: Prices,
}

/// OpenAI-style rate limits shared by every replica; 0 disables a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelBudget {
    pub requests_per_minute: u64,
    pub tokens_per_minute: u64,
}

#[derive(Clone, Debug)]
pub struct AirtableConfig {
    pub api_url: String,
    pub token: String,
    pub base: String,
    /// One record per confirmed session.
    pub table: String,
    /// One record per line, linked to the session's record; `None` keeps the lines as text only.
    pub lines_table: Option<String>,
}

/// The mover's webhook receiver and the key it verifies with. That key is the mover's: it is
/// never one the edge or the origin accepts, so whoever reads it can sign nothing but webhooks.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub url: String,
    pub keys: Keyring,
}

#[derive(Clone, Debug)]
pub struct SinkConfig {
    pub airtable: Option<AirtableConfig>,
    pub webhook: Option<WebhookConfig>,
    /// Also send the model's raw result when an analysis completes (by default only the
    /// customer's confirmed inventory reaches the sinks).
    pub send_raw_result: bool,
    pub attempts: u32,
    pub timeout: Duration,
}

/// Model spending caps in euros; 0 means no cap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpendingCapConfig {
    pub eur_per_hour: f64,
    pub eur_per_day: f64,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The public listener: jobs from the edge.
    pub bind: SocketAddr,
    /// The operator listener: `/readyz`, `/metrics` (and `/healthz`). Loopback by default.
    pub ops_bind: SocketAddr,
    /// How long a `/readyz` result (it runs ffmpeg and ffprobe) is reused.
    pub ready_cache: Duration,
    pub spending: SpendingCapConfig,
    /// The edge ↔ origin keys: forwards and cancels in, events out.
    pub signing: Keyring,
    pub max_video_bytes: u64,
    /// Jobs this replica processes at once (its CPU slots); every replica has its own.
    pub max_concurrent_jobs: u32,
    /// Sum of the video bytes this replica may hold in memory at once.
    pub memory_budget_bytes: u64,
    /// The Retry-After estimate until a job duration has been measured.
    pub retry_after: Duration,
    /// The cluster-wide model budget (per minute, over every replica).
    pub model_budget: ModelBudget,
    /// Timeout of one Redis operation; a paused or unreachable Redis fails it, the caller retries.
    pub redis_timeout: Duration,
    pub job_timeout: Duration,
    /// A live job (a recording forwarded while it is received) that gets no range for this long
    /// is dropped; the edge then forwards the whole file.
    pub stream_idle: Duration,
    pub ffmpeg: FfmpegConfig,
    /// Which backend analyses videos (`DODOLENS_ANALYSER`, `auto` resolved at start-up).
    pub analyser: Analyser,
    /// The local backend's Whisper folder (`DODOLENS_WHISPER_DIR`); unset, local mode does not
    /// transcribe. Needs a build with the `local-whisper` feature.
    pub whisper_dir: Option<PathBuf>,
    /// Unused (empty key) with the local backend.
    pub model: ModelConfig,
    pub margin_ratio: f64,
    pub redis_url: Option<String>,
    pub key_prefix: String,
    pub instance_id: String,
    /// A running job's claim expires after this unless renewed (a dead replica's jobs run again).
    pub running_lease: Duration,
    /// How long a finished job id is remembered, so a late re-forward does not run it again.
    pub done_ttl: Duration,
    /// How long an undelivered final event is retried before it is dropped.
    pub outbox_ttl: Duration,
    pub callback_timeout: Duration,
    /// A job silent for this long re-sends its current stage, so the edge's watchdog (which
    /// re-forwards the whole video when the origin goes quiet) never fires during a slow model
    /// call. Keep it well under the edge's `WATCHDOG_MS`.
    pub heartbeat: Duration,
    /// How often a running job checks the store for a cancel that reached another replica.
    pub cancel_poll: Duration,
    pub callback_backoff: Duration,
    pub callback_backoff_max: Duration,
    pub sinks: SinkConfig,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub shutdown_grace: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Builds the config from any variable source; empty values count as unset.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(&get);
        let base_url = vars
            .opt("OPENAI_BASE_URL")
            .map(|u| u.trim_end_matches('/').to_string());
        let provider = match (vars.opt("OPENAI_API_KEY"), &base_url) {
            (Some(key), _) => Some(key),
            // OpenAI-compatible servers (Ollama, vLLM, the simulator) often need no key.
            (None, Some(_)) => Some("unused".to_string()),
            (None, None) => None,
        };
        let analyser = match vars.string("DODOLENS_ANALYSER", "auto").as_str() {
            "auto" if provider.is_some() => Analyser::Openai,
            "auto" | "local" => Analyser::Local,
            "openai" => Analyser::Openai,
            other => {
                return Err(invalid(
                    "DODOLENS_ANALYSER",
                    format!("{other:?}: openai, local or auto"),
                ))
            }
        };
        let api_key = match (analyser, provider) {
            (Analyser::Openai, Some(key)) => key,
            (Analyser::Openai, None) => {
                return Err(ConfigError::Missing("OPENAI_API_KEY (or OPENAI_BASE_URL)"))
            }
            // Local analysis never calls a provider, even when a key is set.
            (Analyser::Local, _) => String::new(),
        };
        let airtable = match vars.opt("DODOLENS_AIRTABLE_TOKEN") {
            Some(token) => Some(AirtableConfig {
                api_url: vars.string("DODOLENS_AIRTABLE_URL", "https://api.airtable.com/v0"),
                token,
                base: vars.required("DODOLENS_AIRTABLE_BASE")?,
                table: vars.required("DODOLENS_AIRTABLE_TABLE")?,
                lines_table: vars.opt("DODOLENS_AIRTABLE_LINES_TABLE"),
            }),
            None => None,
        };
        let signing = keyring(
            "DODOLENS_SIGNING_SECRET",
            vars.required("DODOLENS_SIGNING_SECRET")?,
            vars.opt("DODOLENS_SIGNING_SECRET_PREVIOUS"),
        )?;
        let webhook = match vars.opt("DODOLENS_WEBHOOK_URL") {
            Some(url) => {
                let key = vars.required("DODOLENS_WEBHOOK_SECRET")?;
                if signing.holds(key.as_bytes()) {
                    return Err(invalid(
                        "DODOLENS_WEBHOOK_SECRET",
                        "must differ from the edge ↔ origin signing keys",
                    ));
                }
                Some(WebhookConfig {
                    url,
                    keys: keyring("DODOLENS_WEBHOOK_SECRET", key, None)?,
                })
            }
            None => None,
        };
        let max_video_bytes: u64 =
            vars.parse("DODOLENS_MAX_VIDEO_BYTES", &machine::default_max_video())?;
        let config = Config {
            bind: vars.parse("DODOLENS_BIND", "127.0.0.1:8788")?,
            ops_bind: vars.parse("DODOLENS_OPS_BIND", "127.0.0.1:9788")?,
            ready_cache: vars.secs("DODOLENS_READY_CACHE_S", "10")?,
            spending: SpendingCapConfig {
                eur_per_hour: vars.parse("DODOLENS_SPENDING_CAP_EUR_PER_HOUR", "10")?,
                eur_per_day: vars.parse("DODOLENS_SPENDING_CAP_EUR_PER_DAY", "100")?,
            },
            signing,
            max_video_bytes,
            max_concurrent_jobs: vars.parse("DODOLENS_MAX_CONCURRENT_JOBS", &machine::cpus())?,
            memory_budget_bytes: vars.parse(
                "DODOLENS_MEMORY_BUDGET_BYTES",
                &machine::default_memory_budget(max_video_bytes),
            )?,
            retry_after: vars.secs("DODOLENS_RETRY_AFTER_S", "5")?,
            model_budget: ModelBudget {
                requests_per_minute: vars.parse("DODOLENS_MODEL_RPM", "500")?,
                tokens_per_minute: vars.parse("DODOLENS_MODEL_TPM", "200000")?,
            },
            redis_timeout: Duration::from_millis(vars.parse("DODOLENS_REDIS_TIMEOUT_MS", "2000")?),
            job_timeout: vars.secs("DODOLENS_JOB_TIMEOUT_S", "300")?,
            stream_idle: Duration::from_millis(vars.parse("DODOLENS_STREAM_IDLE_MS", "300000")?),
            analyser,
            whisper_dir: vars.opt("DODOLENS_WHISPER_DIR").map(PathBuf::from),
            ffmpeg: FfmpegConfig {
                ffmpeg_bin: vars.string("DODOLENS_FFMPEG_BIN", "ffmpeg"),
                ffprobe_bin: vars.string("DODOLENS_FFPROBE_BIN", "ffprobe"),
                timeout: vars.secs("DODOLENS_FFMPEG_TIMEOUT_S", "60")?,
                max_memory_bytes: vars.parse::<u64>("DODOLENS_FFMPEG_MAX_MEMORY_MB", "1536")?
                    * 1024
                    * 1024,
                threads: vars.parse("DODOLENS_FFMPEG_THREADS", "2")?,
                frame_count: vars.parse("DODOLENS_FRAME_COUNT", "12")?,
                long_side: vars.parse("DODOLENS_FRAME_LONG_SIDE", "768")?,
                jpeg_quality: vars.parse("DODOLENS_JPEG_QUALITY", "4")?,
                max_audio: vars.secs("DODOLENS_MAX_AUDIO_S", "600")?,
                max_audio_bytes: vars.parse("DODOLENS_MAX_AUDIO_BYTES", "8388608")?,
            },
            model: ModelConfig {
                api_key,
                base_url: base_url.unwrap_or_else(|| "https://api.openai.com/v1".to_string()),
                vision_model: vars.string("DODOLENS_VISION_MODEL", "gpt-4.1-mini"),
                transcription_model: vars
                    .string("DODOLENS_TRANSCRIPTION_MODEL", "gpt-4o-mini-transcribe"),
                directives_model: vars.string("DODOLENS_DIRECTIVES_MODEL", "gpt-4.1-mini"),
                detail: match vars.string("DODOLENS_IMAGE_DETAIL", "auto").as_str() {
                    "auto" => ImageDetail::Auto,
                    "low" => ImageDetail::Low,
                    "high" => ImageDetail::High,
                    other => return Err(invalid("DODOLENS_IMAGE_DETAIL", other)),
                },
                timeout: vars.secs("DODOLENS_MODEL_TIMEOUT_S", "90")?,
                timeout_retries: vars.parse("DODOLENS_MODEL_TIMEOUT_RETRIES", "1")?,
                prices: Prices {
                    input_eur_per_mtok: vars.parse("DODOLENS_PRICE_INPUT_EUR_PER_MTOK", "0.37")?,
                    output_eur_per_mtok: vars
                        .parse("DODOLENS_PRICE_OUTPUT_EUR_PER_MTOK", "1.47")?,
                    audio_eur_per_min: vars.parse("DODOLENS_PRICE_AUDIO_EUR_PER_MIN", "0.0028")?,
                },
            },
            margin_ratio: vars.parse("DODOLENS_MARGIN_RATIO", "0.10")?,
            redis_url: vars.opt("REDIS_URL"),
            key_prefix: vars.string("DODOLENS_KEY_PREFIX", "dodolens"),
            instance_id: vars
                .opt("DODOLENS_INSTANCE_ID")
                .unwrap_or_else(default_instance_id),
            running_lease: vars.secs("DODOLENS_RUNNING_LEASE_S", "60")?,
            done_ttl: vars.secs("DODOLENS_DONE_TTL_S", "900")?,
            outbox_ttl: vars.secs("DODOLENS_OUTBOX_TTL_S", "3600")?,
            callback_timeout: vars.secs("DODOLENS_CALLBACK_TIMEOUT_S", "10")?,
            heartbeat: Duration::from_millis(vars.parse("DODOLENS_HEARTBEAT_MS", "30000")?),
            cancel_poll: Duration::from_millis(vars.parse("DODOLENS_CANCEL_POLL_MS", "1000")?),
            callback_backoff: Duration::from_millis(
                vars.parse("DODOLENS_CALLBACK_BACKOFF_MS", "500")?,
            ),
            callback_backoff_max: vars.secs("DODOLENS_CALLBACK_BACKOFF_MAX_S", "30")?,
            sinks: SinkConfig {
                airtable,
                webhook,
                send_raw_result: vars.flag("DODOLENS_SINK_RAW_RESULT")?,
                attempts: vars.parse("DODOLENS_SINK_ATTEMPTS", "3")?,
                timeout: vars.secs("DODOLENS_SINK_TIMEOUT_S", "10")?,
            },
            log_format: match vars.string("DODOLENS_LOG_FORMAT", "text").as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => return Err(invalid("DODOLENS_LOG_FORMAT", other)),
            },
            log_filter: vars.string("DODOLENS_LOG", "info"),
            shutdown_grace: vars.secs("DODOLENS_SHUTDOWN_GRACE_S", "25")?,
        };
        if config.ffmpeg.frame_count == 0 || config.ffmpeg.frame_count > 64 {
            return Err(invalid("DODOLENS_FRAME_COUNT", "must be 1–64"));
        }
        for (name, cap) in [
            (
                "DODOLENS_SPENDING_CAP_EUR_PER_HOUR",
                config.spending.eur_per_hour,
            ),
            (
                "DODOLENS_SPENDING_CAP_EUR_PER_DAY",
                config.spending.eur_per_day,
            ),
        ] {
            if !cap.is_finite() || cap < 0.0 {
                return Err(invalid(name, "must be a number of euros ≥ 0 (0 = no cap)"));
            }
        }
        if config.max_concurrent_jobs == 0 {
            return Err(invalid(
                "DODOLENS_MAX_CONCURRENT_JOBS",
                "must be at least 1",
            ));
        }
        if config.memory_budget_bytes < config.max_video_bytes {
            return Err(invalid(
                "DODOLENS_MEMORY_BUDGET_BYTES",
                "must hold at least one video of DODOLENS_MAX_VIDEO_BYTES",
            ));
        }
        if config.running_lease < Duration::from_millis(300) {
            return Err(invalid("DODOLENS_RUNNING_LEASE_S", "must be at least 0.3"));
        }
        if config.redis_timeout.is_zero() {
            return Err(invalid("DODOLENS_REDIS_TIMEOUT_MS", "must be at least 1"));
        }
        Ok(config)
    }

    /// The job-level TTL of state keys: a job can never legitimately live longer.
    pub fn job_ttl(&self) -> Duration {
        self.job_timeout + self.shutdown_grace + Duration::from_secs(60)
    }
}

/// Defaults sized from the machine this replica runs on.
mod machine {
    /// One job slot per CPU the process may use (cgroup quotas included).
    pub fn cpus() -> String {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .to_string()
    }

    /// The largest video by default: 1 GiB (about ten minutes of 1080p phone video, the
    /// largest file a customer picks), less where half the memory is less, so the default
    /// budget always holds one whole video (it lives in a memfd, in RAM).
    pub const MAX_VIDEO_BYTES: u64 = 1 << 30;

    pub fn default_max_video() -> String {
        max_video_for(memory()).to_string()
    }

    /// Half of the memory the process may use (the cgroup limit if lower than the machine's),
    /// leaving the rest to ffmpeg, frames and audio; never less than one maximal video.
    pub fn default_memory_budget(max_video_bytes: u64) -> String {
        budget_for(memory(), max_video_bytes).to_string()
    }

    pub(super) fn max_video_for(memory: Option<u64>) -> u64 {
        memory.map_or(MAX_VIDEO_BYTES, |m| (m / 2).min(MAX_VIDEO_BYTES))
    }

    pub(super) fn budget_for(memory: Option<u64>, max_video_bytes: u64) -> u64 {
        memory
            .map_or(max_video_bytes * 2, |m| m / 2)
            .max(max_video_bytes)
    }

    fn memory() -> Option<u64> {
        [cgroup_limit(), mem_total()].into_iter().flatten().min()
    }

    fn cgroup_limit() -> Option<u64> {
        std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn mem_total() -> Option<u64> {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

fn invalid(name: &'static str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.to_string(),
    }
}

fn keyring(
    name: &'static str,
    current: String,
    other: Option<String>,
) -> Result<Keyring, ConfigError> {
    Keyring::new(current.into_bytes(), other.map(String::into_bytes)).map_err(|e| invalid(name, e))
}

fn default_instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("origin-{}-{nanos:08x}", std::process::id())
}

struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn opt(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.opt(name).ok_or(ConfigError::Missing(name))
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.opt(name).unwrap_or_else(|| default.to_string())
    }

    fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.string(name, default);
        raw.trim()
            .parse()
            .map_err(|e: T::Err| invalid(name, format!("{raw:?}: {e}")))
    }

    /// `1`/`true` or `0`/`false` (unset: false).
    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.string(name, "0").trim() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            other => Err(invalid(name, format!("{other:?}: expected 0 or 1"))),
        }
    }

    fn secs(&self, name: &'static str, default: &str) -> Result<Duration, ConfigError> {
        let secs: f64 = self.parse(name, default)?;
        Duration::try_from_secs_f64(secs).map_err(|e| invalid(name, e))
    }
}

#[cfg(test)]
mod tests {
    use super::machine::{budget_for, max_video_for, MAX_VIDEO_BYTES};
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn a_gibibyte_video_by_default_where_the_budget_holds_it() {
        assert_eq!(MAX_VIDEO_BYTES, GIB);
        assert_eq!(max_video_for(Some(8 * GIB)), GIB);
        assert_eq!(budget_for(Some(8 * GIB), GIB), 4 * GIB);
        // A 1 GiB container: half of it for videos, and one video fits in that half.
        assert_eq!(max_video_for(Some(GIB)), GIB / 2);
        assert_eq!(budget_for(Some(GIB), max_video_for(Some(GIB))), GIB / 2);
        // Memory unknown: the default video, a budget of two.
        assert_eq!(max_video_for(None), GIB);
        assert_eq!(budget_for(None, GIB), 2 * GIB);
        // An operator's larger video raises the budget to one video.
        assert_eq!(budget_for(Some(GIB), 3 * GIB), 3 * GIB);
    }

    fn analyser(vars: &[(&str, &str)]) -> Result<(Analyser, String), ConfigError> {
        let config = Config::from_vars(|name| {
            vars.iter()
                .chain(&[("DODOLENS_SIGNING_SECRET", "s")])
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })?;
        Ok((config.analyser, config.model.api_key))
    }

    #[test]
    fn auto_uses_openai_with_a_key_or_server_and_local_without() {
        let key = ("OPENAI_API_KEY", "sk-test");
        let server = ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
        assert_eq!(
            analyser(&[key]).unwrap(),
            (Analyser::Openai, "sk-test".into())
        );
        assert_eq!(analyser(&[server]).unwrap().0, Analyser::Openai);
        assert_eq!(analyser(&[]).unwrap(), (Analyser::Local, String::new()));
        assert_eq!(
            analyser(&[("DODOLENS_ANALYSER", "auto"), ("OPENAI_API_KEY", " ")])
                .unwrap()
                .0,
            Analyser::Local
        );
    }

    #[test]
    fn explicit_choices_win_and_local_never_holds_the_key() {
        let key = ("OPENAI_API_KEY", "sk-test");
        assert_eq!(
            analyser(&[("DODOLENS_ANALYSER", "local"), key]).unwrap(),
            (Analyser::Local, String::new())
        );
        assert!(matches!(
            analyser(&[("DODOLENS_ANALYSER", "openai")]),
            Err(ConfigError::Missing(_))
        ));
        assert!(matches!(
            analyser(&[("DODOLENS_ANALYSER", "simulator")]),
            Err(ConfigError::Invalid {
                name: "DODOLENS_ANALYSER",
                ..
            })
        ));
    }
}
